/**
 * Panel update with 1000 workers: the time from a pushed WebSocket message to the redrawn Dask
 * section (JSON.parse, the model, React rendering into jsdom). Goal: < 16 ms per update (one frame).
 * Printed, not asserted: run with `make bench-dask`. With SCIENCELAB_BENCH_SMOKE=1 (what `make test`
 * runs) it checks that it still compiles and runs: a few updates, figures meaningless.
 */
import { CommandRegistry } from '@lumino/commands';
import { MessageLoop } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { flushSync } from 'react-dom';

import { ICluster } from '../labextension/src/dask/api';
import { DaskClustersModel } from '../labextension/src/dask/model';
import { DaskSection } from '../labextension/src/dask/panel';
import { largeCluster, memoryAPI, noUpdates } from '../labextension/src/dask/__tests__/fixtures';

const WORKERS = 1000;
const SMOKE = process.env.SCIENCELAB_BENCH_SMOKE === '1';
const WARM_UP = SMOKE ? 2 : 20;
const ROUNDS = SMOKE ? 10 : 200;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function measure(model: DaskClustersModel, label: string): number {
  // Each round's message differs (CPU figures move), as live updates do.
  const messages = Array.from({ length: WARM_UP + ROUNDS }, (_, round) =>
    JSON.stringify({ type: 'clusters', clusters: [largeCluster(WORKERS, round)] })
  );
  const times: number[] = [];
  messages.forEach((message, round) => {
    const start = performance.now();
    flushSync(() => model.setClusters((JSON.parse(message) as { clusters: ICluster[] }).clusters));
    if (round >= WARM_UP) {
      times.push(performance.now() - start);
    }
  });
  times.sort((a, b) => a - b);
  const median = quantile(times, 0.5);
  process.stdout.write(
    `panel update, ${WORKERS} workers, ${label}: median ${median.toFixed(2)} ms, ` +
      `p95 ${quantile(times, 0.95).toFixed(2)} ms, max ${times[times.length - 1].toFixed(2)} ms ` +
      `over ${ROUNDS} updates (goal < 16 ms)\n`
  );
  return median;
}

it(`updates the Dask section with ${WORKERS} workers`, async () => {
  const model = new DaskClustersModel({
    api: memoryAPI([largeCluster(WORKERS)]),
    openUpdates: noUpdates
  });
  await model.start(1);
  const section = new DaskSection({
    model,
    commands: new CommandRegistry(),
    defaultTemplate: () => '',
    activeKernel: () => null,
    activeKernelChanged: new Signal<object, string | null>(model)
  });
  Widget.attach(section, document.body);
  MessageLoop.sendMessage(section, Widget.Msg.UpdateRequest);
  await new Promise(resolve => setTimeout(resolve, 100)); // the first render is asynchronous
  expect(section.node.querySelector('.sciencelab-DaskWorkers')?.textContent).toBe(
    '1000 of 1000 workers connected'
  );

  measure(model, 'worker table closed');
  (section.node.querySelector('.sciencelab-DaskWorkerTable') as HTMLDetailsElement).open = true;
  measure(model, 'worker table open (50 rows)');
  section.dispose();
  model.dispose();
});

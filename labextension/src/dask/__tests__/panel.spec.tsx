import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { MessageLoop } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { act } from 'react';

import { SciencelabRequestError } from '../../request';
import { CommandIDs } from '../../tokens';
import { DaskClustersModel } from '../model';
import { DaskSection } from '../panel';
import { batchCluster, cluster, largeCluster, memoryAPI, noUpdates } from './fixtures';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const REFUSAL = "environment: 'lcg' is not allowed; choose one of: python3";

interface ISetup {
  section: DaskSection;
  model: DaskClustersModel;
  executed: Array<[string, ReadonlyPartialJSONObject]>;
  kernelChanged: Signal<object, string | null>;
}

/**
 * The section on a model with the given clusters; commands record their calls, and creating a
 * cluster with `refuse` set fails as the server refuses an option (400 naming the field).
 */
async function setup(
  clusters = [cluster()],
  refuse = false,
  kernel: string | null = 'lcg-kernel'
): Promise<ISetup> {
  const model = new DaskClustersModel({ api: memoryAPI(clusters), openUpdates: noUpdates });
  await model.start(1);
  const commands = new CommandRegistry();
  const executed: ISetup['executed'] = [];
  for (const id of Object.values(CommandIDs)) {
    commands.addCommand(id, {
      execute: args => {
        executed.push([id, args]);
        if (id === CommandIDs.createCluster && refuse) {
          throw new SciencelabRequestError(REFUSAL, 400, 'x', {
            field: 'environment',
            value: 'lcg'
          });
        }
      }
    });
  }
  const kernelChanged = new Signal<object, string | null>(model);
  const section = new DaskSection({
    model,
    commands,
    defaultTemplate: () => '',
    activeKernel: () => kernel,
    activeKernelChanged: kernelChanged
  });
  await act(async () => {
    Widget.attach(section, document.body);
    MessageLoop.sendMessage(section, Widget.Msg.UpdateRequest);
  });
  return { section, model, executed, kernelChanged };
}

function click(element: Element | null): Promise<void> {
  return act(async () => {
    (element as HTMLElement).click();
  });
}

function button(section: Widget, label: string): HTMLButtonElement {
  const found = Array.from(section.node.querySelectorAll('button')).find(
    b => b.textContent === label
  );
  if (!found) {
    throw new Error(`no button ${label}`);
  }
  return found;
}

describe('DaskSection', () => {
  let current: ISetup | null = null;

  afterEach(async () => {
    await act(async () => {
      current?.section.dispose();
      current?.model.dispose();
    });
    current = null;
  });

  it('shows each cluster with its live state', async () => {
    current = await setup();
    const card = current.section.node.querySelector('.sciencelab-DaskCluster') as HTMLElement;
    expect(card.dataset.clusterId).toBe('c0ffee');
    expect(card.querySelector('.sciencelab-DaskWorkers')?.textContent).toBe(
      '1 of 2 workers connected, 1 pending'
    );

    const running = cluster({
      workers: { requested: 2, pending: 0, running: 2 },
      worker_states: { connected: 2 }
    });
    await act(async () => current?.model.setClusters([running]));
    expect(card.querySelector('.sciencelab-DaskWorkers')?.textContent).toBe(
      '2 of 2 workers connected'
    );
  });

  it('runs the cluster commands with its id', async () => {
    current = await setup();
    await click(button(current.section, 'Insert code'));
    await click(button(current.section, 'Task stream'));
    await click(button(current.section, 'Shut down'));
    expect(current.executed).toEqual([
      [CommandIDs.insertClusterCode, { id: 'c0ffee' }],
      [CommandIDs.openClusterDashboard, { id: 'c0ffee', plot: 'task-stream' }],
      [CommandIDs.shutdownCluster, { id: 'c0ffee' }]
    ]);
  });

  it("builds the form from the template's schema, the notebook's environment preselected", async () => {
    current = await setup([]);
    await click(button(current.section, 'New cluster'));
    const workers = current.section.node.querySelector('input#root_workers') as HTMLInputElement;
    expect([workers.min, workers.max, workers.value]).toEqual(['0', '4', '1']);
    const environment = current.section.node.querySelector(
      'select#root_environment'
    ) as HTMLSelectElement;
    expect(Array.from(environment.options, option => option.textContent)).toEqual([
      'Python 3',
      'LCG 105'
    ]);
    expect(environment.selectedOptions[0].textContent).toBe('LCG 105');

    await click(button(current.section, 'Create'));
    expect(current.executed).toEqual([
      [
        CommandIDs.createCluster,
        {
          template: 'local',
          options: {
            workers: 1,
            adaptive: false,
            adapt_minimum: 0,
            adapt_maximum: 4,
            environment: 'lcg'
          }
        }
      ]
    ]);
  });

  it("follows the notebook's kernel once it starts, until the user picks an environment", async () => {
    current = await setup([], false, null);
    const { section, kernelChanged } = current;
    await click(button(section, 'New cluster'));
    const environment = section.node.querySelector('select#root_environment') as HTMLSelectElement;
    expect(environment.selectedOptions[0].textContent).toBe('Python 3');

    await act(async () => kernelChanged.emit('lcg-kernel'));
    expect(environment.selectedOptions[0].textContent).toBe('LCG 105');

    await act(async () => {
      environment.value = environment.options[0].value;
      environment.dispatchEvent(new Event('change', { bubbles: true }));
    });
    expect(environment.selectedOptions[0].textContent).toBe('Python 3');
    await act(async () => kernelChanged.emit('lcg-kernel'));
    expect(environment.selectedOptions[0].textContent).toBe('Python 3');
  });

  it('refuses a blank or mistyped number at its field instead of sending the default', async () => {
    current = await setup([]);
    const section = current.section;
    await click(button(section, 'New cluster'));
    const workers = section.node.querySelector('input#root_workers') as HTMLInputElement;
    await act(async () => {
      // What React sees when the user clears the field (jsdom has no typing).
      const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set;
      setValue?.call(workers, '');
      workers.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await click(button(section, 'Create'));

    expect(current.executed).toEqual([]);
    const field = workers.closest('.form-group') as HTMLElement;
    expect(field.textContent).toContain('workers: enter a whole number; choose 0 to 4 workers');
    expect(section.node.querySelector('form')).not.toBeNull();
  });

  it('scales only to a whole number of workers', async () => {
    current = await setup();
    const section = current.section;
    const workers = section.node.querySelector(
      'input[aria-label="Workers of local-1"]'
    ) as HTMLInputElement;
    const type = (text: string): Promise<void> =>
      act(async () => {
        const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set;
        setValue?.call(workers, text);
        workers.dispatchEvent(new Event('input', { bubbles: true }));
      });

    await type('');
    await click(button(section, 'Scale'));
    expect(current.executed).toEqual([]);
    expect(section.node.querySelector('.sciencelab-DaskScaleError')?.textContent).toBe(
      'workers: enter a whole number; choose 0 to 4 workers'
    );

    await type('3');
    await click(button(section, 'Scale'));
    expect(current.executed).toEqual([[CommandIDs.scaleCluster, { id: 'c0ffee', workers: 3 }]]);
    expect(section.node.querySelector('.sciencelab-DaskScaleError')).toBeNull();
  });

  it("shows the server's refusal at the field it names", async () => {
    current = await setup([], true);
    const section = current.section;
    await click(button(section, 'New cluster'));
    await click(button(section, 'Create'));

    const field = section.node
      .querySelector('select#root_environment')
      ?.closest('.form-group') as HTMLElement;
    expect(field.textContent).toContain(REFUSAL);
    expect(section.node.querySelector('form')).not.toBeNull(); // still open, nothing lost
  });

  it('renders server values as text, not HTML', async () => {
    current = await setup([cluster({ name: '<img src=x onerror=alert(1)>' })]);
    expect(current.section.node.querySelector('img')).toBeNull();
    expect(current.section.node.querySelector('.sciencelab-DaskClusterName')?.textContent).toBe(
      '<img src=x onerror=alert(1)>'
    );
  });

  it('lists the busiest 50 of 1000 workers', async () => {
    current = await setup([largeCluster(1000)]);
    expect(
      current.section.node.querySelectorAll('.sciencelab-DaskWorkerTable tbody tr')
    ).toHaveLength(50);
    expect(current.section.node.querySelector('.sciencelab-DaskWorkers')?.textContent).toBe(
      '1000 of 1000 workers connected'
    );
  });

  it("shows batch states with their reasons on hover and links each job's log", async () => {
    current = await setup([batchCluster()]);
    const summary = current.section.node.querySelector('.sciencelab-DaskWorkers') as HTMLElement;
    expect(summary.textContent).toBe(
      "3 of 10 workers connected, 5 queued (Idle), 2 held: 'Job exceeded memory'"
    );
    const held = summary.querySelector('[data-state="held"]') as HTMLElement;
    expect(held.title).toBe('2 × Job exceeded memory\nHoldReasonCode 34, HoldReasonSubCode 0');

    const row = current.section.node.querySelector(
      '.sciencelab-DaskWorkerTable tr[data-state="held"]'
    ) as HTMLElement;
    expect(row.title).toBe('Job exceeded memory\nHoldReasonCode 34, HoldReasonSubCode 0');
    await click(row.querySelector('button.sciencelab-DaskJobLog'));
    expect(current.executed).toEqual([
      [CommandIDs.showClusterLogs, { id: 'c0ffee', source: 'job 18.0' }]
    ]);
  });
});

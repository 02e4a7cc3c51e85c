import { SciencelabRequestError } from '../../request';
import { ICluster } from '../api';
import {
  connectCodeGoesBelow,
  dashboardPlotUrl,
  DaskClustersModel,
  defaultEnvironment,
  describeWorkers,
  newestFirst,
  summarizeStates,
  summarizeWorkers
} from '../model';
import { batchCluster, cluster, memoryAPI, noUpdates, TEMPLATE, worker } from './fixtures';

describe('describeWorkers', () => {
  it('says how many of the requested workers are connected', () => {
    expect(describeWorkers(cluster())).toBe('1 of 2 workers connected, 1 pending');
    expect(describeWorkers(cluster({ adapt: { minimum: 1, maximum: 5 } }))).toBe(
      '1 of 2 workers connected (adaptive 1–5), 1 pending'
    );
  });

  it('says a cluster scales down rather than "2 of 1 workers connected"', () => {
    const shrinking = cluster({
      workers: { requested: 1, pending: 0, running: 2 },
      worker_states: { connected: 2 }
    });
    expect(describeWorkers(shrinking)).toBe('2 workers connected, scaling down to 1');
    expect(describeWorkers({ ...shrinking, adapt: { minimum: 1, maximum: 5 } })).toBe(
      '2 workers connected, scaling down to 1 (adaptive 1–5)'
    );
  });

  it("names batch states with their most common reason, in the batch system's words", () => {
    expect(describeWorkers(batchCluster())).toBe(
      "3 of 10 workers connected, 5 queued (Idle), 2 held: 'Job exceeded memory'"
    );
  });

  it('lists every reason of a state with its detail for the tooltip', () => {
    const [connected, queued, held] = summarizeStates(batchCluster());
    expect(connected).toEqual({
      text: '3 of 10 workers connected',
      state: 'connected',
      tooltip: ''
    });
    expect(queued.tooltip).toBe(
      '4 × Idle\nHTCondor found no slot for it: no match found\n\n1 × Submitted'
    );
    expect(held.tooltip).toBe('2 × Job exceeded memory\nHoldReasonCode 34, HoldReasonSubCode 0');
  });

  it('quotes why jobs failed or finished', () => {
    const failed = cluster({
      workers: { requested: 2, pending: 2, running: 0 },
      worker_states: { failed: 2 },
      worker_list: [0, 1].map(index =>
        worker(index, {
          state: 'failed',
          reason: 'Memory specification can not be satisfied',
          memory: null
        })
      )
    });
    expect(describeWorkers(failed)).toBe(
      "0 of 2 workers connected, 2 failed: 'Memory specification can not be satisfied'"
    );
  });

  it('shows the status of a cluster made elsewhere', () => {
    const elsewhere: ICluster = {
      id: null,
      name: 'g',
      template: 'gw',
      backend: 'gateway',
      status: 'pending',
      managed: false,
      dashboard_url: null
    };
    expect(describeWorkers(elsewhere)).toBe('pending');
  });
});

describe('summarizeWorkers', () => {
  it('adds up connected workers only, GPUs where reported', () => {
    const summary = summarizeWorkers([
      worker(1, { memory: 100, memory_limit: 1000, cpu: 50 }),
      worker(2, {
        memory: 300,
        memory_limit: 1000,
        cpu: 100,
        gpu_utilization: 80,
        gpu_memory_used: 5,
        gpu_memory_total: 16
      }),
      worker(3, { state: 'queued', memory: 999, cpu: 999 })
    ]);
    expect(summary).toEqual({
      memory: 400,
      memoryLimit: 2000,
      cpu: 75,
      gpuUtilization: 80,
      gpuMemory: 5,
      gpuMemoryTotal: 16
    });
    expect(summarizeWorkers([]).cpu).toBeNull();
  });
});

describe('helpers', () => {
  it("turns the dashboard's status page into an individual plot", () => {
    expect(dashboardPlotUrl('/user/ada/proxy/8787/status', 'task-stream')).toBe(
      '/user/ada/proxy/8787/individual-task-stream'
    );
    expect(dashboardPlotUrl('http://gw/clusters/abc/status', 'progress')).toBe(
      'http://gw/clusters/abc/individual-progress'
    );
  });

  it("preselects the environment of the notebook's kernel", () => {
    expect(defaultEnvironment(TEMPLATE, 'lcg-kernel')).toBe('lcg');
    expect(defaultEnvironment(TEMPLATE, 'julia')).toBe('python3');
    expect(defaultEnvironment(TEMPLATE, null)).toBe('python3');
  });
});

describe('connectCodeGoesBelow', () => {
  it("fills a new notebook's empty code cell, and adds a cell below anything else", () => {
    expect(
      [
        { type: 'code', source: '' },
        { type: 'code', source: '  \n' },
        { type: 'code', source: 'x = 1' },
        { type: 'markdown', source: '' },
        null
      ].map(connectCodeGoesBelow)
    ).toEqual([false, false, true, true, true]);
  });
});

describe('newestFirst', () => {
  const JOB_LOG = [
    '2026-11-02 14:03:07,100 - distributed.nanny - INFO - Start Nanny',
    '2026-11-02 14:03:08,200 - distributed.worker - ERROR - Failed to start',
    'Traceback (most recent call last):',
    '  File "worker.py", line 1',
    'OSError: no space left',
    '2026-11-02 14:03:09,300 - distributed.nanny - INFO - Closing Nanny'
  ].join('\n');

  it("turns a job log's oldest-first records around, each with its traceback whole", () => {
    expect(newestFirst(JOB_LOG)).toBe(
      [
        '2026-11-02 14:03:09,300 - distributed.nanny - INFO - Closing Nanny',
        '2026-11-02 14:03:08,200 - distributed.worker - ERROR - Failed to start',
        'Traceback (most recent call last):',
        '  File "worker.py", line 1',
        'OSError: no space left',
        '2026-11-02 14:03:07,100 - distributed.nanny - INFO - Start Nanny'
      ].join('\n')
    );
  });

  it('keeps what is newest first already, or has no times', () => {
    const newest = newestFirst(JOB_LOG);
    expect(newestFirst(newest)).toBe(newest);
    expect(newestFirst('starting\nready')).toBe('starting\nready');
    expect(newestFirst('')).toBe('');
  });
});

describe('DaskClustersModel', () => {
  it('loads templates and clusters, then follows pushed updates', async () => {
    const model = new DaskClustersModel({ api: memoryAPI([cluster()]), openUpdates: noUpdates });
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.start(1);

    expect(model.templates.map(t => t.name)).toEqual(['local']);
    expect(model.clusters.map(c => c.id)).toEqual(['c0ffee']);
    model.setClusters([]);
    expect(model.clusters).toEqual([]);
    expect(changes).toBe(2);
    model.dispose();
  });

  it('keeps the list current after its own actions', async () => {
    const api = memoryAPI([cluster()]);
    const model = new DaskClustersModel({ api, openUpdates: noUpdates });
    await model.start(1);

    await model.create('local', { workers: 2 });
    await model.scale('c0ffee', { workers: 3 });
    expect(model.clusters.map(c => c.id).sort()).toEqual(['c0ffee', 'new']);
    await model.shutdown('new');
    expect(model.clusters.map(c => c.id)).toEqual(['c0ffee']);
    expect(api.calls).toEqual([
      'create local {"workers":2}',
      'scale c0ffee {"workers":3}',
      'shutdown new'
    ]);
    model.dispose();
  });

  it("keeps the server's message when loading fails", async () => {
    const api = memoryAPI();
    api.templates = () =>
      Promise.reject(new SciencelabRequestError('the dask backend is down', 503, 'x'));
    const model = new DaskClustersModel({ api, openUpdates: noUpdates });
    await model.start(1);
    expect(model.error).toBe('the dask backend is down');
    model.dispose();
  });
});

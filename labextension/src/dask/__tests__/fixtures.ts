/**
 * Templates and clusters as the server sends them, for the Dask specs and the panel benchmark.
 */
import { ICluster, IDaskAPI, ITemplate, IWorker } from '../api';
import { IUpdates } from '../model';

export const TEMPLATE: ITemplate = {
  name: 'local',
  title: 'Local cluster',
  description: 'Dask workers on this server.',
  backend: 'local',
  available: true,
  error: null,
  schema: {
    type: 'object',
    title: 'Local cluster',
    properties: {
      workers: {
        type: 'integer',
        title: 'Workers',
        description: '0 to 4 workers',
        minimum: 0,
        maximum: 4,
        default: 1
      },
      adaptive: { type: 'boolean', title: 'Adaptive', default: false },
      adapt_minimum: {
        type: 'integer',
        title: 'Adaptive minimum',
        minimum: 0,
        maximum: 4,
        default: 0
      },
      adapt_maximum: {
        type: 'integer',
        title: 'Adaptive maximum',
        minimum: 0,
        maximum: 4,
        default: 4
      },
      environment: {
        type: 'string',
        title: 'Environment',
        default: 'python3',
        oneOf: [
          { const: 'python3', title: 'Python 3' },
          { const: 'lcg', title: 'LCG 105' }
        ]
      }
    },
    additionalProperties: false
  },
  environments: [
    { name: 'python3', title: 'Python 3', kernels: ['python3'] },
    { name: 'lcg', title: 'LCG 105', kernels: ['lcg-kernel'] }
  ],
  default_environment: 'python3'
};

export function worker(index: number, overrides: Partial<IWorker> = {}): IWorker {
  return {
    name: `worker-${index}`,
    state: 'connected',
    address: `tcp://10.0.${Math.floor(index / 250)}.${index % 250}:40000`,
    reason: null,
    detail: null,
    log: null,
    job_id: null,
    threads: 2,
    memory: (index % 7) * 2 ** 28,
    memory_limit: 2 ** 32,
    cpu: (index * 13) % 100,
    gpu_utilization: null,
    gpu_memory_used: null,
    gpu_memory_total: null,
    ...overrides
  };
}

export function cluster(overrides: Partial<ICluster> = {}): ICluster {
  return {
    id: 'c0ffee',
    name: 'local-1',
    template: 'local',
    backend: 'local',
    status: 'running',
    managed: true,
    error: null,
    scheduler_address: 'tcp://127.0.0.1:8786',
    dashboard_url: '/user/ada/proxy/8787/status',
    created: 0,
    workers: { requested: 2, pending: 1, running: 1 },
    worker_states: { connected: 1, pending: 1 },
    adapt: null,
    cores: 2,
    memory: 2 ** 32,
    options: { workers: 2 },
    worker_list: [
      worker(0),
      worker(1, { state: 'pending', address: null, memory: null, cpu: null })
    ],
    connect_code:
      "from dask.distributed import Client\nclient = Client('tcp://127.0.0.1:8786')\nclient\n",
    ...overrides
  };
}

/**
 * An HTCondor cluster: 3 of 10 workers connected, 5 idle in the queue (one just submitted), 2 held.
 */
export function batchCluster(): ICluster {
  const idle = {
    state: 'queued',
    reason: 'Idle',
    detail: 'HTCondor found no slot for it: no match found'
  } as const;
  const held = {
    state: 'held',
    reason: 'Job exceeded memory',
    detail: 'HoldReasonCode 34, HoldReasonSubCode 0'
  } as const;
  const job = (index: number, overrides: Partial<IWorker>): IWorker =>
    worker(index, {
      job_id: `${index + 10}.0`,
      log: `job ${index + 10}.0`,
      memory: null,
      cpu: null,
      ...overrides
    });
  return cluster({
    name: 'htcondor-1',
    template: 'htcondor',
    backend: 'htcondor',
    workers: { requested: 10, pending: 7, running: 3 },
    worker_states: { connected: 3, queued: 5, held: 2 },
    worker_list: [
      ...[0, 1, 2].map(index => job(index, { state: 'connected', memory: 2 ** 28, cpu: 10 })),
      ...[3, 4, 5, 6].map(index => job(index, idle)),
      job(7, { state: 'queued', reason: 'Submitted' }),
      job(8, held),
      job(9, held)
    ]
  });
}

/**
 * A cluster of `count` connected workers, as the scheduler of a large pool reports it.
 */
export function largeCluster(count: number, round = 0): ICluster {
  const workers = Array.from({ length: count }, (_, index) =>
    worker(index, { cpu: (index + round) % 100 })
  );
  return cluster({
    workers: { requested: count, pending: 0, running: count },
    worker_states: { connected: count },
    cores: 2 * count,
    worker_list: workers
  });
}

/**
 * An API answering from memory; `calls` records what the panel asked for.
 */
export function memoryAPI(clusters: ICluster[] = []): IDaskAPI & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    templates: async () => [TEMPLATE],
    clusters: async () => clusters,
    create: async (template, options) => {
      calls.push(`create ${template} ${JSON.stringify(options)}`);
      return cluster({ id: 'new', name: `${template}-2` });
    },
    adopt: async (template, name) => {
      calls.push(`adopt ${template} ${name}`);
      return cluster({ id: 'adopted', name });
    },
    scale: async (id, request) => {
      calls.push(`scale ${id} ${JSON.stringify(request)}`);
      return cluster({ id });
    },
    shutdown: async id => {
      calls.push(`shutdown ${id}`);
    },
    logs: async () => ({ scheduler: 'started' })
  };
}

/**
 * Updates that never arrive by themselves: specs push them with `setClusters`.
 */
export function noUpdates(): IUpdates {
  let disposed = false;
  return {
    get isDisposed() {
      return disposed;
    },
    setInterval: () => undefined,
    dispose: () => {
      disposed = true;
    }
  };
}

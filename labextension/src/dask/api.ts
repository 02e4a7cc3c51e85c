/**
 * The Dask cluster manager's REST API (`<baseUrl>/sciencelab/api/dask/`), typed.
 *
 * Every call goes through `requestAPI`, so failures arrive as `SciencelabRequestError` carrying
 * the server's own message (400: the option, its value and its bounds; 403: a limit, or a template
 * of other JupyterHub groups; 404; 502 and 503: the backend's own words).
 */
import { JSONObject, ReadonlyJSONObject } from '@lumino/coreutils';

import { requestAPI } from '../request';

/**
 * Per-worker states: `pending` until connected where the backend cannot say more; batch backends
 * report `queued`, `held`, `running` (job started, worker not yet connected), then `finished` or
 * `failed`.
 */
export type WorkerState =
  'pending' | 'queued' | 'held' | 'running' | 'connected' | 'finished' | 'failed';

/**
 * One worker (or batch job meant to become one) with its scheduler metrics once connected.
 */
export interface IWorker {
  name: string;
  state: WorkerState;
  address: string | null;
  /**
   * Why the worker is in its state, in the batch system's words: "Idle", "Resources", a hold
   * reason, an exit code.
   */
  reason: string | null;
  /**
   * The longer story, for a tooltip: what the batch system adds, the last lines of the job's error log.
   */
  detail: string | null;
  /**
   * The key of this worker's job log in the cluster's logs (`GET .../clusters/<id>/logs`).
   */
  log: string | null;
  job_id: string | null;
  threads: number | null;
  /**
   * Bytes in use and the worker's limit.
   */
  memory: number | null;
  memory_limit: number | null;
  /**
   * Percent of one core.
   */
  cpu: number | null;
  gpu_utilization: number | null;
  gpu_memory_used: number | null;
  gpu_memory_total: number | null;
}

/**
 * A cluster as `GET sciencelab/api/dask/clusters` lists it.
 *
 * Clusters the backend runs for the user but this server does not manage (`managed: false`, e.g.
 * gateway clusters made in notebook code) have `id: null` and only name, template, backend,
 * status and dashboard; they can be adopted.
 */
export interface ICluster {
  id: string | null;
  name: string;
  template: string;
  backend: string;
  status: 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' | 'pending';
  managed: boolean;
  dashboard_url: string | null;
  error?: string | null;
  scheduler_address?: string | null;
  created?: number;
  workers?: { requested: number; pending: number; running: number };
  worker_states?: Partial<Record<WorkerState, number>>;
  adapt?: { minimum: number; maximum: number } | null;
  cores?: number;
  memory?: number;
  options?: JSONObject;
  worker_list?: IWorker[];
  connect_code?: string | null;
}

/**
 * A software environment the workers can run; `kernels` are the notebook kernels it matches.
 */
export interface IEnvironment {
  name: string;
  title: string;
  kernels: string[];
}

/**
 * A cluster template: what the "New cluster" form offers, with its JSON Schema.
 */
export interface ITemplate {
  name: string;
  title: string;
  description: string;
  backend: string;
  /**
   * False when the backend cannot be reached now; `error` says why.
   */
  available: boolean;
  error: string | null;
  schema: JSONObject;
  environments: IEnvironment[];
  default_environment: string | null;
}

/**
 * A scaling request: a fixed number of workers, or adaptive bounds.
 */
export type ScaleRequest = { workers: number } | { adapt: { minimum: number; maximum: number } };

/**
 * The calls the panel makes; tests pass their own.
 */
export interface IDaskAPI {
  templates(): Promise<ITemplate[]>;
  clusters(): Promise<ICluster[]>;
  create(template: string, options: ReadonlyJSONObject): Promise<ICluster>;
  adopt(template: string, name: string): Promise<ICluster>;
  scale(id: string, request: ScaleRequest): Promise<ICluster>;
  shutdown(id: string): Promise<void>;
  logs(id: string): Promise<Record<string, string>>;
}

/**
 * The API of the server this page came from.
 */
export const daskAPI: IDaskAPI = {
  templates: () => requestAPI<ITemplate[]>('dask/templates'),
  clusters: () => requestAPI<ICluster[]>('dask/clusters'),
  create: (template, options) =>
    requestAPI<ICluster>('dask/clusters', {
      method: 'POST',
      body: JSON.stringify({ template, options })
    }),
  adopt: (template, name) =>
    requestAPI<ICluster>('dask/clusters', {
      method: 'POST',
      body: JSON.stringify({ template, adopt: name })
    }),
  scale: (id, request) =>
    requestAPI<ICluster>(`dask/clusters/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      body: JSON.stringify(request)
    }),
  shutdown: id => requestAPI<void>(`dask/clusters/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  logs: id => requestAPI<Record<string, string>>(`dask/clusters/${encodeURIComponent(id)}/logs`)
};

/**
 * The Dask section's state: the user's templates and clusters, kept live over one WebSocket per tab.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ReadonlyJSONObject } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { daskAPI, ICluster, IDaskAPI, ITemplate, IWorker, ScaleRequest, WorkerState } from './api';

/**
 * Not-yet-connected and ended worker states, in the order the summary names them. A short reason
 * (a queue's "Idle", "Resources") goes in parentheses, a sentence (a hold reason, an exit code) is
 * quoted after a colon.
 */
const OTHER_STATES: ReadonlyArray<{ state: WorkerState; label: string; quoted: boolean }> = [
  { state: 'queued', label: 'queued', quoted: false },
  { state: 'held', label: 'held', quoted: true },
  { state: 'running', label: 'starting', quoted: false },
  { state: 'pending', label: 'pending', quoted: false },
  { state: 'failed', label: 'failed', quoted: true },
  { state: 'finished', label: 'finished', quoted: true }
];

/**
 * Distinct reasons a tooltip lists at most.
 */
const TOOLTIP_REASONS = 5;

/**
 * Seconds between reconnection attempts of the updates socket: doubles up to the last value.
 */
const RECONNECT_DELAYS = [1, 2, 4, 8, 16, 30];

/**
 * A connection that pushes the user's clusters; `openUpdates` by default, a stub in tests.
 */
export interface IUpdates extends IDisposable {
  /**
   * Ask for at most one update every `seconds`.
   */
  setInterval(seconds: number): void;
}

/**
 * Opens the updates connection; calls `onClusters` with every list the server pushes.
 */
export type UpdatesFactory = (
  onClusters: (clusters: ICluster[]) => void,
  interval: number
) => IUpdates;

/**
 * The templates, the clusters, and the actions on them.
 */
export class DaskClustersModel implements IDisposable {
  constructor(options: DaskClustersModel.IOptions = {}) {
    this._api = options.api ?? daskAPI;
    this._openUpdates = options.openUpdates ?? openUpdates;
  }

  /**
   * Emitted whenever templates, clusters or the error change.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get templates(): ReadonlyArray<ITemplate> {
    return this._templates;
  }

  get clusters(): ReadonlyArray<ICluster> {
    return this._clusters;
  }

  /**
   * What went wrong loading the templates or clusters, in the server's words; null when all is well.
   */
  get error(): string | null {
    return this._error;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Load the templates and the clusters, then follow the clusters live.
   */
  async start(updateInterval: number): Promise<void> {
    try {
      const [templates, clusters] = await Promise.all([
        this._api.templates(),
        this._api.clusters()
      ]);
      this._templates = templates;
      this._clusters = clusters;
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    this._changed.emit();
    if (!this._isDisposed) {
      this._updates = this._openUpdates(clusters => this.setClusters(clusters), updateInterval);
    }
  }

  /**
   * Replace the cluster list, as an update from the server does.
   */
  setClusters(clusters: ICluster[]): void {
    this._clusters = clusters;
    this._changed.emit();
  }

  setUpdateInterval(seconds: number): void {
    this._updates?.setInterval(seconds);
  }

  cluster(id: string): ICluster | undefined {
    return this._clusters.find(cluster => cluster.id === id);
  }

  template(name: string): ITemplate | undefined {
    return this._templates.find(template => template.name === name);
  }

  async create(template: string, options: ReadonlyJSONObject): Promise<ICluster> {
    return this._replace(await this._api.create(template, options));
  }

  async adopt(template: string, name: string): Promise<ICluster> {
    const adopted = await this._api.adopt(template, name);
    this._clusters = this._clusters.filter(cluster => cluster.managed || cluster.name !== name);
    return this._replace(adopted);
  }

  async scale(id: string, request: ScaleRequest): Promise<ICluster> {
    return this._replace(await this._api.scale(id, request));
  }

  async shutdown(id: string): Promise<void> {
    await this._api.shutdown(id);
    this.setClusters(this._clusters.filter(cluster => cluster.id !== id));
  }

  logs(id: string): Promise<Record<string, string>> {
    return this._api.logs(id);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._updates?.dispose();
    Signal.clearData(this);
  }

  private _replace(cluster: ICluster): ICluster {
    const others = this._clusters.filter(other => other.id !== cluster.id);
    this.setClusters([...others, cluster]);
    return cluster;
  }

  private readonly _api: IDaskAPI;
  private readonly _openUpdates: UpdatesFactory;
  private readonly _changed = new Signal<this, void>(this);
  private _templates: ITemplate[] = [];
  private _clusters: ICluster[] = [];
  private _error: string | null = null;
  private _updates: IUpdates | null = null;
  private _isDisposed = false;
}

/**
 * The namespace for `DaskClustersModel` statics.
 */
export namespace DaskClustersModel {
  export interface IOptions {
    api?: IDaskAPI;
    openUpdates?: UpdatesFactory;
  }
}

/**
 * The updates WebSocket of this page's server (`sciencelab/api/dask/clusters/updates`),
 * reconnecting with a growing delay when it drops.
 */
export function openUpdates(
  onClusters: (clusters: ICluster[]) => void,
  interval: number,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): IUpdates {
  let url = URLExt.join(settings.wsUrl, 'sciencelab', 'api', 'dask', 'clusters', 'updates');
  if (settings.appendToken && settings.token) {
    url += `?token=${encodeURIComponent(settings.token)}`;
  }
  let socket: WebSocket | null = null;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let disposed = false;

  const connect = (): void => {
    socket = new settings.WebSocket(url);
    socket.onopen = () => {
      attempt = 0;
      socket?.send(JSON.stringify({ interval }));
    };
    socket.onmessage = event => {
      const message = JSON.parse(String(event.data)) as { type: string; clusters: ICluster[] };
      if (message.type === 'clusters') {
        onClusters(message.clusters);
      }
    };
    socket.onclose = () => {
      if (!disposed) {
        const delay = RECONNECT_DELAYS[Math.min(attempt++, RECONNECT_DELAYS.length - 1)];
        timer = setTimeout(connect, delay * 1000);
      }
    };
  };
  connect();

  return {
    get isDisposed() {
      return disposed;
    },
    setInterval(seconds: number) {
      interval = seconds;
      if (socket?.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ interval }));
      }
    },
    dispose() {
      disposed = true;
      if (timer !== null) {
        clearTimeout(timer);
      }
      socket?.close();
    }
  };
}

/**
 * One part of a cluster's worker summary: "5 queued (Idle)", with every reason for the tooltip.
 */
export interface ISummaryPart {
  text: string;
  state: WorkerState | 'connected';
  /**
   * The distinct reasons of the workers in this state with their details, one per line; '' if none.
   */
  tooltip: string;
}

/**
 * How many workers in one state give one reason, and the first detail any of them has.
 */
interface IReasonCount {
  count: number;
  detail: string | null;
}

/**
 * "3 of 10 workers connected", then the workers not connected by state with their most common
 * reason: "5 queued (Idle)", "2 held: 'Job exceeded memory'". One pass over the workers.
 */
export function summarizeStates(cluster: ICluster): ISummaryPart[] {
  const workers = cluster.workers;
  if (!workers) {
    return [{ text: cluster.status, state: 'connected', tooltip: '' }];
  }
  const adapt = cluster.adapt
    ? ` (adaptive ${cluster.adapt.minimum}–${cluster.adapt.maximum})`
    : '';
  // While a cluster scales down, workers still connected outnumber those asked for.
  const connected =
    workers.running > workers.requested
      ? `${workers.running} workers connected, scaling down to ${workers.requested}`
      : `${workers.running} of ${workers.requested} workers connected`;
  const parts: ISummaryPart[] = [{ text: `${connected}${adapt}`, state: 'connected', tooltip: '' }];
  const reasons = new Map<WorkerState, Map<string, IReasonCount>>();
  for (const worker of cluster.worker_list ?? []) {
    if (worker.state === 'connected' || !worker.reason) {
      continue;
    }
    const byReason = reasons.get(worker.state) ?? new Map<string, IReasonCount>();
    reasons.set(worker.state, byReason);
    const seen = byReason.get(worker.reason) ?? { count: 0, detail: null };
    seen.count++;
    seen.detail = seen.detail ?? worker.detail; // HTCondor explains only the first idle job of a kind
    byReason.set(worker.reason, seen);
  }
  const states = cluster.worker_states ?? {};
  for (const { state, label, quoted } of OTHER_STATES) {
    const count = states[state] ?? 0;
    if (count === 0) {
      continue;
    }
    const byReason = [...(reasons.get(state) ?? new Map<string, IReasonCount>())];
    byReason.sort((a, b) => b[1].count - a[1].count);
    const reason = byReason[0]?.[0];
    const shown = reason ? (quoted ? `: '${reason}'` : ` (${reason})`) : '';
    const tooltip = byReason
      .slice(0, TOOLTIP_REASONS)
      .map(([text, { count: n, detail }]) => `${n} × ${text}${detail ? `\n${detail}` : ''}`)
      .join('\n\n');
    parts.push({ text: `${count} ${label}${shown}`, state, tooltip });
  }
  return parts;
}

/**
 * The summary as one line, e.g. "3 of 10 workers connected, 5 queued (Idle), 2 held: 'Job exceeded memory'".
 */
export function describeWorkers(cluster: ICluster): string {
  return summarizeStates(cluster)
    .map(part => part.text)
    .join(', ');
}

/**
 * Totals over the connected workers, in one pass (a cluster may have thousands).
 */
export interface IWorkerSummary {
  memory: number;
  memoryLimit: number;
  /**
   * Mean CPU use in percent of one core; null without connected workers.
   */
  cpu: number | null;
  /**
   * Mean GPU utilisation in percent and GPU memory totals; null where no worker reports a GPU.
   */
  gpuUtilization: number | null;
  gpuMemory: number;
  gpuMemoryTotal: number;
}

export function summarizeWorkers(workers: ReadonlyArray<IWorker>): IWorkerSummary {
  let memory = 0;
  let memoryLimit = 0;
  let cpu = 0;
  let connected = 0;
  let gpuUtilization = 0;
  let gpus = 0;
  let gpuMemory = 0;
  let gpuMemoryTotal = 0;
  for (const worker of workers) {
    if (worker.state !== 'connected') {
      continue;
    }
    connected++;
    memory += worker.memory ?? 0;
    memoryLimit += worker.memory_limit ?? 0;
    cpu += worker.cpu ?? 0;
    if (worker.gpu_utilization !== null) {
      gpus++;
      gpuUtilization += worker.gpu_utilization;
      gpuMemory += worker.gpu_memory_used ?? 0;
      gpuMemoryTotal += worker.gpu_memory_total ?? 0;
    }
  }
  return {
    memory,
    memoryLimit,
    cpu: connected ? cpu / connected : null,
    gpuUtilization: gpus ? gpuUtilization / gpus : null,
    gpuMemory,
    gpuMemoryTotal
  };
}

/**
 * The dashboard's individual plots that open as lab panels, as dask-labextension offers them.
 */
export const DASHBOARD_PLOTS: ReadonlyArray<{ plot: string; label: string }> = [
  { plot: 'task-stream', label: 'Task stream' },
  { plot: 'progress', label: 'Progress' },
  { plot: 'workers-memory', label: 'Memory' }
];

/**
 * The URL of one individual plot: the dashboard's `/status` page becomes `/individual-<plot>`.
 */
export function dashboardPlotUrl(dashboardUrl: string, plot: string): string {
  return dashboardUrl.replace(/\/status\/?$/, '') + `/individual-${plot}`;
}

/**
 * A log record starts with its time, as Dask's log format writes it: `2026-11-02 14:03:07,123 - ...`.
 * Other lines (a traceback) belong to the record above them.
 */
const LOG_RECORD_START = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}/;

/**
 * `text` with its newest record first. Schedulers' and workers' logs come newest first already;
 * a batch job's log file comes oldest first: its records are reversed, each record (with its
 * traceback) kept whole. Text without times is left as it is.
 */
export function newestFirst(text: string): string {
  const records: string[][] = [];
  for (const line of text.split('\n')) {
    if (records.length === 0 || LOG_RECORD_START.test(line)) {
      records.push([line]);
    } else {
      records[records.length - 1].push(line);
    }
  }
  const times = records
    .map(record => LOG_RECORD_START.exec(record[0])?.[0])
    .filter((time): time is string => time !== undefined);
  if (times.length < 2 || times[0] >= times[times.length - 1]) {
    return text;
  }
  return records
    .reverse()
    .map(record => record.join('\n'))
    .join('\n');
}

/**
 * Whether "Insert code" adds a cell below the active one: yes, unless that one is an empty code
 * cell (a new notebook's first cell), which the code then fills instead of leaving it empty.
 */
export function connectCodeGoesBelow(activeCell: { type: string; source: string } | null): boolean {
  return !(activeCell?.type === 'code' && activeCell.source.trim() === '');
}

/**
 * The environment to preselect: the one matching the active notebook's kernel, else the template's.
 */
export function defaultEnvironment(template: ITemplate, kernelName: string | null): string | null {
  const matching = kernelName
    ? template.environments.find(env => env.kernels.includes(kernelName))
    : undefined;
  return matching?.name ?? template.default_environment;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

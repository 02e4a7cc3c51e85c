/**
 * Tokens, command ids and the types of the ScienceLab server extension's REST API.
 */
import { Token } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

/**
 * Ids of the commands this extension registers.
 */
export namespace CommandIDs {
  /**
   * Reveal the ScienceLab panel in the left sidebar.
   */
  export const openPanel = 'sciencelab:open-panel';

  /**
   * Create a Dask cluster: `{template, options}`, or no arguments to open the form.
   */
  export const createCluster = 'sciencelab:create-cluster';

  /**
   * Scale a cluster: `{id, workers}` or `{id, minimum, maximum}` (adaptive).
   */
  export const scaleCluster = 'sciencelab:scale-cluster';

  /**
   * Shut a cluster down, `{id}`, after confirmation (the `confirmShutdown` setting).
   */
  export const shutdownCluster = 'sciencelab:shutdown-cluster';

  /**
   * Insert the code connecting a client to cluster `{id}` into the active notebook or console.
   */
  export const insertClusterCode = 'sciencelab:insert-cluster-code';

  /**
   * Open the dashboard of cluster `{id}` in a lab tab, or one plot of it: `{id, plot}`.
   */
  export const openClusterDashboard = 'sciencelab:open-cluster-dashboard';

  /**
   * Show the scheduler and worker logs of cluster `{id}`.
   */
  export const showClusterLogs = 'sciencelab:show-cluster-logs';

  /**
   * Move this server's stop deadline by one extension step, within its profile's limit.
   */
  export const extendSession = 'sciencelab:extend-session';

  /**
   * Open the Share dialog of this server: who may use it, share links, revoking.
   */
  export const share = 'sciencelab:share';
}

/**
 * The ScienceLab side panel: each capability (Dask clusters, GPU monitor, ...) adds its own
 * collapsible section to it from its own plugin.
 */
export const ISciencelabSidebar = new Token<ISciencelabSidebar>(
  '@sciencelab/labextension:ISciencelabSidebar',
  'The ScienceLab side panel, to which each capability adds its section.'
);

/**
 * The ScienceLab side panel, as capabilities see it.
 */
export interface ISciencelabSidebar {
  /**
   * Add `widget` as a collapsible section; its `title.label` is the section heading.
   */
  addSection(widget: Widget, options?: ISciencelabSidebar.ISectionOptions): void;

  /**
   * Expand the section of `widget` (the user may have collapsed it) and scroll it into view.
   */
  expandSection(widget: Widget): void;

  /**
   * Show or hide the section of `widget`, heading included (a section with nothing to show).
   */
  setSectionVisible(widget: Widget, visible: boolean): void;

  /**
   * Add `widget` (a button, typically a `CommandToolbarButton`) to the row of actions under the
   * spawn profile.
   */
  addProfileAction(widget: Widget): void;

  /**
   * The server information, fetched once when the panel is created. Rejects with a
   * `SciencelabRequestError` when the server extension cannot be reached.
   */
  readonly info: Promise<ISciencelabInfo>;
}

/**
 * The namespace for `ISciencelabSidebar` types.
 */
export namespace ISciencelabSidebar {
  /**
   * Where a section goes.
   */
  export interface ISectionOptions {
    /**
     * Sections are ordered by rank, lowest on top: the profile has 0, the session 50, Dask
     * clusters 100, the GPU monitor 200. Sections of equal rank keep the order they were added in. Default: 500.
     */
    rank?: number;
  }
}

/**
 * The spawn profile the hub started this server with: the record a ScienceLab spawner writes
 * (format: `spawner/sciencelab_spawner/profile_record.py`). CPU in cores, memory in bytes.
 */
export interface ISciencelabProfile {
  version: number;

  /**
   * Machine-readable profile id, e.g. `cpu`.
   */
  slug: string;

  /**
   * Name shown to people, e.g. `CPU analysis`.
   */
  display_name: string;

  description: string;

  image: { name: string; display_name: string; image: string } | null;

  resources: {
    cpu_guarantee: number | null;
    cpu_limit: number | null;
    mem_guarantee: number | null;
    mem_limit: number | null;
  };

  gpu: {
    model: string;
    display_name: string;
    count: number;
    resource: string;
    devices: string[];
  } | null;

  cvmfs: Array<{ name: string; display_name: string; path: string }>;

  s3: Array<{
    name: string;
    display_name: string;
    endpoint: string;
    bucket: string;
    read_only: boolean;
  }>;

  collaborative: boolean;

  /**
   * What the user should know, e.g. that a remembered choice is no longer offered.
   */
  notices: string[];

  /**
   * The settings (by option: `image`, `size`, `cvmfs`, `s3`, `collaborative`) that the spawner
   * which started this server does not apply, a marker to show next to each ("only on
   * Kubernetes") and why; `null`, or absent from older hubs, when every setting applies.
   */
  not_applied?: { settings: string[]; marker: string; reason: string } | null;
}

/**
 * Which optional ScienceLab features the server has enabled.
 */
export interface ISciencelabFeatures {
  dask_clusters: boolean;
  gpu_monitor: boolean;
  session_sharing: boolean;
}

/**
 * Body of `GET <baseUrl>/sciencelab/api/info`.
 */
export interface ISciencelabInfo {
  /**
   * Version of the `sciencelab` Python distribution on the server.
   */
  version: string;

  /**
   * The spawn profile, or `null` when the server was not started by a ScienceLab hub.
   */
  profile: ISciencelabProfile | null;

  features: ISciencelabFeatures;

  /**
   * The batch job this server runs as (a `runs_on: slurm` profile), from the job's own
   * environment; `null`, or absent from older servers, when it is no batch job.
   */
  batch_job?: IBatchJob | null;
}

/**
 * Where a server that runs as a batch job runs.
 */
export interface IBatchJob {
  scheduler: 'slurm';
  job_id: string;
  node: string | null;
  partition: string | null;
}

/**
 * The terms under which the hub stops this server: body of `GET <baseUrl>/sciencelab/api/session`,
 * and of the `POST` there that extends the session. Times are ISO 8601 with an offset, durations in
 * seconds.
 */
export interface ISessionTerms {
  /**
   * Whether a ScienceLab hub service sets terms for this server; when false nothing else applies
   * and the lab shows nothing of sessions.
   */
  managed: boolean;

  /**
   * When the hub stops the server (the profile's lifetime), or null for no time limit.
   */
  deadline: string | null;

  /**
   * Seconds without activity after which the hub stops the server, or null for never.
   */
  idle_timeout: number | null;

  /**
   * The latest the deadline can be moved to; null when the session cannot be extended.
   */
  extend_until: string | null;

  /**
   * Seconds one extension adds (never past `extend_until`), or null.
   */
  extend_step: number | null;

  /**
   * The user's group is exempt: neither the deadline nor the idle stop applies.
   */
  exempt: boolean;

  /**
   * The hub service's clock when it answered, to correct this browser's clock.
   */
  now: string;

  /**
   * Only with `managed: false`: why the hub has no terms for this server now (it is starting or
   * stopping); the lab asks again later. Absent where the server has no ScienceLab hub service,
   * and then the lab stops asking.
   */
  message?: string;
}

/**
 * Who may use this server besides its owner: one user, or the members of one group.
 */
export interface IShare {
  kind: 'user' | 'group';
  name: string;
  /**
   * ISO 8601.
   */
  created_at: string;
}

/**
 * A share link (a JupyterHub share code) as listed: its secret URL is never listed again.
 */
export interface IShareCode {
  /**
   * `sc_<number>`.
   */
  id: string;
  created_at: string;
  expires_at: string;
  /**
   * How many people accepted it.
   */
  exchange_count: number;
}

/**
 * A share link just made: `accept_url`, relative to the hub's origin, is shown this once.
 */
export interface INewShareCode extends IShareCode {
  accept_url: string;
}

/**
 * Body of `GET <baseUrl>/sciencelab/api/shares`.
 */
export interface IShareListing {
  collaborative: boolean;
  shares: IShare[];
  codes: IShareCode[];
}

/**
 * A server another user shared with this server's owner (or with one of their groups).
 */
export interface ISharedServer {
  owner: string;
  /**
   * The server's name; empty for the owner's default server.
   */
  name: string;
  /**
   * Path of the server on the hub's origin, e.g. `/user/alice/together/`.
   */
  url: string;
  ready: boolean;
  /**
   * The group it was shared through, or null when shared with the user directly.
   */
  through: string | null;
}

/**
 * Body of `GET <baseUrl>/sciencelab/api/shared-with-me`.
 */
export interface ISharedWithMe {
  servers: ISharedServer[];
}

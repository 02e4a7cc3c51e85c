/**
 * Command ids and the types of the ScienceLab server extension's REST API.
 */

/**
 * Ids of the commands this extension registers.
 */
export namespace CommandIDs {
  /**
   * Reveal the ScienceLab panel in the left sidebar.
   */
  export const openPanel = 'sciencelab:open-panel';
}

/**
 * The spawn profile the hub started this server with.
 */
export interface ISciencelabProfile {
  /**
   * Machine-readable profile id, e.g. `small`.
   */
  slug: string;

  /**
   * Name shown to people, e.g. `Small - 1 CPU, 2 GB`.
   */
  display_name: string;
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
}

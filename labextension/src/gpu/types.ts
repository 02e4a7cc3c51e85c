/**
 * The GPU monitor's REST and WebSocket payloads (`server_extension/sciencelab/gpu/samples.py`).
 */

/**
 * Utilisation in percent over NVML's last averaging period.
 */
export interface IGpuUtilization {
  gpu: number;
  memory: number;
}

/**
 * Memory in bytes.
 */
export interface IGpuMemory {
  used: number;
  total: number;
}

/**
 * One MIG device of a GPU in MIG mode.
 */
export interface IMigDevice {
  index: number;
  uuid: string;
  name: string;
  memory: IGpuMemory;
  utilization: IGpuUtilization | null;
  /**
   * Why `utilization` is null, e.g. `not reported for MIG`.
   */
  utilization_note: string | null;
}

/**
 * A process holding GPU memory: one of this server's kernels, or "other" (no PID, no name).
 */
export interface IGpuProcess {
  owner: 'kernel' | 'other';
  pid: number | null;
  memory_used: number | null;
  kernel_id?: string;
  kernel_name?: string;
  notebook?: string | null;
}

/**
 * Whether this server's kernels hold the GPU and leave it idle.
 */
export interface IGpuIdle {
  held: boolean;
  /**
   * Unix time since which the held GPU has stayed below the idle threshold, or null.
   */
  below_threshold_since: number | null;
  flagged: boolean;
}

/**
 * One GPU in one sample.
 */
export interface IGpu {
  index: number;
  uuid: string;
  name: string;
  utilization: IGpuUtilization | null;
  utilization_note: string | null;
  memory: IGpuMemory;
  temperature_c: number | null;
  power_w: number | null;
  power_limit_w: number | null;
  sm_clock_mhz: number | null;
  pcie_rx_kib_s: number | null;
  pcie_tx_kib_s: number | null;
  mig_devices: IMigDevice[];
  processes: IGpuProcess[];
  idle: IGpuIdle;
}

/**
 * One sample: every GPU, or the reason there is none.
 */
export type IGpuSample =
  | { available: true; time: number; driver: string | null; gpus: IGpu[] }
  | { available: false; time: number; reason: string };

/**
 * What the history keeps of one sample.
 */
export interface IHistoryPoint {
  time: number;
  gpus: { uuid: string; utilization: number | null; memory_used: number }[];
}

/**
 * The sampler's settings, as `PATCH sciencelab/api/gpu` answers them.
 */
export interface IGpuServerSettings {
  interval: number;
  history_seconds: number;
  idle_threshold: number;
  idle_duration: number;
}

/**
 * Body of `GET sciencelab/api/gpu`.
 */
export interface IGpuSnapshot {
  current: IGpuSample;
  history: IHistoryPoint[];
  settings: IGpuServerSettings;
}

import { IGpu, IGpuSample } from '../types';

export const GIB = 1024 ** 3;

/**
 * A GPU record as the server sends it; `overrides` replace fields.
 */
export function makeGpu(overrides: Partial<IGpu> = {}): IGpu {
  return {
    index: 0,
    uuid: 'GPU-0',
    name: 'NVIDIA A100-SXM4-80GB',
    utilization: { gpu: 45, memory: 30 },
    utilization_note: null,
    memory: { used: 12.3 * GIB, total: 80 * GIB },
    temperature_c: 55,
    power_w: 250,
    power_limit_w: 400,
    sm_clock_mhz: 1410,
    pcie_rx_kib_s: 1024,
    pcie_tx_kib_s: 2048,
    mig_devices: [],
    processes: [],
    idle: { held: false, below_threshold_since: null, flagged: false },
    ...overrides
  };
}

export function makeSample(gpus: IGpu[], time = 1000): IGpuSample {
  return { available: true, time, driver: '550.54.15', gpus };
}

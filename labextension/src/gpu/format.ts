/**
 * Pure formatting of GPU samples for the status bar, the panel and the charts.
 */
import type { AlignedData } from 'uplot';

import { IGpu, IGpuSample, IHistoryPoint } from './types';

const GIB = 1024 ** 3;

/**
 * Bytes as GiB with one decimal; whole numbers (totals such as 80) without.
 */
export function formatGiB(bytes: number): string {
  const gib = bytes / GIB;
  return Number.isInteger(gib) ? String(gib) : gib.toFixed(1);
}

/**
 * `12.3/80 GiB`.
 */
export function formatMemory(memory: { used: number; total: number }): string {
  return `${formatGiB(memory.used)}/${formatGiB(memory.total)} GiB`;
}

/**
 * `45 s` below two minutes, else whole minutes: `10 min`.
 */
export function formatDuration(seconds: number): string {
  return seconds < 120 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

/**
 * The GPU people most want to see: the busiest, by utilisation, then by memory in use.
 */
export function busiestGpu(gpus: IGpu[]): IGpu | null {
  let busiest: IGpu | null = null;
  for (const gpu of gpus) {
    if (busiest === null || compareLoad(gpu, busiest) > 0) {
      busiest = gpu;
    }
  }
  return busiest;
}

function compareLoad(a: IGpu, b: IGpu): number {
  const byUtilization = (a.utilization?.gpu ?? -1) - (b.utilization?.gpu ?? -1);
  return byUtilization !== 0
    ? byUtilization
    : a.memory.used / a.memory.total - b.memory.used / b.memory.total;
}

/**
 * One line per GPU: `GPU 0 NVIDIA A100: 45%, 12.3/80 GiB, 55 °C, 250/400 W`.
 */
export function describeGpu(gpu: IGpu): string {
  const parts = [
    gpu.utilization ? `${gpu.utilization.gpu}%` : `utilisation ${gpu.utilization_note ?? 'unknown'}`
  ];
  parts.push(formatMemory(gpu.memory));
  if (gpu.temperature_c !== null) {
    parts.push(`${gpu.temperature_c} °C`);
  }
  if (gpu.power_w !== null) {
    parts.push(
      gpu.power_limit_w === null
        ? `${Math.round(gpu.power_w)} W`
        : `${Math.round(gpu.power_w)}/${Math.round(gpu.power_limit_w)} W`
    );
  }
  const idle = gpu.idle.flagged ? ' (idle: held by your kernels)' : '';
  return `GPU ${gpu.index} ${gpu.name}: ${parts.join(', ')}${idle}`;
}

/**
 * What the status-bar item shows.
 */
export interface IStatusSummary {
  /**
   * `GPU 45% · 12.3/80 GiB`, `No GPU`, or `GPU …` before the first sample.
   */
  text: string;
  tooltip: string;
  hasGpu: boolean;
  /**
   * A GPU held by this server has been idle for the idle duration.
   */
  idle: boolean;
}

/**
 * The status-bar summary of a sample (null: none yet).
 */
export function summarize(sample: IGpuSample | null): IStatusSummary {
  if (sample === null) {
    return {
      text: 'GPU …',
      tooltip: 'Waiting for the first GPU sample',
      hasGpu: false,
      idle: false
    };
  }
  if (!sample.available) {
    return { text: 'No GPU', tooltip: sample.reason, hasGpu: false, idle: false };
  }
  const busiest = busiestGpu(sample.gpus);
  if (busiest === null) {
    return { text: 'No GPU', tooltip: 'NVML reports no GPU', hasGpu: false, idle: false };
  }
  const utilization = busiest.utilization ? `${busiest.utilization.gpu}%` : 'MIG';
  const idle = sample.gpus.some(gpu => gpu.idle.flagged);
  return {
    text: `GPU ${utilization} · ${formatMemory(busiest.memory)}${idle ? ' · idle' : ''}`,
    tooltip: sample.gpus.map(describeGpu).join('\n'),
    hasGpu: true,
    idle
  };
}

/**
 * The history point of a sample, as the server keeps it (`make_history_point`).
 */
export function historyPoint(sample: IGpuSample): IHistoryPoint {
  if (!sample.available) {
    return { time: sample.time, gpus: [] };
  }
  return {
    time: sample.time,
    gpus: sample.gpus.map(gpu => ({
      uuid: gpu.uuid,
      utilization: gpu.utilization?.gpu ?? null,
      memory_used: gpu.memory.used
    }))
  };
}

/**
 * uPlot's columns for one GPU over the last `windowSeconds`: time, utilisation %, memory %.
 *
 * Points where the GPU was missing (NVML down) are null, which uPlot draws as gaps.
 */
export function chartData(
  history: IHistoryPoint[],
  uuid: string,
  memoryTotal: number,
  windowSeconds: number
): AlignedData {
  const newest = history.length > 0 ? history[history.length - 1].time : 0;
  const times: number[] = [];
  const utilization: (number | null)[] = [];
  const memory: (number | null)[] = [];
  for (const point of history) {
    if (point.time < newest - windowSeconds) {
      continue;
    }
    const gpu = point.gpus.find(entry => entry.uuid === uuid);
    times.push(point.time);
    utilization.push(gpu?.utilization ?? null);
    memory.push(gpu ? (100 * gpu.memory_used) / memoryTotal : null);
  }
  return [times, utilization, memory];
}

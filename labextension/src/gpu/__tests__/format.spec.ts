import {
  busiestGpu,
  chartData,
  formatDuration,
  formatMemory,
  historyPoint,
  summarize
} from '../format';
import { GIB, makeGpu, makeSample } from './fixtures';

describe('summarize', () => {
  it('shows the busiest GPU as "GPU 45% · 12.3/80 GiB" and every GPU in the tooltip', () => {
    const quiet = makeGpu({
      index: 1,
      uuid: 'GPU-1',
      utilization: { gpu: 3, memory: 1 },
      memory: { used: 1 * GIB, total: 40 * GIB }
    });
    const summary = summarize(makeSample([quiet, makeGpu()]));
    expect(summary).toEqual({
      text: 'GPU 45% · 12.3/80 GiB',
      tooltip:
        'GPU 1 NVIDIA A100-SXM4-80GB: 3%, 1/40 GiB, 55 °C, 250/400 W\n' +
        'GPU 0 NVIDIA A100-SXM4-80GB: 45%, 12.3/80 GiB, 55 °C, 250/400 W',
      hasGpu: true,
      idle: false
    });
  });

  it('flags an idle GPU held by this server', () => {
    const idle = makeGpu({
      utilization: { gpu: 0, memory: 0 },
      idle: { held: true, below_threshold_since: 1, flagged: true }
    });
    const summary = summarize(makeSample([idle]));
    expect(summary.text).toBe('GPU 0% · 12.3/80 GiB · idle');
    expect(summary.idle).toBe(true);
    expect(summary.tooltip).toContain('(idle: held by your kernels)');
  });

  it('says "No GPU" with the server\'s reason, and waits before the first sample', () => {
    const reason =
      'No NVIDIA driver: the NVML library (libnvidia-ml.so.1) is not installed on this server.';
    expect(summarize({ available: false, time: 1, reason })).toEqual({
      text: 'No GPU',
      tooltip: reason,
      hasGpu: false,
      idle: false
    });
    expect(summarize(null).text).toBe('GPU …');
  });

  it('names MIG utilisation as not reported', () => {
    const mig = makeGpu({
      utilization: null,
      utilization_note: 'not reported for MIG',
      power_w: null
    });
    expect(summarize(makeSample([mig])).text).toBe('GPU MIG · 12.3/80 GiB');
    expect(summarize(makeSample([mig])).tooltip).toBe(
      'GPU 0 NVIDIA A100-SXM4-80GB: utilisation not reported for MIG, 12.3/80 GiB, 55 °C'
    );
  });
});

describe('busiestGpu', () => {
  it('prefers utilisation, then the fuller memory', () => {
    const a = makeGpu({
      uuid: 'a',
      utilization: null,
      memory: { used: 70 * GIB, total: 80 * GIB }
    });
    const b = makeGpu({
      uuid: 'b',
      utilization: null,
      memory: { used: 10 * GIB, total: 80 * GIB }
    });
    expect(busiestGpu([b, a])?.uuid).toBe('a');
    expect(busiestGpu([a, makeGpu({ uuid: 'c', utilization: { gpu: 1, memory: 0 } })])?.uuid).toBe(
      'c'
    );
    expect(busiestGpu([])).toBeNull();
  });
});

describe('chart data', () => {
  it('gives uPlot time, utilisation and memory columns over the window, gaps as null', () => {
    const history = [
      { time: 10, gpus: [{ uuid: 'a', utilization: 5, memory_used: 20 }] },
      { time: 20, gpus: [{ uuid: 'a', utilization: 50, memory_used: 40 }] },
      { time: 30, gpus: [] },
      { time: 40, gpus: [{ uuid: 'a', utilization: 90, memory_used: 80 }] }
    ];
    expect(chartData(history, 'a', 80, 25)).toEqual([
      [20, 30, 40],
      [50, null, 90],
      [50, null, 100]
    ]);
  });

  it('keeps of a sample what the server history keeps', () => {
    expect(historyPoint(makeSample([makeGpu()], 7))).toEqual({
      time: 7,
      gpus: [{ uuid: 'GPU-0', utilization: 45, memory_used: 12.3 * GIB }]
    });
    expect(historyPoint({ available: false, time: 8, reason: 'x' })).toEqual({ time: 8, gpus: [] });
  });

  it('formats memory in GiB and durations in seconds or minutes', () => {
    expect(formatMemory({ used: 12.34 * GIB, total: 80 * GIB })).toBe('12.3/80 GiB');
    expect([formatDuration(2), formatDuration(119), formatDuration(600)]).toEqual([
      '2 s',
      '119 s',
      '10 min'
    ]);
  });
});

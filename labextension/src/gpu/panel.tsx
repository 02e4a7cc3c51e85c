import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { chartData, formatDuration, formatGiB, formatMemory } from './format';
import { GpuChart } from './chart';
import { GpuMonitorModel } from './model';
import { IGpu, IGpuProcess, IGpuServerSettings, IHistoryPoint, IMigDevice } from './types';

/**
 * Figures of one GPU as label/value pairs; values NVML does not report are left out.
 */
export function GpuFigures(props: { gpu: IGpu }): JSX.Element {
  const { gpu } = props;
  const figures: [string, string][] = [
    [
      'Utilisation',
      gpu.utilization
        ? `${gpu.utilization.gpu}% (memory ${gpu.utilization.memory}%)`
        : (gpu.utilization_note ?? '–')
    ],
    ['Memory', formatMemory(gpu.memory)]
  ];
  if (gpu.temperature_c !== null) {
    figures.push(['Temperature', `${gpu.temperature_c} °C`]);
  }
  if (gpu.power_w !== null) {
    const limit = gpu.power_limit_w === null ? '' : ` of ${Math.round(gpu.power_limit_w)} W`;
    figures.push(['Power', `${Math.round(gpu.power_w)} W${limit}`]);
  }
  if (gpu.sm_clock_mhz !== null) {
    figures.push(['SM clock', `${gpu.sm_clock_mhz} MHz`]);
  }
  if (gpu.pcie_rx_kib_s !== null && gpu.pcie_tx_kib_s !== null) {
    figures.push([
      'PCIe',
      `rx ${(gpu.pcie_rx_kib_s / 1024).toFixed(1)} · tx ${(gpu.pcie_tx_kib_s / 1024).toFixed(1)} MiB/s`
    ]);
  }
  return (
    <dl className="sciencelab-GpuFigures">
      {figures.map(([label, value]) => (
        <React.Fragment key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </React.Fragment>
      ))}
    </dl>
  );
}

/**
 * Who holds memory on the GPU: this server's notebooks by name, everyone else as "other".
 */
export function ProcessTable(props: { processes: IGpuProcess[] }): JSX.Element {
  if (props.processes.length === 0) {
    return <p className="sciencelab-GpuNone">No process holds memory on this GPU.</p>;
  }
  return (
    <table className="sciencelab-GpuProcesses">
      <thead>
        <tr>
          <th>Notebook</th>
          <th>PID</th>
          <th>Memory</th>
        </tr>
      </thead>
      <tbody>
        {props.processes.map((process, row) => (
          <tr
            key={row}
            className={process.owner === 'kernel' ? 'sciencelab-mod-own' : 'sciencelab-mod-other'}
          >
            <td>
              {process.owner === 'kernel'
                ? (process.notebook ?? `kernel ${process.kernel_id}`)
                : 'other'}
            </td>
            <td>{process.pid ?? ''}</td>
            <td>{process.memory_used === null ? '–' : `${formatGiB(process.memory_used)} GiB`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The MIG devices of a GPU in MIG mode, with their memory and what NVML says of utilisation.
 */
export function MigTable(props: { devices: IMigDevice[] }): JSX.Element {
  return (
    <table className="sciencelab-GpuMig">
      <thead>
        <tr>
          <th>MIG device</th>
          <th>Memory</th>
          <th>Utilisation</th>
        </tr>
      </thead>
      <tbody>
        {props.devices.map(device => (
          <tr key={device.uuid}>
            <td>{device.name}</td>
            <td>{formatMemory(device.memory)}</td>
            <td>
              {device.utilization ? `${device.utilization.gpu}%` : (device.utilization_note ?? '–')}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The idle warning: asks people to release a GPU others may be waiting for.
 */
export function IdleWarning(props: { settings: IGpuServerSettings | null }): JSX.Element {
  const threshold = props.settings ? `${props.settings.idle_threshold}%` : 'the idle threshold';
  const duration = props.settings ? formatDuration(props.settings.idle_duration) : 'a while';
  return (
    <p className="sciencelab-GpuIdle" role="alert">
      Idle: your kernels hold this GPU but used less than {threshold} of it for {duration}. Shut the
      kernel down or free its memory so others can use the GPU.
    </p>
  );
}

function GpuCard(props: {
  gpu: IGpu;
  history: readonly IHistoryPoint[];
  windowSeconds: number;
  settings: IGpuServerSettings | null;
}): JSX.Element {
  const { gpu } = props;
  const data = chartData([...props.history], gpu.uuid, gpu.memory.total, props.windowSeconds);
  return (
    <section
      className={`sciencelab-Gpu${gpu.idle.flagged ? ' sciencelab-mod-idle' : ''}`}
      data-uuid={gpu.uuid}
    >
      <h4>
        GPU {gpu.index} · {gpu.name}
      </h4>
      {gpu.idle.flagged && <IdleWarning settings={props.settings} />}
      <GpuFigures gpu={gpu} />
      <GpuChart data={data} />
      {gpu.mig_devices.length > 0 && <MigTable devices={gpu.mig_devices} />}
      <ProcessTable processes={gpu.processes} />
    </section>
  );
}

/**
 * Everything the GPU section shows for the model's current state.
 */
export function GpuPanel(props: { model: GpuMonitorModel; windowSeconds: number }): JSX.Element {
  const { model } = props;
  const current = model.current;
  const error = model.connectionError && (
    <p className="sciencelab-error" role="alert">
      {model.connectionError}
    </p>
  );
  if (current === null) {
    return (
      <div className="sciencelab-GpuPanel">
        {error ?? <p className="sciencelab-status">Waiting for the first GPU sample…</p>}
      </div>
    );
  }
  return (
    <div className="sciencelab-GpuPanel">
      {error}
      {current.available ? (
        current.gpus.map(gpu => (
          <GpuCard
            key={gpu.uuid}
            gpu={gpu}
            history={model.history}
            windowSeconds={props.windowSeconds}
            settings={model.settings}
          />
        ))
      ) : (
        <p className="sciencelab-GpuUnavailable">{current.reason}</p>
      )}
    </div>
  );
}

/**
 * The GPU section of the ScienceLab sidebar.
 */
export class GpuSection extends ReactWidget {
  constructor(model: GpuMonitorModel) {
    super();
    this._model = model;
    this.id = 'sciencelab-gpu-section';
    this.title.label = 'GPU';
    this.addClass('sciencelab-GpuSection');
  }

  /**
   * Seconds of history the charts show (the user's setting).
   */
  get windowSeconds(): number {
    return this._windowSeconds;
  }

  set windowSeconds(seconds: number) {
    this._windowSeconds = seconds;
    this.update();
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => <GpuPanel model={this._model} windowSeconds={this._windowSeconds} />}
      </UseSignal>
    );
  }

  private readonly _model: GpuMonitorModel;
  private _windowSeconds = 15 * 60;
}

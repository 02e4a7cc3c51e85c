import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from '../request';
import { historyPoint } from './format';
import { IGpuSample, IGpuServerSettings, IGpuSnapshot, IHistoryPoint } from './types';

/**
 * Seconds before the first reconnection attempt; doubled after each failure up to the maximum.
 */
const RECONNECT_FIRST_S = 1;
const RECONNECT_MAX_S = 30;

/**
 * The GPU data of one browser tab: the history from `GET sciencelab/api/gpu`, then every sample
 * from the one WebSocket this tab opens. The panel and the status-bar item share it.
 */
export class GpuMonitorModel implements IDisposable {
  constructor(options: GpuMonitorModel.IOptions = {}) {
    this._serverSettings = options.serverSettings ?? ServerConnection.makeSettings();
  }

  /**
   * Emitted after each new sample and when the connection state changes.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get current(): IGpuSample | null {
    return this._current;
  }

  get history(): readonly IHistoryPoint[] {
    return this._history;
  }

  /**
   * The server's sampler settings, once known.
   */
  get settings(): IGpuServerSettings | null {
    return this._settings;
  }

  /**
   * Why the monitor cannot be reached, or null while connected.
   */
  get connectionError(): string | null {
    return this._connectionError;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Load the history, then listen to the stream. Never rejects: failures show in `connectionError`.
   */
  async start(): Promise<void> {
    try {
      const snapshot = await requestAPI<IGpuSnapshot>('gpu', {}, this._serverSettings);
      this._settings = snapshot.settings;
      this._history = [...snapshot.history];
      this._current = snapshot.current;
      this._connectionError = null;
    } catch (error) {
      this._connectionError = error instanceof Error ? error.message : String(error);
    }
    this._changed.emit();
    this._connect();
  }

  /**
   * Ask the server's sampler for other settings (validated there; a refusal rejects with its message).
   */
  async configure(settings: Partial<Omit<IGpuServerSettings, 'history_seconds'>>): Promise<void> {
    this._settings = await requestAPI<IGpuServerSettings>(
      'gpu',
      { method: 'PATCH', body: JSON.stringify(settings) },
      this._serverSettings
    );
    this._changed.emit();
  }

  /**
   * Take one sample from the stream: it becomes current and joins the history.
   */
  addSample(sample: IGpuSample): void {
    this._current = sample;
    this._history.push(historyPoint(sample));
    const horizon = sample.time - (this._settings?.history_seconds ?? Infinity);
    const stale = this._history.findIndex(point => point.time >= horizon);
    if (stale > 0) {
      this._history.splice(0, stale);
    }
    this._changed.emit();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    clearTimeout(this._reconnectTimer);
    this._socket?.close();
    Signal.clearData(this);
  }

  private _connect(): void {
    if (this._isDisposed) {
      return;
    }
    const settings = this._serverSettings;
    let url = URLExt.join(settings.wsUrl, 'sciencelab', 'api', 'gpu', 'stream');
    if (settings.appendToken && settings.token !== '') {
      url += `?token=${encodeURIComponent(settings.token)}`;
    }
    const socket = new settings.WebSocket(url);
    this._socket = socket;
    socket.onopen = () => {
      this._reconnectDelay = RECONNECT_FIRST_S;
      if (this._connectionError !== null) {
        this._connectionError = null;
        this._changed.emit();
      }
    };
    socket.onmessage = event => {
      this.addSample(JSON.parse(String(event.data)) as IGpuSample);
    };
    socket.onclose = () => {
      if (this._isDisposed) {
        return;
      }
      this._connectionError = `Lost the connection to the GPU monitor; retrying in ${this._reconnectDelay} s.`;
      this._changed.emit();
      this._reconnectTimer = setTimeout(() => this._connect(), this._reconnectDelay * 1000);
      this._reconnectDelay = Math.min(2 * this._reconnectDelay, RECONNECT_MAX_S);
    };
  }

  private readonly _serverSettings: ServerConnection.ISettings;
  private readonly _changed = new Signal<this, void>(this);
  private _current: IGpuSample | null = null;
  private _history: IHistoryPoint[] = [];
  private _settings: IGpuServerSettings | null = null;
  private _connectionError: string | null = null;
  private _socket: WebSocket | null = null;
  private _reconnectDelay = RECONNECT_FIRST_S;
  private _reconnectTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private _isDisposed = false;
}

/**
 * The namespace for `GpuMonitorModel` statics.
 */
export namespace GpuMonitorModel {
  /**
   * Options for the model.
   */
  export interface IOptions {
    /**
     * The Jupyter server to watch; the page's by default.
     */
    serverSettings?: ServerConnection.ISettings;
  }
}

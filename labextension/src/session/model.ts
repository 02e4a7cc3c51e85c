import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI, SciencelabRequestError } from '../request';
import { ISessionTerms } from '../tokens';
import {
  clockSkew,
  deadlineOf,
  extendedMessage,
  extendState,
  IExtendState,
  ISessionMessage,
  nextWarning,
  warningMessage
} from './format';

/**
 * Milliseconds between two reads of the session's terms.
 */
const POLL_INTERVAL_MS = 60 * 1000;

/**
 * Milliseconds between two updates of the countdown.
 */
const TICK_MS = 1000;

/**
 * Seconds before the deadline at which to warn, when the settings say nothing (schema/session.json).
 */
export const DEFAULT_WARNINGS: readonly number[] = [900, 120];

/**
 * The warning offsets of the user's settings (schema/session.json): positive seconds, or the
 * defaults when the setting is not a list of them.
 */
export function warningsFrom(value: unknown): number[] {
  if (!Array.isArray(value)) {
    return [...DEFAULT_WARNINGS];
  }
  return value.filter((offset): offset is number => typeof offset === 'number' && offset > 0);
}

/**
 * The session API of the ScienceLab server extension (`<baseUrl>/sciencelab/api/session`).
 */
export interface ISessionAPI {
  /**
   * The session's terms.
   */
  get(): Promise<ISessionTerms>;

  /**
   * Move the deadline by one step; rejects with a `SciencelabRequestError`, status 409 and a
   * message naming the limit when the deadline cannot move.
   */
  extend(): Promise<ISessionTerms>;
}

/**
 * The session API of the server at `serverSettings` (the page's by default).
 */
export function makeSessionAPI(
  serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
): ISessionAPI {
  return {
    get: () => requestAPI<ISessionTerms>('session', {}, serverSettings),
    extend: () =>
      requestAPI<ISessionTerms>('session', { method: 'POST', body: '{}' }, serverSettings)
  };
}

/**
 * A warning before the deadline, as `warningDue` emits it.
 */
export interface ISessionWarning {
  /**
   * The configured offset it is for, in seconds before the deadline.
   */
  offset: number;
  message: string;
  canExtend: boolean;
}

/**
 * The session's terms for one browser tab: read at start, every minute and after each extension,
 * with a countdown updated every second on the hub's clock. The Session section, the status-bar
 * item, the warnings and the Extend command share it. Stops reading when the server has no terms.
 */
export class SessionLifetimeModel implements IDisposable {
  constructor(options: SessionLifetimeModel.IOptions = {}) {
    this._api = options.api ?? makeSessionAPI();
    this._pollInterval = options.pollInterval ?? POLL_INTERVAL_MS;
  }

  /**
   * Emitted when the terms, the error or the extension state change, and every second while
   * there is a deadline to count down to.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Emitted when a configured warning before the deadline is due, once per offset and deadline.
   */
  get warningDue(): ISignal<this, ISessionWarning> {
    return this._warningDue;
  }

  /**
   * The last terms read, null before the first answer.
   */
  get terms(): ISessionTerms | null {
    return this._terms;
  }

  /**
   * Whether the hub sets terms for this server; null until it answered.
   */
  get managed(): boolean | null {
    return this._managed;
  }

  /**
   * Why the terms could not be read (the server's message), or null after a good read.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * The outcome of the last extension, or null.
   */
  get message(): ISessionMessage | null {
    return this._message;
  }

  get extending(): boolean {
    return this._extending !== null;
  }

  /**
   * Seconds before the deadline at which `warningDue` fires.
   */
  get warnings(): readonly number[] {
    return this._warnings;
  }

  set warnings(offsets: readonly number[]) {
    this._warnings = [...offsets];
    this._checkWarnings();
  }

  /**
   * Whether the model still reads the terms: false once the server turned out to have no
   * session terms at all (no ScienceLab hub service, or no session API).
   */
  get watching(): boolean {
    return this._watching;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * The hub's clock now, as best known.
   */
  now(): Date {
    return new Date(Date.now() + this._skew);
  }

  /**
   * Milliseconds until the deadline (negative past it), or null where no deadline applies.
   */
  remaining(): number | null {
    const deadline = deadlineOf(this._terms);
    return deadline === null ? null : deadline - this.now().getTime();
  }

  /**
   * Whether the session can be extended now, or null where there is no deadline to move.
   */
  extendState(): IExtendState | null {
    return extendState(this._terms, this.now());
  }

  /**
   * Read the terms, then keep them and the countdown current, unless the server has none.
   * Never rejects: failures show in `error`.
   */
  async start(): Promise<void> {
    await this.refresh();
    if (!this._watching || this._isDisposed) {
      return;
    }
    this._tick = setInterval(() => this._onTick(), TICK_MS);
    this._schedulePoll();
  }

  /**
   * Read the terms now. Never rejects: failures show in `error`.
   */
  async refresh(): Promise<void> {
    const request = ++this._requests;
    const sentAt = Date.now();
    try {
      const terms = await this._api.get();
      this._accept(terms, request, sentAt);
    } catch (error) {
      if (request < this._accepted || this._isDisposed) {
        return;
      }
      if (error instanceof SciencelabRequestError && error.status === 404) {
        // A server extension without the session API has no terms for this server either.
        this._managed = false;
        this._stop();
      } else {
        this._error = error instanceof Error ? error.message : String(error);
      }
      this._changed.emit();
    }
  }

  /**
   * Move the deadline by one step, then say so in `message`. Rejects with the server's
   * `SciencelabRequestError` (its message also goes to `message`) when the deadline cannot move.
   */
  extend(): Promise<ISessionTerms> {
    if (this._extending === null) {
      this._extending = this._extend().finally(() => {
        this._extending = null;
        this._changed.emit();
      });
      this._changed.emit();
    }
    return this._extending;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._stop();
    Signal.clearData(this);
  }

  private async _extend(): Promise<ISessionTerms> {
    const request = ++this._requests;
    const sentAt = Date.now();
    try {
      const terms = await this._api.extend();
      this._accept(terms, request, sentAt);
      this._message = { text: extendedMessage(terms, this.now()), error: false };
      this._schedulePoll();
      return terms;
    } catch (error) {
      this._message = {
        text: error instanceof Error ? error.message : String(error),
        error: true
      };
      // The deadline may have moved meanwhile (another tab): show where it stands.
      void this.refresh();
      throw error;
    }
  }

  /**
   * Take `terms` unless a later request already answered (a poll overtaken by an extension).
   */
  private _accept(terms: ISessionTerms, request: number, sentAt: number): void {
    if (request < this._accepted || this._isDisposed) {
      return;
    }
    this._accepted = request;
    this._terms = terms;
    this._managed = terms.managed;
    this._error = null;
    this._skew = clockSkew(terms.now, sentAt, Date.now());
    if (!terms.managed && terms.message === undefined) {
      // No hub service: no terms, now or later. With a message, the hub has none *yet*.
      this._stop();
    }
    this._checkWarnings();
    this._changed.emit();
  }

  /**
   * One second passed: a warning may be due, and the countdown moved if there is one.
   */
  private _onTick(): void {
    this._checkWarnings();
    if (this.remaining() !== null) {
      this._changed.emit();
    }
  }

  /**
   * Emit `warningDue` for the most urgent warning due and not yet shown.
   */
  private _checkWarnings(): void {
    const remaining = this.remaining();
    if (remaining === null || this._terms === null) {
      return;
    }
    const check = nextWarning(remaining, this._warnings, this._shown);
    this._shown = check.shown;
    if (check.due !== null) {
      const now = this.now();
      const extend = extendState(this._terms, now);
      this._warningDue.emit({
        offset: check.due,
        message: warningMessage(this._terms, remaining, now, extend),
        canExtend: extend?.possible ?? false
      });
    }
  }

  private _schedulePoll(): void {
    clearTimeout(this._poll);
    if (!this._watching || this._isDisposed) {
      return;
    }
    this._poll = setTimeout(async () => {
      await this.refresh();
      this._schedulePoll();
    }, this._pollInterval);
  }

  private _stop(): void {
    this._watching = false;
    clearInterval(this._tick);
    clearTimeout(this._poll);
  }

  private readonly _api: ISessionAPI;
  private readonly _pollInterval: number;
  private readonly _changed = new Signal<this, void>(this);
  private readonly _warningDue = new Signal<this, ISessionWarning>(this);
  private _terms: ISessionTerms | null = null;
  private _managed: boolean | null = null;
  private _error: string | null = null;
  private _message: ISessionMessage | null = null;
  private _extending: Promise<ISessionTerms> | null = null;
  private _skew = 0;
  private _warnings: number[] = [...DEFAULT_WARNINGS];
  private _shown: number[] = [];
  private _requests = 0;
  private _accepted = 0;
  private _tick: ReturnType<typeof setInterval> | undefined = undefined;
  private _poll: ReturnType<typeof setTimeout> | undefined = undefined;
  private _watching = true;
  private _isDisposed = false;
}

/**
 * The namespace for `SessionLifetimeModel` statics.
 */
export namespace SessionLifetimeModel {
  /**
   * Options for the model.
   */
  export interface IOptions {
    /**
     * Where the terms come from; the page's server by default. Tests pass a stub.
     */
    api?: ISessionAPI;

    /**
     * Milliseconds between two reads of the terms; one minute by default.
     */
    pollInterval?: number;
  }
}

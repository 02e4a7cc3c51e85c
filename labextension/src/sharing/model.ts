import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IShare, IShareListing, ISharedServer } from '../tokens';
import { ISharingAPI, makeSharingAPI } from './api';
import { absoluteUrl, collaboratorsFrom, ICollaborator } from './format';

/**
 * The message of a failed call, in the server's words where it gave some.
 */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A share link just made: shown once, with its absolute URL.
 */
export interface INewLink {
  id: string;
  url: string;
  expiresAt: string;
}

/**
 * The Share dialog's state: who has access and the open links as the server last listed them,
 * the link just made, and what the server refused. Every change is followed by a new listing, so
 * the dialog shows what the hub holds, not what it asked for.
 */
export class ShareModel implements IDisposable {
  constructor(options: ShareModel.IOptions = {}) {
    this._api = options.api ?? makeSharingAPI();
    this._origin = options.origin ?? window.location.origin;
    this._now = options.now ?? Date.now;
  }

  /**
   * Emitted whenever anything the dialog shows changes.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * The last listing, null before the first answer or when the server refused it.
   */
  get listing(): IShareListing | null {
    return this._listing;
  }

  /**
   * When the last listing arrived, in milliseconds since the epoch: links' expiries count from it.
   */
  get listedAt(): number {
    return this._listedAt;
  }

  /**
   * Why this server's shares cannot be managed from here (the server's 403: a guest, a server
   * without collaboration), or why they could not be read; null when they could.
   */
  get refusal(): string | null {
    return this._refusal;
  }

  /**
   * The server's refusal of the last Add (an unknown user, for example); null after a success.
   */
  get addError(): string | null {
    return this._addError;
  }

  /**
   * The server's refusal of the last revoke or new link; null after a success.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * The link made last, until the dialog closes; its URL is never listed again.
   */
  get newLink(): INewLink | null {
    return this._newLink;
  }

  /**
   * A call is under way: the dialog's buttons wait.
   */
  get busy(): boolean {
    return this._busy;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Read who has access and the open links again.
   */
  async refresh(): Promise<void> {
    try {
      this._listing = await this._api.list();
      this._listedAt = this._now();
      this._refusal = null;
    } catch (error) {
      this._listing = null;
      this._refusal = messageOf(error);
    }
    this._emit();
  }

  /**
   * Share with `name` (surrounding spaces dropped); resolves true once shared, false with
   * `addError` set when the server refused.
   */
  async share(kind: IShare['kind'], name: string): Promise<boolean> {
    const trimmed = name.trim();
    if (!trimmed) {
      this._addError = `Enter the name of a ${kind}.`;
      this._emit();
      return false;
    }
    let shared = false;
    await this._run(async () => {
      try {
        await this._api.share(kind, trimmed);
        this._addError = null;
        shared = true;
      } catch (error) {
        this._addError = messageOf(error);
      }
    });
    return shared;
  }

  /**
   * Take one user's or group's access away, or everyone's (`null`).
   */
  revoke(grantee: Pick<IShare, 'kind' | 'name'> | null): Promise<void> {
    return this._run(() => this._api.revoke(grantee));
  }

  /**
   * Make a share link valid for `seconds`; it shows as `newLink`.
   */
  createLink(seconds: number): Promise<void> {
    return this._run(async () => {
      const code = await this._api.createLink(seconds);
      this._newLink = {
        id: code.id,
        url: absoluteUrl(code.accept_url, this._origin),
        expiresAt: code.expires_at
      };
    });
  }

  /**
   * Revoke one share link, or all of them (`null`); a revoked new link is no longer shown.
   */
  revokeLink(id: string | null): Promise<void> {
    return this._run(async () => {
      await this._api.revokeLink(id);
      if (id === null || this._newLink?.id === id) {
        this._newLink = null;
      }
    });
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  /**
   * Run `change` while busy, keep its refusal in `error`, then list again.
   */
  private async _run(change: () => Promise<void>): Promise<void> {
    this._busy = true;
    this._emit();
    try {
      await change();
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    await this.refresh();
    this._busy = false;
    this._emit();
  }

  private _emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private readonly _api: ISharingAPI;
  private readonly _origin: string;
  private readonly _now: () => number;
  private readonly _changed = new Signal<this, void>(this);
  private _listing: IShareListing | null = null;
  private _listedAt = 0;
  private _refusal: string | null = null;
  private _addError: string | null = null;
  private _error: string | null = null;
  private _newLink: INewLink | null = null;
  private _busy = false;
  private _isDisposed = false;
}

/**
 * The namespace for `ShareModel` statics.
 */
export namespace ShareModel {
  export interface IOptions {
    /**
     * The page's server by default; tests pass a stub.
     */
    api?: ISharingAPI;
    /**
     * The hub's origin, to which share links are relative; the page's by default.
     */
    origin?: string;
    /**
     * The clock, in milliseconds since the epoch; `Date.now` by default.
     */
    now?: () => number;
  }
}

/**
 * Milliseconds between two reads of what others shared with this user, while the tab is visible.
 */
const SHARED_WITH_ME_INTERVAL_MS = 60 * 1000;

/**
 * The servers others shared with this server's owner: read at start, every minute while the tab
 * is visible and when it becomes visible again. Empty (and so hidden) where the server does not
 * answer: a guest's tab, a server without a hub.
 */
export class SharedWithMeModel implements IDisposable {
  constructor(options: SharedWithMeModel.IOptions = {}) {
    this._api = options.api ?? makeSharingAPI();
    this._interval = options.interval ?? SHARED_WITH_ME_INTERVAL_MS;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get servers(): readonly ISharedServer[] {
    return this._servers;
  }

  /**
   * Why the last Leave failed, in the server's words; null otherwise.
   */
  get error(): string | null {
    return this._error;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Read the list now, then keep it up to date.
   */
  async start(): Promise<void> {
    await this.refresh();
    this._timer = setInterval(() => {
      if (document.visibilityState !== 'hidden') {
        void this.refresh();
      }
    }, this._interval);
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  async refresh(): Promise<void> {
    let servers: ISharedServer[];
    try {
      servers = (await this._api.sharedWithMe()).servers;
    } catch {
      // A guest's tab or a server without a hub: nothing shared to show.
      servers = [];
    }
    if (this._isDisposed) {
      return;
    }
    if (JSON.stringify(servers) !== JSON.stringify(this._servers)) {
      this._servers = servers;
      this._changed.emit();
    }
  }

  /**
   * Stop using `server`; it goes from the list once the hub agrees.
   */
  async leave(server: Pick<ISharedServer, 'owner' | 'name'>): Promise<void> {
    try {
      await this._api.leave(server.owner, server.name);
      this._error = null;
    } catch (error) {
      this._error = messageOf(error);
    }
    this._changed.emit();
    await this.refresh();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    if (this._timer !== null) {
      clearInterval(this._timer);
    }
    document.removeEventListener('visibilitychange', this._onVisibility);
    Signal.clearData(this);
  }

  private readonly _onVisibility = (): void => {
    if (document.visibilityState === 'visible') {
      void this.refresh();
    }
  };

  private readonly _api: ISharingAPI;
  private readonly _interval: number;
  private readonly _changed = new Signal<this, void>(this);
  private _servers: ISharedServer[] = [];
  private _error: string | null = null;
  private _timer: ReturnType<typeof setInterval> | null = null;
  private _isDisposed = false;
}

/**
 * The namespace for `SharedWithMeModel` statics.
 */
export namespace SharedWithMeModel {
  export interface IOptions {
    api?: ISharingAPI;
    /**
     * Milliseconds between two reads; one minute by default.
     */
    interval?: number;
  }
}

/**
 * What the Collaborators section needs of a y-protocols `Awareness` (JupyterLab's global
 * awareness, `IGlobalAwareness`).
 */
export interface IAwarenessLike {
  getStates(): Map<number, Record<string, unknown>>;
  on(event: 'change', listener: () => void): void;
  off(event: 'change', listener: () => void): void;
}

/**
 * Who is connected to this server, from the global awareness, updated as people come, go and
 * change documents.
 */
export class CollaboratorsModel implements IDisposable {
  /**
   * @param awareness - JupyterLab's global awareness.
   * @param me - This tab's username, once the user manager knows it.
   */
  constructor(awareness: IAwarenessLike, me: () => string | null) {
    this._awareness = awareness;
    this._me = me;
    this._collaborators = collaboratorsFrom(awareness.getStates(), me());
    awareness.on('change', this._onChange);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * This tab's user first, then everyone else connected, by name.
   */
  get collaborators(): readonly ICollaborator[] {
    return this._collaborators;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Read the states again (the user manager learnt who `me` is, for example).
   */
  update(): void {
    const next = collaboratorsFrom(this._awareness.getStates(), this._me());
    // Only a difference the section shows re-renders (not a change of another state field).
    if (JSON.stringify(next) !== JSON.stringify(this._collaborators)) {
      this._collaborators = next;
      this._changed.emit();
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._awareness.off('change', this._onChange);
    Signal.clearData(this);
  }

  private readonly _onChange = (): void => this.update();
  private readonly _awareness: IAwarenessLike;
  private readonly _me: () => string | null;
  private readonly _changed = new Signal<this, void>(this);
  private _collaborators: ICollaborator[];
  private _isDisposed = false;
}

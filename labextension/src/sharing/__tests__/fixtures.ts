import { SciencelabRequestError } from '../../request';
import { INewShareCode, IShare, IShareListing, ISharedServer } from '../../tokens';
import { ISharingAPI } from '../api';

export const NOW = Date.parse('2026-11-03T12:00:00Z');

export const UNKNOWN_USER = 'The hub refused: No such user(s): nobody';
export const NOT_COLLABORATIVE_REFUSAL =
  "sharing: this server's profile runs without real-time collaboration; " +
  'start a collaborative profile (or switch collaboration on) to share it';

/**
 * The sharing API of a server with a hub that knows users alice and bob and group gpu-users,
 * keeping shares and codes in memory; `refusal` makes every listing a 403.
 */
export class SharingStub implements ISharingAPI {
  shares: IShare[] = [];
  codes: INewShareCode[] = [];
  sharedServers: ISharedServer[] = [];
  refusal: string | null = null;
  calls: string[] = [];
  private _next = 1;

  async list(): Promise<IShareListing> {
    this.calls.push('list');
    if (this.refusal) {
      throw new SciencelabRequestError(this.refusal, 403, 'shares');
    }
    return {
      collaborative: true,
      shares: [...this.shares],
      codes: this.codes.map(({ accept_url: _, ...code }) => code)
    };
  }

  async share(kind: IShare['kind'], name: string): Promise<IShare> {
    this.calls.push(`share ${kind} ${name}`);
    const known = kind === 'user' ? ['alice', 'bob'] : ['gpu-users'];
    if (!known.includes(name)) {
      throw new SciencelabRequestError(UNKNOWN_USER, 400, 'shares');
    }
    const share = { kind, name, created_at: '2026-11-03T11:00:00Z' };
    this.shares = [...this.shares.filter(s => s.name !== name || s.kind !== kind), share];
    return share;
  }

  async revoke(grantee: Pick<IShare, 'kind' | 'name'> | null): Promise<void> {
    this.calls.push(grantee ? `revoke ${grantee.kind} ${grantee.name}` : 'revoke all');
    this.shares = grantee
      ? this.shares.filter(s => s.name !== grantee.name || s.kind !== grantee.kind)
      : [];
  }

  async createLink(expiresIn: number): Promise<INewShareCode> {
    this.calls.push(`link ${expiresIn}`);
    const id = `sc_${this._next++}`;
    const code = {
      id,
      created_at: new Date(NOW).toISOString(),
      expires_at: new Date(NOW + expiresIn * 1000).toISOString(),
      exchange_count: 0,
      accept_url: `/hub/accept-share?code=secret-${id}`
    };
    this.codes.push(code);
    return code;
  }

  async revokeLink(id: string | null): Promise<void> {
    this.calls.push(id ? `revoke link ${id}` : 'revoke links');
    this.codes = id ? this.codes.filter(code => code.id !== id) : [];
  }

  async sharedWithMe(): Promise<{ servers: ISharedServer[] }> {
    this.calls.push('shared-with-me');
    return { servers: [...this.sharedServers] };
  }

  async leave(owner: string, name: string): Promise<void> {
    this.calls.push(`leave ${owner}/${name}`);
    this.sharedServers = this.sharedServers.filter(s => s.owner !== owner || s.name !== name);
  }
}

/**
 * A y-protocols `Awareness` stand-in: states by client id and `change` listeners.
 */
export class AwarenessStub {
  states = new Map<number, Record<string, unknown>>();
  private _listeners = new Set<() => void>();

  getStates(): Map<number, Record<string, unknown>> {
    return this.states;
  }

  on(_: 'change', listener: () => void): void {
    this._listeners.add(listener);
  }

  off(_: 'change', listener: () => void): void {
    this._listeners.delete(listener);
  }

  get listeners(): number {
    return this._listeners.size;
  }

  set(clientID: number, state: Record<string, unknown> | null): void {
    if (state) {
      this.states.set(clientID, state);
    } else {
      this.states.delete(clientID);
    }
    this._listeners.forEach(listener => listener());
  }
}

export function person(
  username: string,
  current: string | null = null,
  extra: Record<string, unknown> = {}
): Record<string, unknown> {
  return {
    user: { username, name: username, display_name: '', color: `var(--${username})`, ...extra },
    current
  };
}

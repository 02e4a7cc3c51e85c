/**
 * The pure parts of sharing: what the Share dialog, the Collaborators and the Shared with me
 * sections show, from the server's documents and the awareness states.
 */
import { IShareCode, ISharedServer } from '../tokens';

/**
 * The lifetimes a new share link may have; the server takes 60 s to one year.
 */
export const LINK_LIFETIMES: ReadonlyArray<{ label: string; seconds: number }> = [
  { label: '1 hour', seconds: 3600 },
  { label: '1 day', seconds: 24 * 3600 },
  { label: '1 week', seconds: 7 * 24 * 3600 }
];

/**
 * The lifetime offered first: one day, as JupyterHub's own default.
 */
export const DEFAULT_LINK_LIFETIME = 24 * 3600;

/**
 * Why the Share command is off on a server without real-time collaboration.
 */
export const NOT_COLLABORATIVE =
  'This server runs without real-time collaboration, so it cannot be shared: start a collaborative profile to share.';

/**
 * Whether JupyterLab's page config says this server runs with real-time collaboration: the
 * `sciencelabCollaborative` option, which `PageConfig.getOption` gives as a string (`'true'`), or
 * an empty string when it is false or absent (a server not started from a profile).
 */
export function isCollaborative(option: unknown): boolean {
  return String(option) === 'true';
}

/**
 * `accept_url` (a path on the hub's origin, `/hub/accept-share?code=...`) as the absolute URL to
 * send to people.
 */
export function absoluteUrl(path: string, origin: string): string {
  return new URL(path, origin).href;
}

/**
 * `expires in 59 min`, `expires in 23 h`, `expires in 6 days`, `expired`: how long a share link
 * has left at `now` (milliseconds since the epoch), rounded down.
 */
export function describeExpiry(expiresAt: string, now: number): string {
  const seconds = (Date.parse(expiresAt) - now) / 1000;
  if (!(seconds > 0)) {
    return 'expired';
  }
  if (seconds < 60) {
    return 'expires in less than a minute';
  }
  if (seconds < 3600) {
    return `expires in ${Math.floor(seconds / 60)} min`;
  }
  if (seconds < 2 * 24 * 3600) {
    return `expires in ${Math.floor(seconds / 3600)} h`;
  }
  return `expires in ${Math.floor(seconds / (24 * 3600))} days`;
}

/**
 * `not used yet`, `used once`, `used 3 times`.
 */
export function describeUses(count: number): string {
  if (count === 0) {
    return 'not used yet';
  }
  return count === 1 ? 'used once' : `used ${count} times`;
}

/**
 * One line of the open links list: `expires in 23 h · used once`.
 */
export function describeCode(code: IShareCode, now: number): string {
  return `${describeExpiry(code.expires_at, now)} · ${describeUses(code.exchange_count)}`;
}

/**
 * `alice/together`, or `alice (default server)`.
 */
export function sharedServerLabel(server: Pick<ISharedServer, 'owner' | 'name'>): string {
  return server.name ? `${server.owner}/${server.name}` : `${server.owner} (default server)`;
}

/**
 * A person connected to this server, as the Collaborators section lists them: one entry per
 * user, however many tabs they have open.
 */
export interface ICollaborator {
  username: string;
  /**
   * The name to show: the hub's display name, else the username.
   */
  displayName: string;
  /**
   * A CSS colour, the one their cursor has in shared documents.
   */
  color: string;
  /**
   * The document they look at (`analysis/fit.ipynb`), or null (a launcher, a terminal).
   */
  current: string | null;
  /**
   * How many of their browser tabs are connected.
   */
  tabs: number;
  /**
   * This is the user of this tab.
   */
  isMe: boolean;
}

/**
 * Colour of someone whose awareness state names none.
 */
const NO_COLOR = 'var(--jp-ui-font-color2)';

/**
 * The document of an awareness `current` field: `notebook:analysis/fit.ipynb` →
 * `analysis/fit.ipynb`; null for anything else.
 */
export function documentOf(current: unknown): string | null {
  if (typeof current !== 'string') {
    return null;
  }
  const match = /^\w+:(.+)$/.exec(current);
  return match ? match[1] : null;
}

/**
 * The people in the global awareness `states` (client id → state, as
 * `Awareness.getStates()` gives them), `me` (this tab's username) first, then by name. States
 * without a `user.username` (a client still connecting) are left out.
 */
export function collaboratorsFrom(
  states: ReadonlyMap<number, Record<string, unknown>>,
  me: string | null
): ICollaborator[] {
  const people = new Map<string, ICollaborator>();
  for (const state of states.values()) {
    const user = state.user as Record<string, unknown> | undefined;
    const username = typeof user?.username === 'string' ? user.username : '';
    if (!username) {
      continue;
    }
    const current = documentOf(state.current);
    const known = people.get(username);
    if (known) {
      known.tabs += 1;
      known.current = known.current ?? current;
      continue;
    }
    const displayName =
      [user?.display_name, user?.name].find(
        (name): name is string => typeof name === 'string' && name.length > 0
      ) ?? username;
    people.set(username, {
      username,
      displayName,
      color: typeof user?.color === 'string' && user.color ? user.color : NO_COLOR,
      current,
      tabs: 1,
      isMe: username === me
    });
  }
  return [...people.values()].sort(
    (a, b) => Number(b.isMe) - Number(a.isMe) || a.displayName.localeCompare(b.displayName)
  );
}

/**
 * The event the server sends a guest's lab right before it closes their sockets, because the
 * guest lost access (`sciencelab/guest_access.py`).
 */
export const ACCESS_REVOKED_EVENT = 'https://sciencelab.dev/events/access-revoked/v1';

/**
 * The message to show `me` for an event of the server's event bus: the server's words when the
 * event says `me` lost access to this server, null for any other event (or another guest's).
 */
export function revokedMessage(
  emission: { readonly schema_id: string; readonly [key: string]: unknown },
  me: string | null
): string | null {
  if (emission.schema_id !== ACCESS_REVOKED_EVENT || me === null || emission.user !== me) {
    return null;
  }
  return typeof emission.message === 'string' ? emission.message : null;
}

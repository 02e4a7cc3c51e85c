/**
 * Pure wording and arithmetic of session lifetimes: the countdown, the deadline as a local clock
 * time, which warning is due, and whether the session can be extended and, if not, why.
 *
 * Times are milliseconds since the epoch (or `Date`s) on the hub's clock; `now` is this browser's
 * clock corrected by the skew the hub's `now` revealed (`clockSkew`).
 */
import { ISessionTerms } from '../tokens';

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Below this many seconds the countdown shows seconds too.
 */
const SECONDS_SHOWN_BELOW = 5 * MINUTE;

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A span in words, in its two largest units: `2 h 14 min`, `45 min`, `1 min 30 s` (seconds only
 * under 5 minutes), `3 d 4 h`; a zero second unit is left out (`1 h`). Partial seconds count as
 * whole ones, so a countdown never reads `0 s` before its end.
 */
export function formatSpan(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < MINUTE) {
    return `${seconds} s`;
  }
  if (seconds < SECONDS_SHOWN_BELOW) {
    return twoUnits(Math.floor(seconds / MINUTE), 'min', seconds % MINUTE, 's');
  }
  if (seconds < HOUR) {
    return `${Math.floor(seconds / MINUTE)} min`;
  }
  if (seconds < DAY) {
    return twoUnits(Math.floor(seconds / HOUR), 'h', Math.floor((seconds % HOUR) / MINUTE), 'min');
  }
  return twoUnits(Math.floor(seconds / DAY), 'd', Math.floor((seconds % DAY) / HOUR), 'h');
}

function twoUnits(major: number, majorUnit: string, minor: number, minorUnit: string): string {
  return minor > 0 ? `${major} ${majorUnit} ${minor} ${minorUnit}` : `${major} ${majorUnit}`;
}

/**
 * The countdown: `2 h 14 min left`, `1 min 30 s left`, `ending now` at and after the deadline.
 */
export function formatRemaining(ms: number): string {
  return ms > 0 ? `${formatSpan(ms)} left` : 'ending now';
}

/**
 * `when` as this browser's local time: `16:00` today, `tomorrow 09:30`, `Sat 6 Dec 16:00` later.
 */
export function formatClock(when: Date, now: Date): string {
  const time = `${twoDigits(when.getHours())}:${twoDigits(when.getMinutes())}`;
  const days = localDay(when) - localDay(now);
  if (days === 0) {
    return time;
  }
  if (days === 1) {
    return `tomorrow ${time}`;
  }
  return `${WEEKDAYS[when.getDay()]} ${when.getDate()} ${MONTHS[when.getMonth()]} ${time}`;
}

function twoDigits(value: number): string {
  return String(value).padStart(2, '0');
}

/**
 * The number of the local calendar day of `date`, whatever the length of the days between.
 */
function localDay(date: Date): number {
  return Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()) / (DAY * 1000);
}

/**
 * An ISO 8601 time as milliseconds since the epoch; null for none or an unreadable time.
 */
export function parseTime(iso: string | null | undefined): number | null {
  if (!iso) {
    return null;
  }
  const time = Date.parse(iso);
  return Number.isNaN(time) ? null : time;
}

/**
 * How far the hub's clock is ahead of this browser's, in milliseconds: the hub's `now` against the
 * middle of the request that brought it. 0 when `serverNow` is unreadable.
 */
export function clockSkew(
  serverNow: string | undefined,
  sentAt: number,
  receivedAt: number
): number {
  const server = parseTime(serverNow);
  return server === null ? 0 : server - (sentAt + receivedAt) / 2;
}

/**
 * The idle stop in words: `after 1 h without activity`, or `never`.
 */
export function describeIdle(idleTimeout: number | null): string {
  return idleTimeout === null
    ? 'never'
    : `after ${formatSpan(idleTimeout * 1000)} without activity`;
}

/**
 * The deadline, or null where none applies: unmanaged, exempt, no lifetime, or unreadable.
 */
export function deadlineOf(terms: ISessionTerms | null): number | null {
  if (!terms?.managed || terms.exempt) {
    return null;
  }
  return parseTime(terms.deadline);
}

/**
 * What `nextWarning` decided.
 */
export interface IWarningCheck {
  /**
   * The warning offset (seconds before the deadline) to show now, or null.
   */
  due: number | null;
  /**
   * The offsets shown and still passed, to pass to the next call.
   */
  shown: number[];
}

/**
 * Which warning to show with `remainingMs` left, given the configured `offsets` (seconds before the
 * deadline) and those already `shown`.
 *
 * Only the most urgent due warning shows: a page opened 1 minute before the deadline warns once,
 * not for 15 minutes and then for 2. A warning the deadline moved away from (an extension) is
 * forgotten, so it shows again before the new deadline. None shows at or after the deadline.
 */
export function nextWarning(
  remainingMs: number,
  offsets: readonly number[],
  shown: readonly number[]
): IWarningCheck {
  const passed = (offset: number): boolean => remainingMs <= offset * 1000;
  const stillShown = shown.filter(passed);
  if (remainingMs <= 0) {
    return { due: null, shown: stillShown };
  }
  const due = offsets.filter(offset => passed(offset) && !stillShown.includes(offset));
  if (due.length === 0) {
    return { due: null, shown: stillShown };
  }
  return { due: Math.min(...due), shown: [...stillShown, ...due] };
}

/**
 * Whether and how the session can be extended.
 */
export interface IExtendState {
  possible: boolean;
  /**
   * The button's label: `Extend by 1 h`, or by what is left up to the limit.
   */
  label: string;
  /**
   * Why it cannot be extended, as a sentence; null when it can.
   */
  reason: string | null;
}

/**
 * Whether the session can be extended, null when there is no deadline to move (unmanaged, exempt,
 * no lifetime). One extension adds `extend_step`, and never moves the deadline past `extend_until`.
 */
export function extendState(terms: ISessionTerms | null, now: Date): IExtendState | null {
  const deadline = deadlineOf(terms);
  if (terms === null || deadline === null) {
    return null;
  }
  const step = terms.extend_step;
  const until = parseTime(terms.extend_until);
  const label = step === null ? 'Extend' : `Extend by ${formatSpan(step * 1000)}`;
  if (until === null || step === null || step <= 0) {
    return {
      possible: false,
      label,
      reason: 'This session cannot be extended: its profile allows no extension.'
    };
  }
  if (deadline >= until) {
    const limit = formatClock(new Date(until), now);
    return {
      possible: false,
      label,
      reason: `This session cannot run past ${limit}, its profile's limit.`
    };
  }
  const added = Math.min(step * 1000, until - deadline);
  return { possible: true, label: `Extend by ${formatSpan(added)}`, reason: null };
}

/**
 * What an extension did: `Extended: your server now stops at 17:00.`
 */
export function extendedMessage(terms: ISessionTerms, now: Date): string {
  const deadline = deadlineOf(terms);
  return deadline === null
    ? 'Extended: your server has no time limit now.'
    : `Extended: your server now stops at ${formatClock(new Date(deadline), now)}.`;
}

/**
 * The text of a warning before the deadline; under 140 characters, JupyterLab's limit.
 */
export function warningMessage(
  terms: ISessionTerms,
  remainingMs: number,
  now: Date,
  extend: IExtendState | null
): string {
  const deadline = deadlineOf(terms) ?? now.getTime() + remainingMs;
  const stops = `Your server stops at ${formatClock(new Date(deadline), now)}, in ${formatSpan(remainingMs)}`;
  if (extend?.possible) {
    return `${stops}: save your work or extend the session.`;
  }
  return extend?.reason
    ? `${stops}: save your work. ${extend.reason}`
    : `${stops}: save your work.`;
}

/**
 * One line of the Session section.
 */
export interface ISessionDetail {
  term: string;
  value: string;
  /**
   * Stable name for tests (`data-sciencelab`): `session-remaining`, `session-deadline`...
   */
  key: string;
}

/**
 * The Session section's lines; empty when unmanaged or exempt.
 */
export function sessionDetails(
  terms: ISessionTerms | null,
  remainingMs: number | null,
  now: Date
): ISessionDetail[] {
  if (!terms?.managed || terms.exempt) {
    return [];
  }
  const details: ISessionDetail[] = [];
  const deadline = deadlineOf(terms);
  if (deadline === null) {
    details.push({ term: 'Time limit', value: 'none', key: 'session-deadline' });
  } else {
    details.push(
      {
        term: 'Time left',
        value: formatRemaining(remainingMs ?? deadline - now.getTime()),
        key: 'session-remaining'
      },
      { term: 'Stops at', value: formatClock(new Date(deadline), now), key: 'session-deadline' }
    );
    const until = parseTime(terms.extend_until);
    if (until !== null) {
      details.push({
        term: 'Latest stop',
        value: formatClock(new Date(until), now),
        key: 'session-limit'
      });
    }
  }
  details.push({ term: 'Idle stop', value: describeIdle(terms.idle_timeout), key: 'session-idle' });
  return details;
}

/**
 * The outcome of the last extension, as the model keeps it.
 */
export interface ISessionMessage {
  text: string;
  error: boolean;
}

/**
 * The Session section's message line: a refusal alone (it names the limit), otherwise the last
 * success followed by why the session cannot be extended (further).
 */
export function sectionMessage(
  message: ISessionMessage | null,
  extend: IExtendState | null
): ISessionMessage {
  if (message?.error) {
    return message;
  }
  const parts = [message?.text, extend?.reason].filter((part): part is string => !!part);
  return { text: parts.join(' '), error: false };
}

/**
 * What the status-bar item shows.
 */
export interface ISessionSummary {
  /**
   * False when nothing applies: unmanaged, exempt or no deadline.
   */
  visible: boolean;
  /**
   * The countdown, `2 h 14 min left`.
   */
  text: string;
  /**
   * The deadline's local time and the idle stop, one per line.
   */
  tooltip: string;
  /**
   * The first warning is due: within the largest warning offset of the deadline.
   */
  urgent: boolean;
}

/**
 * The status-bar summary of the session.
 */
export function summarizeSession(
  terms: ISessionTerms | null,
  remainingMs: number | null,
  now: Date,
  warnings: readonly number[]
): ISessionSummary {
  const deadline = deadlineOf(terms);
  if (terms === null || deadline === null) {
    return { visible: false, text: '', tooltip: '', urgent: false };
  }
  const remaining = remainingMs ?? deadline - now.getTime();
  return {
    visible: true,
    text: formatRemaining(remaining),
    tooltip:
      `Your server stops at ${formatClock(new Date(deadline), now)}.\n` +
      `Idle stop: ${describeIdle(terms.idle_timeout)}.`,
    urgent: warnings.length > 0 && remaining <= Math.max(...warnings) * 1000
  };
}

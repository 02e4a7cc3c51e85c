import { SciencelabRequestError } from '../../request';
import { ISessionTerms } from '../../tokens';
import { ISessionAPI } from '../model';

const MINUTE = 60 * 1000;

/**
 * A local time on 4 December 2026 (the spec's day), whatever the time zone the tests run in.
 */
export function at(hours: number, minutes = 0, seconds = 0, day = 4): Date {
  return new Date(2026, 11, day, hours, minutes, seconds);
}

/**
 * The terms a ScienceLab hub sends at 14:00: the server stops at 16:00, after an hour without
 * activity, and can be extended by an hour up to 20:00. `overrides` replace fields.
 */
export function makeTerms(overrides: Partial<ISessionTerms> = {}): ISessionTerms {
  return {
    managed: true,
    deadline: at(16).toISOString(),
    idle_timeout: 3600,
    extend_until: at(20).toISOString(),
    extend_step: 3600,
    exempt: false,
    now: at(14).toISOString(),
    ...overrides
  };
}

export const REFUSAL =
  'The session cannot be extended past 2026-12-04 20:00 UTC, the limit of profile cpu.';

/**
 * The hub service behind the server extension, two minutes ahead of the browser's clock. It
 * answers with `terms`; `failWith` makes the next calls fail; `extend` moves the deadline by an
 * hour up to the limit, or refuses with 409 there or while `refuse` is set.
 */
export class HubStub implements ISessionAPI {
  constructor(public terms: ISessionTerms) {}

  get(): Promise<ISessionTerms> {
    this.gets += 1;
    return this.failWith ? Promise.reject(this.failWith) : Promise.resolve(this.answer());
  }

  extend(): Promise<ISessionTerms> {
    this.extensions += 1;
    const deadline = Date.parse(this.terms.deadline ?? '');
    const until = Date.parse(this.terms.extend_until ?? '');
    if (this.refuse || deadline >= until) {
      return Promise.reject(new SciencelabRequestError(REFUSAL, 409, 'session'));
    }
    const moved = Math.min(deadline + (this.terms.extend_step ?? 0) * 1000, until);
    this.terms = { ...this.terms, deadline: new Date(moved).toISOString() };
    return Promise.resolve(this.answer());
  }

  private answer(): ISessionTerms {
    return { ...this.terms, now: new Date(Date.now() + 2 * MINUTE).toISOString() };
  }

  gets = 0;
  extensions = 0;
  failWith: SciencelabRequestError | null = null;
  refuse = false;
}

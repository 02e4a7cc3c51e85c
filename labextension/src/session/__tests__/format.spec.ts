import {
  clockSkew,
  describeIdle,
  extendedMessage,
  extendState,
  formatClock,
  formatRemaining,
  formatSpan,
  nextWarning,
  sectionMessage,
  sessionDetails,
  summarizeSession,
  warningMessage
} from '../format';
import { at, makeTerms } from './fixtures';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

describe('formatRemaining', () => {
  it('counts down in hours and minutes, minutes, then minutes and seconds under 5 minutes', () => {
    expect(
      [
        2 * HOUR + 14 * MINUTE + 59 * SECOND,
        2 * HOUR,
        45 * MINUTE,
        5 * MINUTE,
        4 * MINUTE + 59 * SECOND,
        MINUTE + 30 * SECOND,
        2 * MINUTE,
        45 * SECOND,
        1
      ].map(formatRemaining)
    ).toEqual([
      '2 h 14 min left',
      '2 h left',
      '45 min left',
      '5 min left',
      '4 min 59 s left',
      '1 min 30 s left',
      '2 min left',
      '45 s left',
      '1 s left'
    ]);
  });

  it('says "ending now" at and after the deadline', () => {
    expect([0, -1, -HOUR].map(formatRemaining)).toEqual(['ending now', 'ending now', 'ending now']);
  });

  it('counts days for long lifetimes', () => {
    expect([formatSpan(50 * HOUR + 3 * MINUTE), formatSpan(48 * HOUR)]).toEqual(['2 d 2 h', '2 d']);
  });
});

describe('formatClock', () => {
  it('gives the local time, "tomorrow" the next day, the date later on', () => {
    expect(formatClock(at(16), at(14))).toBe('16:00');
    expect(formatClock(at(9, 5), at(14))).toBe('09:05');
    expect(formatClock(at(9, 30, 0, 5), at(23, 50))).toBe('tomorrow 09:30');
    expect(formatClock(at(16, 0, 0, 6), at(14))).toBe('Sun 6 Dec 16:00');
  });
});

describe('clockSkew', () => {
  it("measures the hub's clock against the middle of the request", () => {
    const sent = at(13, 59, 0).getTime();
    const received = sent + 2 * SECOND;
    expect(clockSkew(at(14).toISOString(), sent, received)).toBe(59 * SECOND);
    expect(clockSkew('not a time', sent, received)).toBe(0);
  });
});

describe('describeIdle', () => {
  it('says the idle stop in words', () => {
    expect(describeIdle(3600)).toBe('after 1 h without activity');
    expect(describeIdle(5400)).toBe('after 1 h 30 min without activity');
    expect(describeIdle(90)).toBe('after 1 min 30 s without activity');
    expect(describeIdle(null)).toBe('never');
  });
});

describe('nextWarning', () => {
  const offsets = [900, 120];

  it('is quiet until the first offset, then warns once per offset', () => {
    expect(nextWarning(16 * MINUTE, offsets, [])).toEqual({ due: null, shown: [] });
    expect(nextWarning(15 * MINUTE, offsets, [])).toEqual({ due: 900, shown: [900] });
    expect(nextWarning(14 * MINUTE, offsets, [900])).toEqual({ due: null, shown: [900] });
    expect(nextWarning(2 * MINUTE, offsets, [900])).toEqual({ due: 120, shown: [900, 120] });
    expect(nextWarning(MINUTE, offsets, [900, 120])).toEqual({ due: null, shown: [900, 120] });
  });

  it('gives only the most urgent warning to a page opened late', () => {
    expect(nextWarning(MINUTE, offsets, [])).toEqual({ due: 120, shown: [900, 120] });
  });

  it('warns again before a deadline an extension moved', () => {
    const extended = nextWarning(HOUR + 10 * MINUTE, offsets, [900, 120]);
    expect(extended).toEqual({ due: null, shown: [] });
    expect(nextWarning(15 * MINUTE, offsets, extended.shown).due).toBe(900);
  });

  it('does not warn at or after the deadline, nor without offsets', () => {
    expect(nextWarning(0, offsets, []).due).toBeNull();
    expect(nextWarning(-SECOND, offsets, []).due).toBeNull();
    expect(nextWarning(MINUTE, [], []).due).toBeNull();
  });
});

describe('extendState', () => {
  it('offers one step while the limit is an hour or more away', () => {
    expect(extendState(makeTerms(), at(14))).toEqual({
      possible: true,
      label: 'Extend by 1 h',
      reason: null
    });
  });

  it('offers what is left up to the limit', () => {
    const terms = makeTerms({ deadline: at(19, 30).toISOString() });
    expect(extendState(terms, at(14))?.label).toBe('Extend by 30 min');
  });

  it('says why not past the limit', () => {
    const terms = makeTerms({ deadline: at(20).toISOString() });
    expect(extendState(terms, at(19, 50))).toEqual({
      possible: false,
      label: 'Extend by 1 h',
      reason: "This session cannot run past 20:00, its profile's limit."
    });
  });

  it('says the profile allows no extension without a limit or a step', () => {
    const reason = 'This session cannot be extended: its profile allows no extension.';
    expect(extendState(makeTerms({ extend_until: null }), at(14))).toEqual({
      possible: false,
      label: 'Extend by 1 h',
      reason
    });
    expect(extendState(makeTerms({ extend_step: null }), at(14))).toEqual({
      possible: false,
      label: 'Extend',
      reason
    });
  });

  it('has nothing to extend without a deadline, when exempt or unmanaged', () => {
    expect(extendState(makeTerms({ deadline: null }), at(14))).toBeNull();
    expect(extendState(makeTerms({ exempt: true }), at(14))).toBeNull();
    expect(extendState(makeTerms({ managed: false }), at(14))).toBeNull();
    expect(extendState(null, at(14))).toBeNull();
  });
});

describe('messages', () => {
  it('confirms an extension with the new deadline', () => {
    expect(extendedMessage(makeTerms({ deadline: at(17).toISOString() }), at(15, 45))).toBe(
      'Extended: your server now stops at 17:00.'
    );
  });

  it('warns when the server stops and offers to extend where possible', () => {
    const terms = makeTerms();
    const now = at(15, 45);
    expect(warningMessage(terms, 15 * MINUTE, now, extendState(terms, now))).toBe(
      'Your server stops at 16:00, in 15 min: save your work or extend the session.'
    );
    const capped = makeTerms({ deadline: at(20).toISOString() });
    const late = at(19, 58);
    const message = warningMessage(capped, 2 * MINUTE, late, extendState(capped, late));
    expect(message).toBe(
      "Your server stops at 20:00, in 2 min: save your work. This session cannot run past 20:00, its profile's limit."
    );
    expect(message.length).toBeLessThanOrEqual(140);
  });

  it('shows a refusal alone, otherwise the last success and why no further', () => {
    const refusal = { text: 'The deadline cannot move past 20:00 (profile limit).', error: true };
    const capped = {
      possible: false,
      label: 'Extend by 1 h',
      reason: "This session cannot run past 20:00, its profile's limit."
    };
    expect(sectionMessage(refusal, capped)).toEqual(refusal);
    expect(
      sectionMessage({ text: 'Extended: your server now stops at 20:00.', error: false }, capped)
    ).toEqual({
      text: "Extended: your server now stops at 20:00. This session cannot run past 20:00, its profile's limit.",
      error: false
    });
    expect(sectionMessage(null, { possible: true, label: 'Extend by 1 h', reason: null })).toEqual({
      text: '',
      error: false
    });
  });
});

describe('sessionDetails', () => {
  it('lists time left, the deadline, the limit and the idle stop', () => {
    expect(sessionDetails(makeTerms(), 2 * HOUR, at(14))).toEqual([
      { term: 'Time left', value: '2 h left', key: 'session-remaining' },
      { term: 'Stops at', value: '16:00', key: 'session-deadline' },
      { term: 'Latest stop', value: '20:00', key: 'session-limit' },
      { term: 'Idle stop', value: 'after 1 h without activity', key: 'session-idle' }
    ]);
  });

  it('says there is no time limit, and lists nothing when exempt', () => {
    const terms = makeTerms({ deadline: null, extend_until: null, idle_timeout: null });
    expect(sessionDetails(terms, null, at(14))).toEqual([
      { term: 'Time limit', value: 'none', key: 'session-deadline' },
      { term: 'Idle stop', value: 'never', key: 'session-idle' }
    ]);
    expect(sessionDetails(makeTerms({ exempt: true }), null, at(14))).toEqual([]);
  });
});

describe('summarizeSession', () => {
  it('counts down with the deadline and the idle stop in the tooltip', () => {
    expect(summarizeSession(makeTerms(), 2 * HOUR + 14 * MINUTE, at(13, 46), [900, 120])).toEqual({
      visible: true,
      text: '2 h 14 min left',
      tooltip: 'Your server stops at 16:00.\nIdle stop: after 1 h without activity.',
      urgent: false
    });
  });

  it('turns urgent once the first warning is due', () => {
    expect(summarizeSession(makeTerms(), 15 * MINUTE, at(15, 45), [900, 120]).urgent).toBe(true);
    expect(summarizeSession(makeTerms(), 15 * MINUTE, at(15, 45), []).urgent).toBe(false);
  });

  it('hides where no deadline applies', () => {
    const hidden = { visible: false, text: '', tooltip: '', urgent: false };
    expect(summarizeSession(null, null, at(14), [900])).toEqual(hidden);
    expect(summarizeSession(makeTerms({ managed: false }), null, at(14), [900])).toEqual(hidden);
    expect(summarizeSession(makeTerms({ exempt: true }), null, at(14), [900])).toEqual(hidden);
    expect(summarizeSession(makeTerms({ deadline: null }), null, at(14), [900])).toEqual(hidden);
  });
});

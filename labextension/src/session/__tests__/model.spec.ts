import { SciencelabRequestError } from '../../request';
import { ISessionTerms } from '../../tokens';
import { ISessionWarning, SessionLifetimeModel, warningsFrom } from '../model';
import { at, HubStub, makeTerms, REFUSAL } from './fixtures';

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;

describe('SessionLifetimeModel', () => {
  let model: SessionLifetimeModel;
  let hub: HubStub;
  let changes: number;
  let warnings: ISessionWarning[];

  function makeModel(terms: ISessionTerms): SessionLifetimeModel {
    hub = new HubStub(terms);
    model = new SessionLifetimeModel({ api: hub });
    changes = 0;
    warnings = [];
    model.changed.connect(() => {
      changes += 1;
    });
    model.warningDue.connect((_, warning) => {
      warnings.push(warning);
    });
    return model;
  }

  beforeEach(() => {
    jest.useFakeTimers();
    // The browser's clock is two minutes behind the hub's 14:00.
    jest.setSystemTime(at(13, 58));
  });

  afterEach(() => {
    model.dispose();
    jest.useRealTimers();
  });

  it("reads the terms at start and counts down on the hub's clock", async () => {
    await makeModel(makeTerms()).start();

    expect(model.managed).toBe(true);
    expect(model.now()).toEqual(at(14));
    expect(model.remaining()).toBe(2 * HOUR);
    changes = 0;
    await jest.advanceTimersByTimeAsync(3000);
    expect(changes).toBe(3);
    expect(model.remaining()).toBe(2 * HOUR - 3000);
  });

  it('reads the terms again every minute', async () => {
    await makeModel(makeTerms()).start();
    hub.terms = makeTerms({ deadline: at(15).toISOString() });

    await jest.advanceTimersByTimeAsync(MINUTE);
    expect(hub.gets).toBe(2);
    expect(model.remaining()).toBe(HOUR - MINUTE);
    await jest.advanceTimersByTimeAsync(MINUTE);
    expect(hub.gets).toBe(3);
  });

  it('stops reading and ticking where the hub sets no terms', async () => {
    await makeModel({ ...makeTerms(), managed: false }).start();
    changes = 0;

    await jest.advanceTimersByTimeAsync(5 * MINUTE);
    expect(model.managed).toBe(false);
    expect(model.watching).toBe(false);
    expect(model.remaining()).toBeNull();
    expect(model.extendState()).toBeNull();
    expect(hub.gets).toBe(1);
    expect(changes).toBe(0);
  });

  it('keeps asking while the hub has no terms yet', async () => {
    const starting = 'The server is starting: no deadline yet.';
    await makeModel({ managed: false, message: starting } as ISessionTerms).start();
    expect(model.managed).toBe(false);
    expect(model.watching).toBe(true);

    hub.terms = makeTerms();
    await jest.advanceTimersByTimeAsync(MINUTE);
    expect(model.managed).toBe(true);
    expect(model.remaining()).toBe(2 * HOUR - MINUTE);
  });

  it('takes a server extension without the session API as unmanaged', async () => {
    makeModel(makeTerms());
    hub.failWith = new SciencelabRequestError('Not Found', 404, 'session');
    await model.start();

    expect(model.managed).toBe(false);
    await jest.advanceTimersByTimeAsync(5 * MINUTE);
    expect(hub.gets).toBe(1);
  });

  it('shows why the hub service cannot be reached, and keeps trying', async () => {
    makeModel(makeTerms());
    hub.failWith = new SciencelabRequestError(
      'The ScienceLab hub service is unreachable.',
      503,
      'x'
    );
    await model.start();

    expect(model.managed).toBeNull();
    expect(model.error).toBe('The ScienceLab hub service is unreachable.');
    hub.failWith = null;
    await jest.advanceTimersByTimeAsync(MINUTE);
    expect(model.error).toBeNull();
    expect(model.managed).toBe(true);
  });

  it('warns at each offset before the deadline, once', async () => {
    await makeModel(makeTerms({ deadline: at(14, 15, 5).toISOString() })).start();
    expect(warnings).toEqual([]);

    await jest.advanceTimersByTimeAsync(5000);
    expect(warnings).toEqual([
      {
        offset: 900,
        message: 'Your server stops at 14:15, in 15 min: save your work or extend the session.',
        canExtend: true
      }
    ]);
    await jest.advanceTimersByTimeAsync(12 * MINUTE);
    expect(warnings).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(MINUTE);
    expect(warnings.map(warning => warning.offset)).toEqual([900, 120]);
  });

  it('warns at the offsets of the settings', async () => {
    await makeModel(makeTerms({ deadline: at(14, 30).toISOString() })).start();
    model.warnings = [1800];

    expect(warnings.map(warning => warning.offset)).toEqual([1800]);
  });

  it('extends, says so, and warns again before the new deadline', async () => {
    await makeModel(makeTerms({ deadline: at(14, 10).toISOString() })).start();
    expect(warnings.map(warning => warning.offset)).toEqual([900]);

    const extension = model.extend();
    expect(model.extending).toBe(true);
    const terms = await extension;
    expect(model.extending).toBe(false);
    expect(hub.extensions).toBe(1);
    expect(terms.deadline).toBe(at(15, 10).toISOString());
    expect(model.message).toEqual({
      text: 'Extended: your server now stops at 15:10.',
      error: false
    });
    // Nothing due until 15 minutes before 15:10: skip most of the ticks.
    jest.setSystemTime(Date.now() + 54 * MINUTE);
    await jest.advanceTimersByTimeAsync(MINUTE);
    expect(warnings.map(warning => warning.offset)).toEqual([900, 900]);
  });

  it("keeps the hub's refusal as the message and reads where the deadline stands", async () => {
    await makeModel(makeTerms({ deadline: at(20).toISOString() })).start();
    expect(model.extendState()?.reason).toBe(
      "This session cannot run past 20:00, its profile's limit."
    );

    await expect(model.extend()).rejects.toThrow(REFUSAL);
    expect(model.message).toEqual({ text: REFUSAL, error: true });
    expect(hub.gets).toBe(2);
  });

  it('ignores a read that an extension overtook', async () => {
    await makeModel(makeTerms()).start();
    let answerLate: (terms: ISessionTerms) => void = () => undefined;
    const stale = { ...makeTerms(), now: at(14).toISOString() };
    jest
      .spyOn(hub, 'get')
      .mockReturnValueOnce(new Promise<ISessionTerms>(resolve => (answerLate = resolve)));

    const read = model.refresh();
    await model.extend();
    answerLate(stale);
    await read;
    expect(model.terms?.deadline).toBe(at(17).toISOString());
  });
});

describe('warningsFrom', () => {
  it('takes the positive offsets of the setting, the defaults for anything else', () => {
    expect(warningsFrom([600, 60])).toEqual([600, 60]);
    expect(warningsFrom([])).toEqual([]);
    expect(warningsFrom([300, -1, 'x'])).toEqual([300]);
    expect(warningsFrom(null)).toEqual([900, 120]);
  });
});

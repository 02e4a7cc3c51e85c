import { MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { act } from 'react';

import { ISessionTerms } from '../../tokens';
import { SessionLifetimeModel } from '../model';
import { SessionSection } from '../panel';
import { SessionStatusItem } from '../statusbar';
import { at, HubStub, makeTerms, REFUSAL } from './fixtures';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

interface ISetup {
  hub: HubStub;
  model: SessionLifetimeModel;
  widget: Widget;
}

let current: ISetup | null = null;

/**
 * `widget` (the section, or the status item) attached and rendered on a model that has read
 * `terms` from a hub two minutes ahead of the browser's 13:58.
 */
async function setup(
  terms: ISessionTerms,
  makeWidget: (model: SessionLifetimeModel) => Widget = model => new SessionSection(model)
): Promise<ISetup> {
  const hub = new HubStub(terms);
  const model = new SessionLifetimeModel({ api: hub });
  await model.refresh();
  const widget = makeWidget(model);
  await act(async () => {
    Widget.attach(widget, document.body);
    MessageLoop.sendMessage(widget, Widget.Msg.UpdateRequest);
  });
  current = { hub, model, widget };
  return current;
}

afterEach(async () => {
  await act(async () => {
    current?.widget.dispose();
    current?.model.dispose();
  });
  current = null;
  jest.restoreAllMocks();
});

function text(selector: string): string | null {
  return document.querySelector(selector)?.textContent ?? null;
}

function extendButton(): HTMLButtonElement {
  return document.querySelector('#sciencelab-session-extend') as HTMLButtonElement;
}

describe('Session section', () => {
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(at(13, 58).getTime());
  });

  it('shows the time left, the deadline, the limit and the idle stop', async () => {
    await setup(makeTerms());

    expect(document.querySelector('#sciencelab-session-section')).not.toBeNull();
    expect(text('[data-sciencelab="session-remaining"]')).toBe('2 h left');
    expect(text('[data-sciencelab="session-deadline"]')).toBe('16:00');
    expect(text('[data-sciencelab="session-limit"]')).toBe('20:00');
    expect(text('[data-sciencelab="session-idle"]')).toBe('after 1 h without activity');
    expect(extendButton().textContent).toBe('Extend by 1 h');
    expect(extendButton().disabled).toBe(false);
    expect(text('#sciencelab-session-message')).toBe('');
  });

  it('extends and shows the new deadline', async () => {
    const { hub } = await setup(makeTerms());

    await act(async () => extendButton().click());
    expect(hub.extensions).toBe(1);
    expect(text('[data-sciencelab="session-deadline"]')).toBe('17:00');
    expect(text('#sciencelab-session-message')).toBe('Extended: your server now stops at 17:00.');
  });

  it("shows the hub's refusal in the section", async () => {
    const { hub } = await setup(makeTerms());
    hub.refuse = true;

    await act(async () => extendButton().click());
    const message = document.querySelector('#sciencelab-session-message');
    expect(message?.textContent).toBe(REFUSAL);
    expect(message?.className).toBe('sciencelab-SessionMessage sciencelab-error');
    expect(message?.getAttribute('role')).toBe('alert');
  });

  it('disables Extend past the limit and says why', async () => {
    await setup(makeTerms({ deadline: at(20).toISOString() }));

    expect(extendButton().disabled).toBe(true);
    expect(text('#sciencelab-session-message')).toBe(
      "This session cannot run past 20:00, its profile's limit."
    );
  });

  it('says an exempt group has no limits, with no button', async () => {
    await setup(makeTerms({ exempt: true }));

    expect(text('[data-sciencelab="session-exempt"]')).toBe(
      'Your group is exempt: no time limit and no idle stop apply to this server.'
    );
    expect(extendButton()).toBeNull();
  });
});

describe('Session status item', () => {
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(at(13, 44).getTime());
  });

  it('counts down, with the deadline and the idle stop in the tooltip', async () => {
    let clicks = 0;
    const { widget } = await setup(
      makeTerms(),
      model => new SessionStatusItem(model, () => (clicks += 1))
    );

    const item = document.querySelector(
      '#sciencelab-session-status .sciencelab-SessionStatus-text'
    );
    expect(item?.textContent).toBe('2 h 14 min left');
    expect(item?.getAttribute('title')).toBe(
      'Your server stops at 16:00.\nIdle stop: after 1 h without activity.'
    );
    expect((widget as SessionStatusItem).isWanted()).toBe(true);
    (item as HTMLElement).click();
    expect(clicks).toBe(1);
  });

  it('is not wanted without a deadline', async () => {
    const { widget } = await setup(makeTerms({ deadline: null }), model => {
      return new SessionStatusItem(model, () => undefined);
    });

    expect((widget as SessionStatusItem).isWanted()).toBe(false);
  });
});

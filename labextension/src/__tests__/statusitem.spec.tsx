import { IStatusBar } from '@jupyterlab/statusbar';
import { DisposableDelegate } from '@lumino/disposable';
import { MessageLoop } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { act } from 'react';

import { IStatusItemText, SciencelabStatusItem } from '../statusitem';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/**
 * A model with a count and a warning flag, that says when they change.
 */
class CounterModel {
  get changed(): Signal<this, void> {
    return this._changed;
  }

  set(count: number, warn = false): void {
    this.count = count;
    this.warn = warn;
    this._changed.emit();
  }

  count = 0;
  warn = false;
  private readonly _changed = new Signal<this, void>(this);
}

/**
 * The item's classes, as a capability would name them.
 */
const CLASSES = { className: 'sciencelab-Counter', textClassName: 'sciencelab-Counter-text' };

/**
 * Wanted while the count is positive and the user has not hidden it.
 */
class CounterItem extends SciencelabStatusItem<CounterModel> {
  /**
   * Not wanted any more whatever the count, as after a user's setting.
   */
  dismiss(): void {
    this._hidden = true;
    this.checkVisibility();
  }

  isWanted(): boolean {
    return !this._hidden && this.model.count > 0;
  }

  protected describe(): IStatusItemText {
    return {
      text: `${this.model.count} left`,
      tooltip: `Count: ${this.model.count}`,
      modifier: this.model.warn ? 'sciencelab-mod-urgent' : null
    };
  }

  private _hidden = false;
}

/**
 * The status bar as the item sees it: it keeps what is registered.
 */
class RecordingStatusBar implements IStatusBar {
  registerStatusItem(id: string, statusItem: IStatusBar.IItem): DisposableDelegate {
    this.items.set(id, statusItem);
    return new DisposableDelegate(() => this.items.delete(id));
  }

  readonly items = new Map<string, IStatusBar.IItem>();
}

let item: CounterItem | null = null;

async function attach(widget: CounterItem): Promise<void> {
  item = widget;
  await act(async () => {
    Widget.attach(widget, document.body);
    MessageLoop.sendMessage(widget, Widget.Msg.UpdateRequest);
  });
}

afterEach(async () => {
  await act(async () => {
    item?.dispose();
  });
  item = null;
});

describe('SciencelabStatusItem', () => {
  it('shows the text with its tooltip and classes, and follows the model', async () => {
    const model = new CounterModel();
    let clicks = 0;
    await attach(
      new CounterItem({ model, onClick: () => (clicks += 1), id: 'sciencelab-counter', ...CLASSES })
    );

    expect(item?.node.classList.contains('sciencelab-Counter')).toBe(true);
    const text = (): HTMLElement =>
      document.querySelector('#sciencelab-counter span.sciencelab-Counter-text') as HTMLElement;
    expect(text().textContent).toBe('0 left');
    expect(text().getAttribute('title')).toBe('Count: 0');
    expect(text().className).toBe('sciencelab-Counter-text');

    await act(async () => model.set(3, true));
    expect(text().textContent).toBe('3 left');
    expect(text().className).toBe('sciencelab-Counter-text sciencelab-mod-urgent');

    text().click();
    expect(clicks).toBe(1);
  });

  it('has no id unless given one', () => {
    item = new CounterItem({ model: new CounterModel(), onClick: () => undefined, ...CLASSES });
    expect(item.id).toBe('');
  });

  it('tells the status bar only when whether it is wanted turns', () => {
    const model = new CounterModel();
    item = new CounterItem({ model, onClick: () => undefined, ...CLASSES });
    let told = 0;
    item.visibilityChanged.connect(() => (told += 1));

    model.set(0);
    expect(told).toBe(1); // the first answer is always news
    model.set(0);
    expect(told).toBe(1);
    model.set(2);
    model.set(5);
    expect(told).toBe(2);
    item.dismiss();
    expect(told).toBe(3);
    model.set(7);
    expect(told).toBe(3);
    expect(item.isWanted()).toBe(false);
  });

  it('registers itself on the left, active while wanted', () => {
    const model = new CounterModel();
    item = new CounterItem({ model, onClick: () => undefined, ...CLASSES });
    const statusBar = new RecordingStatusBar();

    const registration = item.addTo(statusBar, 'counter-status', 42);

    const registered = statusBar.items.get('counter-status');
    expect(registered?.item).toBe(item);
    expect(registered?.align).toBe('left');
    expect(registered?.rank).toBe(42);
    expect(registered?.activeStateChanged).toBe(item.visibilityChanged);
    expect(registered?.isActive?.()).toBe(false);
    model.set(1);
    expect(registered?.isActive?.()).toBe(true);
    registration.dispose();
    expect(statusBar.items.size).toBe(0);
  });

  it('disconnects its listeners when disposed', () => {
    const model = new CounterModel();
    item = new CounterItem({ model, onClick: () => undefined, ...CLASSES });
    let told = 0;
    item.visibilityChanged.connect(() => (told += 1));

    item.dispose();
    model.set(1);
    expect(told).toBe(0);
  });
});

import { ServerConnection } from '@jupyterlab/services';
import { MessageLoop } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { act } from 'react';

import { GpuMonitorModel } from '../model';
import { GpuStatusItem } from '../statusbar';
import { IGpuSample } from '../types';
import { makeGpu, makeSample } from './fixtures';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/**
 * A GPU monitor whose samples the spec sets, without a server.
 */
class SetSampleModel extends GpuMonitorModel {
  constructor() {
    // Never used: the model neither loads nor connects here.
    super({ serverSettings: {} as ServerConnection.ISettings });
  }

  override get changed(): Signal<this, void> {
    return this._sampleChanged;
  }

  override get current(): IGpuSample | null {
    return this._sample;
  }

  receive(sample: IGpuSample | null): void {
    this._sample = sample;
    this._sampleChanged.emit();
  }

  private _sample: IGpuSample | null = null;
  private readonly _sampleChanged = new Signal<this, void>(this);
}

let item: GpuStatusItem | null = null;

afterEach(async () => {
  await act(async () => {
    item?.dispose();
  });
  item = null;
});

function text(): HTMLElement {
  return document.querySelector(
    '.sciencelab-GpuStatus span.sciencelab-GpuStatus-text'
  ) as HTMLElement;
}

describe('GPU status item', () => {
  it('shows the busiest GPU, idle in the warning colour', async () => {
    const model = new SetSampleModel();
    let clicks = 0;
    item = new GpuStatusItem(model, () => (clicks += 1));
    await act(async () => {
      Widget.attach(item as GpuStatusItem, document.body);
      MessageLoop.sendMessage(item as GpuStatusItem, Widget.Msg.UpdateRequest);
    });
    expect(text().textContent).toBe('GPU …');

    await act(async () => model.receive(makeSample([makeGpu()])));
    expect(text().textContent).toBe('GPU 45% · 12.3/80 GiB');
    expect(text().className).toBe('sciencelab-GpuStatus-text');

    const idle = { held: true, below_threshold_since: 100, flagged: true };
    await act(async () => model.receive(makeSample([makeGpu({ idle })])));
    expect(text().className).toBe('sciencelab-GpuStatus-text sciencelab-mod-idle');
    text().click();
    expect(clicks).toBe(1);
  });

  it('is wanted with a GPU, or always when the user asks, never when hidden', () => {
    const model = new SetSampleModel();
    item = new GpuStatusItem(model, () => undefined);
    let told = 0;
    item.visibilityChanged.connect(() => (told += 1));

    model.receive(null);
    expect(item.isWanted()).toBe(false);
    item.options = { show: true, showWithoutGpu: true };
    expect(item.isWanted()).toBe(true);
    item.options = { show: true, showWithoutGpu: false };
    model.receive(makeSample([makeGpu()]));
    expect(item.isWanted()).toBe(true);
    item.options = { show: false, showWithoutGpu: true };
    expect(item.isWanted()).toBe(false);
    expect(told).toBe(5);
  });
});

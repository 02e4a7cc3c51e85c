import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import { summarize } from './format';
import { GpuMonitorModel } from './model';

/**
 * When the status-bar item shows (the user's settings).
 */
export interface IStatusOptions {
  show: boolean;
  showWithoutGpu: boolean;
}

/**
 * `GPU 45% · 12.3/80 GiB` in the status bar: the busiest GPU, every GPU in the tooltip, a warning
 * colour while a GPU held by this server is idle. A click opens the GPU panel.
 */
export class GpuStatusItem extends ReactWidget {
  constructor(model: GpuMonitorModel, onClick: () => void) {
    super();
    this._model = model;
    this._onClick = onClick;
    this.addClass('sciencelab-GpuStatus');
    model.changed.connect(this._checkVisibility, this);
  }

  /**
   * Emitted when `isWanted()` may have changed; the status bar asks again then.
   */
  get visibilityChanged(): ISignal<this, void> {
    return this._visibilityChanged;
  }

  get options(): IStatusOptions {
    return this._options;
  }

  set options(options: IStatusOptions) {
    this._options = options;
    this._checkVisibility();
  }

  isWanted(): boolean {
    if (!this._options.show) {
      return false;
    }
    return this._options.showWithoutGpu || summarize(this._model.current).hasGpu;
  }

  override dispose(): void {
    Signal.clearData(this);
    super.dispose();
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => {
          const summary = summarize(this._model.current);
          return (
            <span
              className={`sciencelab-GpuStatus-text${summary.idle ? ' sciencelab-mod-idle' : ''}`}
              title={summary.tooltip}
              onClick={this._onClick}
            >
              {summary.text}
            </span>
          );
        }}
      </UseSignal>
    );
  }

  private _checkVisibility(): void {
    const visible = this.isWanted();
    if (visible !== this._lastVisible) {
      this._lastVisible = visible;
      this._visibilityChanged.emit();
    }
  }

  private readonly _model: GpuMonitorModel;
  private readonly _onClick: () => void;
  private readonly _visibilityChanged = new Signal<this, void>(this);
  private _options: IStatusOptions = { show: true, showWithoutGpu: false };
  private _lastVisible: boolean | null = null;
}

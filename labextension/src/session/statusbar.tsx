import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

import { summarizeSession } from './format';
import { SessionLifetimeModel } from './model';

/**
 * `2 h 14 min left` in the status bar: the time until the hub stops this server, the deadline's
 * local time and the idle stop in the tooltip, a warning colour once the first warning is due.
 * Hidden where no deadline applies. A click opens the Session section.
 */
export class SessionStatusItem extends ReactWidget {
  constructor(model: SessionLifetimeModel, onClick: () => void) {
    super();
    this._model = model;
    this._onClick = onClick;
    this.id = 'sciencelab-session-status';
    this.addClass('sciencelab-SessionStatus');
    model.changed.connect(this._checkVisibility, this);
  }

  /**
   * Emitted when `isWanted()` may have changed; the status bar asks again then.
   */
  get visibilityChanged(): ISignal<this, void> {
    return this._visibilityChanged;
  }

  isWanted(): boolean {
    return this._model.remaining() !== null;
  }

  override dispose(): void {
    Signal.clearData(this);
    super.dispose();
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => {
          const model = this._model;
          const summary = summarizeSession(
            model.terms,
            model.remaining(),
            model.now(),
            model.warnings
          );
          return (
            <span
              className={`sciencelab-SessionStatus-text${summary.urgent ? ' sciencelab-mod-urgent' : ''}`}
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

  private readonly _model: SessionLifetimeModel;
  private readonly _onClick: () => void;
  private readonly _visibilityChanged = new Signal<this, void>(this);
  private _lastVisible: boolean | null = null;
}

/**
 * The base of ScienceLab's status-bar items: one line of text over a model, shown only while the
 * item is wanted, that does something when clicked.
 */
import { IStatusBar } from '@jupyterlab/statusbar';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import React from 'react';

/**
 * What a status-bar item reads: a model that says when it changed.
 */
export interface IStatusItemModel {
  readonly changed: ISignal<unknown, void>;
}

/**
 * What a status-bar item shows now.
 */
export interface IStatusItemText {
  text: string;
  tooltip: string;

  /**
   * A class added to the text, e.g. `sciencelab-mod-idle` for a warning colour, or null.
   */
  modifier: string | null;
}

/**
 * A status-bar item that re-renders on every change of its model and tells the status bar when
 * `isWanted()` turns, so that it shows and hides itself. Subclasses say when it is wanted and what
 * it shows; they call `checkVisibility()` when something other than the model changes the answer.
 */
export abstract class SciencelabStatusItem<TModel extends IStatusItemModel> extends ReactWidget {
  constructor(options: SciencelabStatusItem.IOptions<TModel>) {
    super();
    this.model = options.model;
    this._onClick = options.onClick;
    this._textClassName = options.textClassName;
    if (options.id !== undefined) {
      this.id = options.id;
    }
    this.addClass(options.className);
    options.model.changed.connect(this.checkVisibility, this);
  }

  /**
   * Emitted when `isWanted()` may have changed; the status bar asks again then.
   */
  get visibilityChanged(): ISignal<this, void> {
    return this._visibilityChanged;
  }

  /**
   * Whether the item shows in the status bar now.
   */
  abstract isWanted(): boolean;

  /**
   * Register the item on the left of `statusBar`, shown while it is wanted.
   */
  addTo(statusBar: IStatusBar, id: string, rank: number): IDisposable {
    return statusBar.registerStatusItem(id, {
      item: this,
      align: 'left',
      rank,
      isActive: () => this.isWanted(),
      activeStateChanged: this._visibilityChanged
    });
  }

  override dispose(): void {
    Signal.clearData(this);
    super.dispose();
  }

  /**
   * The text, tooltip and modifier class for the model as it is now.
   */
  protected abstract describe(): IStatusItemText;

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => {
          const { text, tooltip, modifier } = this.describe();
          return (
            <span
              className={modifier ? `${this._textClassName} ${modifier}` : this._textClassName}
              title={tooltip}
              onClick={this._onClick}
            >
              {text}
            </span>
          );
        }}
      </UseSignal>
    );
  }

  /**
   * Emit `visibilityChanged` if `isWanted()` changed since it was last asked here.
   */
  protected checkVisibility(): void {
    const visible = this.isWanted();
    if (visible !== this._lastVisible) {
      this._lastVisible = visible;
      this._visibilityChanged.emit();
    }
  }

  protected readonly model: TModel;
  private readonly _onClick: () => void;
  private readonly _textClassName: string;
  private readonly _visibilityChanged = new Signal<this, void>(this);
  private _lastVisible: boolean | null = null;
}

/**
 * The namespace for `SciencelabStatusItem` types.
 */
export namespace SciencelabStatusItem {
  export interface IOptions<TModel extends IStatusItemModel> {
    model: TModel;

    /**
     * Called when the user clicks the text.
     */
    onClick: () => void;

    /**
     * Class of the item's node, e.g. `sciencelab-GpuStatus`.
     */
    className: string;

    /**
     * Class of the text, e.g. `sciencelab-GpuStatus-text`.
     */
    textClassName: string;

    /**
     * Id of the item's node, for tests and styles to find it; none by default.
     */
    id?: string;
  }
}

import { IStatusItemText, SciencelabStatusItem } from '../statusitem';
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
export class GpuStatusItem extends SciencelabStatusItem<GpuMonitorModel> {
  constructor(model: GpuMonitorModel, onClick: () => void) {
    super({
      model,
      onClick,
      className: 'sciencelab-GpuStatus',
      textClassName: 'sciencelab-GpuStatus-text'
    });
  }

  get options(): IStatusOptions {
    return this._options;
  }

  set options(options: IStatusOptions) {
    this._options = options;
    this.checkVisibility();
  }

  isWanted(): boolean {
    if (!this._options.show) {
      return false;
    }
    return this._options.showWithoutGpu || summarize(this.model.current).hasGpu;
  }

  protected describe(): IStatusItemText {
    const summary = summarize(this.model.current);
    return {
      text: summary.text,
      tooltip: summary.tooltip,
      modifier: summary.idle ? 'sciencelab-mod-idle' : null
    };
  }

  private _options: IStatusOptions = { show: true, showWithoutGpu: false };
}

import { IStatusItemText, SciencelabStatusItem } from '../statusitem';
import { summarizeSession } from './format';
import { SessionLifetimeModel } from './model';

/**
 * `2 h 14 min left` in the status bar: the time until the hub stops this server, the deadline's
 * local time and the idle stop in the tooltip, a warning colour once the first warning is due.
 * Hidden where no deadline applies. A click opens the Session section.
 */
export class SessionStatusItem extends SciencelabStatusItem<SessionLifetimeModel> {
  constructor(model: SessionLifetimeModel, onClick: () => void) {
    super({
      model,
      onClick,
      id: 'sciencelab-session-status',
      className: 'sciencelab-SessionStatus',
      textClassName: 'sciencelab-SessionStatus-text'
    });
  }

  isWanted(): boolean {
    return this.model.remaining() !== null;
  }

  protected describe(): IStatusItemText {
    const model = this.model;
    const summary = summarizeSession(model.terms, model.remaining(), model.now(), model.warnings);
    return {
      text: summary.text,
      tooltip: summary.tooltip,
      modifier: summary.urgent ? 'sciencelab-mod-urgent' : null
    };
  }
}

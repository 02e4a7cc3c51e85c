import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { sectionMessage, sessionDetails } from './format';
import { SessionLifetimeModel } from './model';

/**
 * Everything the Session section shows for the model's state: time left, the deadline, the limit
 * and the idle stop; the Extend button, and one message line with the last extension's outcome or
 * why the session cannot be extended. A refusal shows there in the server's words.
 */
export function SessionPanel(props: { model: SessionLifetimeModel }): JSX.Element {
  const { model } = props;
  const terms = model.terms;
  const error = model.error && (
    <p className="sciencelab-error" role="alert">
      {model.error}
    </p>
  );
  if (terms === null || !terms.managed) {
    return (
      <div className="sciencelab-SessionPanel">
        {error ?? (
          <p className="sciencelab-status">
            {terms === null
              ? 'Reading the session terms…'
              : (terms.message ?? 'This server has no session limits.')}
          </p>
        )}
      </div>
    );
  }
  if (terms.exempt) {
    return (
      <div className="sciencelab-SessionPanel">
        {error}
        <p className="sciencelab-status" data-sciencelab="session-exempt">
          Your group is exempt: no time limit and no idle stop apply to this server.
        </p>
      </div>
    );
  }
  const now = model.now();
  const extend = model.extendState();
  const message = sectionMessage(model.message, extend);
  return (
    <div className="sciencelab-SessionPanel">
      {error}
      <dl className="sciencelab-SessionDetails">
        {sessionDetails(terms, model.remaining(), now).map(detail => (
          <React.Fragment key={detail.key}>
            <dt>{detail.term}</dt>
            <dd data-sciencelab={detail.key}>{detail.value}</dd>
          </React.Fragment>
        ))}
      </dl>
      {extend && (
        <div className="sciencelab-SessionButtons">
          <button
            id="sciencelab-session-extend"
            type="button"
            className="jp-mod-styled jp-mod-accept"
            disabled={!extend.possible || model.extending}
            onClick={() => {
              // A refusal lands in the model's message, shown below.
              model.extend().catch(() => undefined);
            }}
          >
            {model.extending ? 'Extending…' : extend.label}
          </button>
        </div>
      )}
      <p
        id="sciencelab-session-message"
        className={`sciencelab-SessionMessage${message.error ? ' sciencelab-error' : ''}`}
        role={message.error ? 'alert' : 'status'}
      >
        {message.text}
      </p>
    </div>
  );
}

/**
 * The Session section of the ScienceLab sidebar.
 */
export class SessionSection extends ReactWidget {
  constructor(model: SessionLifetimeModel) {
    super();
    this._model = model;
    this.id = 'sciencelab-session-section';
    this.title.label = 'Session';
    this.addClass('sciencelab-SessionSection');
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => <SessionPanel model={this._model} />}
      </UseSignal>
    );
  }

  private readonly _model: SessionLifetimeModel;
}

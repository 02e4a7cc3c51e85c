import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { sharedServerLabel } from './format';
import { SharedWithMeModel } from './model';

/**
 * The servers others shared with this user: each with Open (a new tab on it) and Leave.
 */
export function SharedWithMePanel(props: {
  model: SharedWithMeModel;
  origin: string;
}): JSX.Element {
  const { model, origin } = props;
  return (
    <>
      <ul className="sciencelab-SharedWithMe" aria-label="Servers shared with you">
        {model.servers.map(server => {
          const label = sharedServerLabel(server);
          return (
            <li
              key={`${server.owner}/${server.name}`}
              className="sciencelab-SharedServer"
              data-owner={server.owner}
              data-server={server.name}
            >
              <span className="sciencelab-SharedServerName">
                {label}
                <span className="sciencelab-SharedServerDetail">
                  {[
                    server.ready ? 'running' : 'not running',
                    server.through && `via ${server.through}`
                  ]
                    .filter(Boolean)
                    .join(' · ')}
                </span>
              </span>
              <a
                className="jp-mod-styled jp-Button sciencelab-SharedServerOpen"
                href={new URL(server.url, origin).href}
                target="_blank"
                rel="noopener noreferrer"
                aria-label={`Open ${label}`}
              >
                Open
              </a>
              <button
                type="button"
                className="jp-mod-styled jp-mod-reject"
                aria-label={`Leave ${label}`}
                onClick={() => void model.leave(server)}
              >
                Leave
              </button>
            </li>
          );
        })}
      </ul>
      {model.error && (
        <p className="sciencelab-error" role="alert">
          {model.error}
        </p>
      )}
    </>
  );
}

/**
 * The Shared with me section of the ScienceLab panel.
 */
export class SharedWithMeSection extends ReactWidget {
  constructor(model: SharedWithMeModel, origin: string = window.location.origin) {
    super();
    this._model = model;
    this._origin = origin;
    this.id = 'sciencelab-shared-with-me-section';
    this.title.label = 'Shared with me';
    this.addClass('sciencelab-SharedWithMeSection');
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => <SharedWithMePanel model={this._model} origin={this._origin} />}
      </UseSignal>
    );
  }

  private readonly _model: SharedWithMeModel;
  private readonly _origin: string;
}

import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { CollaboratorsModel } from './model';

/**
 * Who is connected: a dot in each person's cursor colour, their name, and the document they are
 * in.
 */
export function CollaboratorsPanel(props: { model: CollaboratorsModel }): JSX.Element {
  const people = props.model.collaborators;
  if (people.length === 0) {
    return <p className="sciencelab-status">Connecting…</p>;
  }
  return (
    <ul className="sciencelab-Collaborators" aria-label="Connected to this server">
      {people.map(person => (
        <li
          key={person.username}
          className="sciencelab-Collaborator"
          data-username={person.username}
          title={person.tabs > 1 ? `${person.username}, ${person.tabs} tabs` : person.username}
        >
          <span
            className="sciencelab-CollaboratorDot"
            style={{ backgroundColor: person.color }}
            aria-hidden="true"
          />
          <span className="sciencelab-CollaboratorName">
            {person.displayName}
            {person.isMe && <span className="sciencelab-CollaboratorMe"> (you)</span>}
          </span>
          <span className="sciencelab-CollaboratorDocument">
            {person.current ?? 'no document open'}
          </span>
        </li>
      ))}
    </ul>
  );
}

/**
 * The Collaborators section of the ScienceLab panel.
 */
export class CollaboratorsSection extends ReactWidget {
  constructor(model: CollaboratorsModel) {
    super();
    this._model = model;
    this.id = 'sciencelab-collaborators-section';
    this.title.label = 'Collaborators';
    this.addClass('sciencelab-CollaboratorsSection');
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => <CollaboratorsPanel model={this._model} />}
      </UseSignal>
    );
  }

  private readonly _model: CollaboratorsModel;
}

import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import {
  copyIcon,
  HTMLSelect,
  linkIcon,
  ReactWidget,
  UseSignal,
  userIcon,
  usersIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React, { useState } from 'react';

import { IShare } from '../tokens';
import { DEFAULT_LINK_LIFETIME, describeCode, LINK_LIFETIMES } from './format';
import { ShareModel } from './model';

/**
 * Id of the Add button, which Enter in the name field presses (see `ShareDialogBody`).
 */
const ADD_BUTTON_ID = 'sciencelab-share-add';

/**
 * `2026-11-03 14:05` in the browser's time zone.
 */
function localTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function Alert(props: { id?: string; text: string | null }): JSX.Element | null {
  return props.text ? (
    <p id={props.id} className="sciencelab-error sciencelab-ShareAlert" role="alert">
      {props.text}
    </p>
  ) : null;
}

/**
 * The form that shares with one user or group: a User/Group toggle, the name, Add; the server's
 * refusal (an unknown name) right under it.
 */
function AddForm(props: { model: ShareModel }): JSX.Element {
  const { model } = props;
  const [kind, setKind] = useState<IShare['kind']>('user');
  const [name, setName] = useState('');
  const add = async (): Promise<void> => {
    if (await model.share(kind, name)) {
      setName('');
    }
  };
  return (
    <div className="sciencelab-ShareAdd">
      <div className="sciencelab-ShareAddRow">
        <div className="sciencelab-ShareKind" role="radiogroup" aria-label="Share with">
          {(['user', 'group'] as const).map(option => (
            <button
              key={option}
              type="button"
              role="radio"
              aria-checked={kind === option}
              data-kind={option}
              className={`sciencelab-ShareKindOption${kind === option ? ' sciencelab-mod-selected' : ''}`}
              onClick={() => setKind(option)}
            >
              {option === 'user' ? (
                <userIcon.react tag="span" className="sciencelab-ShareKindIcon" />
              ) : (
                <usersIcon.react tag="span" className="sciencelab-ShareKindIcon" />
              )}
              {option === 'user' ? 'User' : 'Group'}
            </button>
          ))}
        </div>
        <input
          id="sciencelab-share-name"
          className="jp-mod-styled sciencelab-ShareName"
          type="text"
          autoComplete="off"
          spellCheck={false}
          placeholder={kind === 'user' ? 'Username on this hub' : 'Group name on this hub'}
          aria-label={kind === 'user' ? 'Username' : 'Group name'}
          value={name}
          onChange={event => setName(event.target.value)}
        />
        <button
          id={ADD_BUTTON_ID}
          type="button"
          className="jp-mod-styled jp-mod-accept"
          disabled={model.busy}
          onClick={() => void add()}
        >
          Share
        </button>
      </div>
      <Alert id="sciencelab-share-add-error" text={model.addError} />
    </div>
  );
}

/**
 * Who has access: one row per user or group, with Revoke, and Revoke all.
 */
function AccessList(props: { model: ShareModel; shares: IShare[] }): JSX.Element {
  const { model, shares } = props;
  if (shares.length === 0) {
    return (
      <p className="sciencelab-status sciencelab-ShareEmpty">
        Nobody else has access: only you can use this server.
      </p>
    );
  }
  return (
    <>
      <ul className="sciencelab-ShareList" aria-label="Who has access">
        {shares.map(share => (
          <li
            key={`${share.kind}:${share.name}`}
            className="sciencelab-ShareItem"
            data-kind={share.kind}
            data-name={share.name}
          >
            {share.kind === 'user' ? (
              <userIcon.react tag="span" className="sciencelab-ShareItemIcon" />
            ) : (
              <usersIcon.react tag="span" className="sciencelab-ShareItemIcon" />
            )}
            <span className="sciencelab-ShareItemName">{share.name}</span>
            <span className="sciencelab-ShareItemDetail" title={localTime(share.created_at)}>
              {share.kind === 'group' ? 'group' : 'user'}
            </span>
            <button
              type="button"
              className="jp-mod-styled jp-mod-reject sciencelab-ShareRevoke"
              disabled={model.busy}
              aria-label={`Revoke ${share.kind} ${share.name}`}
              onClick={() => void model.revoke({ kind: share.kind, name: share.name })}
            >
              Revoke
            </button>
          </li>
        ))}
      </ul>
      <div className="sciencelab-ShareListActions">
        <button
          id="sciencelab-share-revoke-all"
          type="button"
          className="jp-mod-styled jp-mod-warn"
          disabled={model.busy}
          onClick={() => void model.revoke(null)}
        >
          Revoke all
        </button>
      </div>
    </>
  );
}

/**
 * Share links: a lifetime and Create; the link just made with Copy; the open links with their
 * expiry, use count and Revoke.
 */
function Links(props: { model: ShareModel; now: number }): JSX.Element {
  const { model, now } = props;
  const [lifetime, setLifetime] = useState(DEFAULT_LINK_LIFETIME);
  const [copied, setCopied] = useState<string | null>(null);
  const codes = model.listing?.codes ?? [];
  const link = model.newLink;
  return (
    <>
      <p className="sciencelab-ShareHint">
        Anyone who logs in to this hub with a link, and accepts it, can use this server until you
        revoke their access.
      </p>
      <div className="sciencelab-ShareAddRow">
        <HTMLSelect
          id="sciencelab-share-lifetime"
          aria-label="Link valid for"
          value={lifetime}
          onChange={event => setLifetime(Number(event.target.value))}
          options={LINK_LIFETIMES.map(option => ({
            label: `Valid for ${option.label}`,
            value: option.seconds
          }))}
        />
        <button
          id="sciencelab-share-create-link"
          type="button"
          className="jp-mod-styled jp-mod-accept"
          disabled={model.busy}
          onClick={() => void model.createLink(lifetime)}
        >
          Create link
        </button>
      </div>
      {link && (
        <div className="sciencelab-ShareNewLink" role="status">
          <div className="sciencelab-ShareAddRow">
            <input
              id="sciencelab-share-link"
              className="jp-mod-styled sciencelab-ShareLinkUrl"
              type="text"
              readOnly
              value={link.url}
              aria-label="Share link"
              onFocus={event => event.target.select()}
            />
            <button
              id="sciencelab-share-copy"
              type="button"
              className="jp-mod-styled jp-mod-accept sciencelab-ShareCopy"
              onClick={() => {
                Clipboard.copyToSystem(link.url);
                setCopied(link.url);
              }}
            >
              <copyIcon.react tag="span" className="sciencelab-ShareKindIcon" />
              {copied === link.url ? 'Copied' : 'Copy'}
            </button>
          </div>
          <p className="sciencelab-ShareHint">
            Copy this link now: it is shown only once. Valid until {localTime(link.expiresAt)}.
          </p>
        </div>
      )}
      {codes.length > 0 && (
        <>
          <ul className="sciencelab-ShareList" aria-label="Open links">
            {codes.map(code => (
              <li key={code.id} className="sciencelab-ShareItem" data-code={code.id}>
                <linkIcon.react tag="span" className="sciencelab-ShareItemIcon" />
                <span className="sciencelab-ShareItemName">
                  Link {code.id.replace(/^sc_/, '#')}
                </span>
                <span
                  className="sciencelab-ShareItemDetail"
                  title={`Made ${localTime(code.created_at)}, valid until ${localTime(code.expires_at)}`}
                >
                  {describeCode(code, now)}
                </span>
                <button
                  type="button"
                  className="jp-mod-styled jp-mod-reject sciencelab-ShareRevoke"
                  disabled={model.busy}
                  aria-label={`Revoke link ${code.id}`}
                  onClick={() => void model.revokeLink(code.id)}
                >
                  Revoke
                </button>
              </li>
            ))}
          </ul>
          {codes.length > 1 && (
            <div className="sciencelab-ShareListActions">
              <button
                id="sciencelab-share-revoke-links"
                type="button"
                className="jp-mod-styled jp-mod-warn"
                disabled={model.busy}
                onClick={() => void model.revokeLink(null)}
              >
                Revoke all links
              </button>
            </div>
          )}
        </>
      )}
    </>
  );
}

/**
 * The Share dialog's content for the model's state; links' expiries are as of the last listing.
 */
export function SharePanel(props: { model: ShareModel }): JSX.Element {
  const { model } = props;
  const now = model.listedAt;
  if (model.refusal) {
    return (
      <div className="sciencelab-SharePanel">
        <Alert id="sciencelab-share-refusal" text={model.refusal} />
      </div>
    );
  }
  if (!model.listing) {
    return (
      <div className="sciencelab-SharePanel">
        <p className="sciencelab-status">Reading who has access…</p>
      </div>
    );
  }
  return (
    <div className="sciencelab-SharePanel">
      <section aria-labelledby="sciencelab-share-people">
        <h3 id="sciencelab-share-people" className="sciencelab-ShareHeading">
          People and groups
        </h3>
        <AddForm model={model} />
        <AccessList model={model} shares={model.listing.shares} />
      </section>
      <section aria-labelledby="sciencelab-share-links">
        <h3 id="sciencelab-share-links" className="sciencelab-ShareHeading">
          Share links
        </h3>
        <Links model={model} now={now} />
      </section>
      <Alert id="sciencelab-share-error" text={model.error} />
    </div>
  );
}

/**
 * The body of the Share dialog.
 *
 * JupyterLab's `Dialog` takes Enter in a text field (on its own node, while capturing) as its
 * default button: Enter in the name field would close the dialog. A capturing listener on the
 * document, which runs first, makes it press Share instead.
 */
export class ShareDialogBody extends ReactWidget {
  constructor(model: ShareModel) {
    super();
    this._model = model;
    this.addClass('sciencelab-ShareDialog');
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    document.addEventListener('keydown', this._onKeydown, true);
  }

  protected override onBeforeDetach(msg: Message): void {
    document.removeEventListener('keydown', this._onKeydown, true);
    super.onBeforeDetach(msg);
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>{() => <SharePanel model={this._model} />}</UseSignal>
    );
  }

  private readonly _onKeydown = (event: KeyboardEvent): void => {
    const target = event.target as HTMLElement | null;
    if (
      event.key === 'Enter' &&
      target?.id === 'sciencelab-share-name' &&
      this.node.contains(target)
    ) {
      event.stopPropagation();
      event.preventDefault();
      this.node.querySelector<HTMLButtonElement>(`#${ADD_BUTTON_ID}`)?.click();
    }
  };

  private readonly _model: ShareModel;
}

/**
 * Open the Share dialog on `model` (read again first) and dispose of the model once it closes.
 */
export async function openShareDialog(model: ShareModel): Promise<void> {
  const body = new ShareDialogBody(model);
  void model.refresh();
  try {
    await showDialog({
      title: 'Share this server',
      body,
      buttons: [Dialog.okButton({ label: 'Done' })],
      hasClose: true
    });
  } finally {
    model.dispose();
  }
}

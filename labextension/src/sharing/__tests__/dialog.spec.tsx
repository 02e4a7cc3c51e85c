import { Widget } from '@lumino/widgets';
import { act } from 'react';

import { CollaboratorsSection } from '../collaborators';
import { ShareDialogBody } from '../dialog';
import { CollaboratorsModel, SharedWithMeModel, ShareModel } from '../model';
import { SharedWithMeSection } from '../sharedwithme';
import {
  AwarenessStub,
  NOT_COLLABORATIVE_REFUSAL,
  NOW,
  person,
  SharingStub,
  UNKNOWN_USER
} from './fixtures';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let widget: Widget | null = null;

async function show(made: Widget): Promise<Widget> {
  widget = made;
  // Attaching renders a ReactWidget (no update request sent here, as JupyterLab's Dialog sends none).
  await act(async () => Widget.attach(made, document.body));
  return made;
}

afterEach(async () => {
  await act(async () => widget?.dispose());
  widget = null;
});

function texts(selector: string): string[] {
  return Array.from(document.querySelectorAll(selector), node => node.textContent ?? '');
}

function button(label: string): HTMLButtonElement {
  const found = Array.from(document.querySelectorAll('button')).find(
    node => node.textContent === label || node.getAttribute('aria-label') === label
  );
  if (!found) {
    throw new Error(`no button ${label}`);
  }
  return found;
}

async function click(node: HTMLElement): Promise<void> {
  await act(async () => node.click());
}

async function type(value: string): Promise<void> {
  const input = document.querySelector('#sciencelab-share-name') as HTMLInputElement;
  await act(async () => {
    // React tracks the value it set; the native setter makes the change visible to it.
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set;
    setter?.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

async function dialogOn(api: SharingStub): Promise<ShareModel> {
  const model = new ShareModel({ api, origin: 'https://hub.example.org', now: () => NOW });
  await model.refresh();
  await show(new ShareDialogBody(model));
  return model;
}

describe('Share dialog', () => {
  it("shows only the server's refusal where sharing is not possible", async () => {
    const api = new SharingStub();
    api.refusal = NOT_COLLABORATIVE_REFUSAL;
    await dialogOn(api);
    expect(texts('[role=alert]')).toEqual([NOT_COLLABORATIVE_REFUSAL]);
    expect(document.querySelector('#sciencelab-share-name')).toBeNull();
  });

  it('shares with a group by name, shows a refusal inline, and revokes', async () => {
    const api = new SharingStub();
    await dialogOn(api);
    expect(texts('.sciencelab-ShareEmpty')).toEqual([
      'Nobody else has access: only you can use this server.'
    ]);

    await type('nobody');
    await click(button('Share'));
    expect(texts('#sciencelab-share-add-error')).toEqual([UNKNOWN_USER]);

    await click(document.querySelector('[data-kind=group]') as HTMLElement);
    await type('gpu-users');
    await click(button('Share'));
    expect(texts('#sciencelab-share-add-error')).toEqual([]);
    expect(texts('.sciencelab-ShareItem .sciencelab-ShareItemName')).toEqual(['gpu-users']);
    expect((document.querySelector('#sciencelab-share-name') as HTMLInputElement).value).toBe('');

    await click(button('Revoke group gpu-users'));
    expect(api.calls).toContain('revoke group gpu-users');
    expect(document.querySelectorAll('.sciencelab-ShareItem')).toHaveLength(0);
  });

  it('takes Enter in the name field as Share, before the dialog takes it as Done', async () => {
    const api = new SharingStub();
    await dialogOn(api);
    await type('bob');
    const dialogSaw = jest.fn();
    // The dialog listens on its own node while capturing: here, the body's parent.
    widget!.node.parentElement!.addEventListener('keydown', dialogSaw, true);
    const input = document.querySelector('#sciencelab-share-name') as HTMLInputElement;
    await act(async () => {
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    });
    await act(async () => undefined);
    expect(dialogSaw).not.toHaveBeenCalled();
    expect(api.calls).toContain('share user bob');
    expect(texts('.sciencelab-ShareItem .sciencelab-ShareItemName')).toEqual(['bob']);
  });

  it('makes a link with the chosen lifetime, shows it once with Copy, lists it', async () => {
    const api = new SharingStub();
    await dialogOn(api);
    const select = document.querySelector('#sciencelab-share-lifetime') as HTMLSelectElement;
    expect(Array.from(select.options, option => option.textContent)).toEqual([
      'Valid for 1 hour',
      'Valid for 1 day',
      'Valid for 1 week'
    ]);
    expect(select.value).toBe('86400');
    await act(async () => {
      select.value = '3600';
      select.dispatchEvent(new Event('change', { bubbles: true }));
    });
    await click(button('Create link'));

    expect(api.calls).toContain('link 3600');
    expect((document.querySelector('#sciencelab-share-link') as HTMLInputElement).value).toBe(
      'https://hub.example.org/hub/accept-share?code=secret-sc_1'
    );
    expect(texts('[data-code=sc_1] .sciencelab-ShareItemDetail')).toEqual([
      'expires in 1 h · not used yet'
    ]);
    await click(button('Revoke link sc_1'));
    expect(document.querySelector('#sciencelab-share-link')).toBeNull();
  });
});

describe('Collaborators section', () => {
  it('lists who is connected with their colour and document, live', async () => {
    const awareness = new AwarenessStub();
    awareness.states.set(1, person('alice', 'notebook:a.ipynb'));
    const model = new CollaboratorsModel(awareness, () => 'alice');
    await show(new CollaboratorsSection(model));
    expect(texts('.sciencelab-CollaboratorName')).toEqual(['alice (you)']);

    await act(async () => awareness.set(2, person('bob', null)));
    expect(texts('.sciencelab-CollaboratorName')).toEqual(['alice (you)', 'bob']);
    expect(texts('.sciencelab-CollaboratorDocument')).toEqual(['a.ipynb', 'no document open']);
    const dot = document.querySelector('[data-username=bob] .sciencelab-CollaboratorDot');
    expect((dot as HTMLElement).style.backgroundColor).toBe('var(--bob)');
    model.dispose();
  });
});

describe('Shared with me section', () => {
  it('links each server on the hub and leaves it', async () => {
    const api = new SharingStub();
    api.sharedServers = [
      { owner: 'carol', name: '', url: '/user/carol/', ready: true, through: 'gpu-users' }
    ];
    const model = new SharedWithMeModel({ api });
    await model.refresh();
    await show(new SharedWithMeSection(model, 'https://hub.example.org'));

    expect(texts('.sciencelab-SharedServerName')).toEqual([
      'carol (default server)running · via gpu-users'
    ]);
    const open = document.querySelector('.sciencelab-SharedServerOpen') as HTMLAnchorElement;
    expect(open.href).toBe('https://hub.example.org/user/carol/');
    await click(button('Leave carol (default server)'));
    expect(api.calls).toContain('leave carol/');
    expect(document.querySelectorAll('.sciencelab-SharedServer')).toHaveLength(0);
    model.dispose();
  });
});

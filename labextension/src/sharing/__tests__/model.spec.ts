import { CollaboratorsModel, SharedWithMeModel, ShareModel } from '../model';
import {
  AwarenessStub,
  NOT_COLLABORATIVE_REFUSAL,
  NOW,
  person,
  SharingStub,
  UNKNOWN_USER
} from './fixtures';

const ORIGIN = 'https://hub.example.org';

function shareModel(api: SharingStub): ShareModel {
  return new ShareModel({ api, origin: ORIGIN, now: () => NOW });
}

describe('ShareModel', () => {
  it("keeps the server's refusal to list, in its words", async () => {
    const api = new SharingStub();
    api.refusal = NOT_COLLABORATIVE_REFUSAL;
    const model = shareModel(api);
    await model.refresh();

    expect(model.listing).toBeNull();
    expect(model.refusal).toBe(NOT_COLLABORATIVE_REFUSAL);
  });

  it('shares, lists again, and shows a refusal of the add form inline', async () => {
    const api = new SharingStub();
    const model = shareModel(api);
    let changes = 0;
    model.changed.connect(() => (changes += 1));

    expect(await model.share('user', '  bob ')).toBe(true);
    expect(model.listing?.shares.map(share => share.name)).toEqual(['bob']);
    expect(model.listedAt).toBe(NOW);
    expect(model.addError).toBeNull();

    expect(await model.share('user', 'nobody')).toBe(false);
    expect(model.addError).toBe(UNKNOWN_USER);
    expect(await model.share('group', ' ')).toBe(false);
    expect(model.addError).toBe('Enter the name of a group.');
    expect(await model.share('group', 'gpu-users')).toBe(true);
    expect(model.addError).toBeNull();
    expect(api.calls).toEqual([
      'share user bob',
      'list',
      'share user nobody',
      'list',
      'share group gpu-users',
      'list'
    ]);
    expect(model.busy).toBe(false);
    expect(changes).toBeGreaterThan(0);
  });

  it('revokes one grantee or everyone', async () => {
    const api = new SharingStub();
    const model = shareModel(api);
    await model.share('user', 'bob');
    await model.share('group', 'gpu-users');

    await model.revoke({ kind: 'user', name: 'bob' });
    expect(model.listing?.shares.map(share => share.name)).toEqual(['gpu-users']);
    await model.revoke(null);
    expect(model.listing?.shares).toEqual([]);
  });

  it('shows a new link once, absolute, and forgets it when revoked', async () => {
    const api = new SharingStub();
    const model = shareModel(api);

    await model.createLink(3600);
    expect(model.newLink).toEqual({
      id: 'sc_1',
      url: `${ORIGIN}/hub/accept-share?code=secret-sc_1`,
      expiresAt: new Date(NOW + 3600 * 1000).toISOString()
    });
    expect(model.listing?.codes.map(code => code.id)).toEqual(['sc_1']);
    expect(model.listing?.codes[0]).not.toHaveProperty('accept_url');

    await model.createLink(86400);
    await model.revokeLink('sc_1');
    expect(model.newLink?.id).toBe('sc_2');
    await model.revokeLink(null);
    expect(model.newLink).toBeNull();
    expect(model.listing?.codes).toEqual([]);
    expect(api.calls.filter(call => call !== 'list')).toEqual([
      'link 3600',
      'link 86400',
      'revoke link sc_1',
      'revoke links'
    ]);
  });

  it("keeps a failed action's message in error", async () => {
    const api = new SharingStub();
    api.revoke = () => Promise.reject(new Error('The hub cannot be reached'));
    const model = shareModel(api);
    await model.revoke(null);
    expect(model.error).toBe('The hub cannot be reached');
    await model.createLink(3600);
    expect(model.error).toBeNull();
  });
});

describe('SharedWithMeModel', () => {
  afterEach(() => jest.useRealTimers());

  it('lists, leaves, and reads again every interval', async () => {
    jest.useFakeTimers();
    const api = new SharingStub();
    api.sharedServers = [
      { owner: 'alice', name: 'together', url: '/user/alice/together/', ready: true, through: null }
    ];
    const model = new SharedWithMeModel({ api, interval: 1000 });
    await model.start();
    expect(model.servers.map(s => s.name)).toEqual(['together']);

    api.sharedServers.push({
      owner: 'carol',
      name: '',
      url: '/user/carol/',
      ready: false,
      through: 'gpu-users'
    });
    await jest.advanceTimersByTimeAsync(1000);
    expect(model.servers.map(s => s.owner)).toEqual(['alice', 'carol']);

    await model.leave({ owner: 'alice', name: 'together' });
    expect(model.servers.map(s => s.owner)).toEqual(['carol']);
    model.dispose();
    const calls = api.calls.length;
    await jest.advanceTimersByTimeAsync(5000);
    expect(api.calls.length).toBe(calls);
  });

  it("is empty where the server does not answer (a guest's tab)", async () => {
    const api = new SharingStub();
    api.sharedWithMe = () => Promise.reject(new Error('only alice sees what is shared with them'));
    const model = new SharedWithMeModel({ api });
    await model.refresh();
    expect(model.servers).toEqual([]);
    model.dispose();
  });
});

describe('CollaboratorsModel', () => {
  it('follows the awareness, emitting only on a visible change', () => {
    const awareness = new AwarenessStub();
    awareness.states.set(1, person('alice', 'notebook:a.ipynb'));
    let me: string | null = null;
    const model = new CollaboratorsModel(awareness, () => me);
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    expect(model.collaborators.map(p => p.username)).toEqual(['alice']);

    awareness.set(2, person('bob', 'notebook:a.ipynb'));
    expect(model.collaborators.map(p => [p.username, p.current])).toEqual([
      ['alice', 'a.ipynb'],
      ['bob', 'a.ipynb']
    ]);
    expect(changes).toBe(1);
    // The same state again (a heartbeat): nothing to re-render.
    awareness.set(2, person('bob', 'notebook:a.ipynb'));
    expect(changes).toBe(1);

    me = 'bob';
    model.update();
    expect(model.collaborators.map(p => [p.username, p.isMe])).toEqual([
      ['bob', true],
      ['alice', false]
    ]);
    awareness.set(2, null);
    expect(model.collaborators.map(p => p.username)).toEqual(['alice']);

    model.dispose();
    expect(awareness.listeners).toBe(0);
  });
});

/**
 * @jest-environment node
 */
import { ServerConnection } from '@jupyterlab/services';

import { makeSharingAPI } from '../api';
import { UNKNOWN_USER } from './fixtures';

interface ICall {
  url: string;
  method: string;
  body: string;
}

function recordingSettings(
  calls: ICall[],
  answer: () => Response = () => new Response(null, { status: 204 })
): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8000/user/alice/together/',
    fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      // ServerConnection adds a cache-busting timestamp to GETs and to URLs with a query.
      const url = request.url.replace(/[?&]\d{10,}$/, '');
      calls.push({ url, method: request.method, body: await request.text() });
      return answer();
    }
  });
}

const BASE = 'http://localhost:8000/user/alice/together/sciencelab/api';

describe('makeSharingAPI', () => {
  it('calls the routes of the server extension with the bodies and queries it takes', async () => {
    const calls: ICall[] = [];
    const api = makeSharingAPI(recordingSettings(calls));

    await api.share('user', 'bob');
    await api.share('group', 'gpu users');
    await api.revoke({ kind: 'group', name: 'gpu users' });
    await api.revoke(null);
    await api.createLink(3600);
    await api.revokeLink('sc_4');
    await api.revokeLink(null);
    await api.leave('carol', '');
    await api.leave('dave', 'my server');

    expect(calls).toEqual([
      { url: `${BASE}/shares`, method: 'POST', body: '{"user":"bob"}' },
      { url: `${BASE}/shares`, method: 'POST', body: '{"group":"gpu users"}' },
      { url: `${BASE}/shares?group=gpu+users`, method: 'DELETE', body: '' },
      { url: `${BASE}/shares`, method: 'DELETE', body: '' },
      { url: `${BASE}/share-codes`, method: 'POST', body: '{"expires_in":3600}' },
      { url: `${BASE}/share-codes?id=sc_4`, method: 'DELETE', body: '' },
      { url: `${BASE}/share-codes`, method: 'DELETE', body: '' },
      { url: `${BASE}/shared-with-me?owner=carol&server=`, method: 'DELETE', body: '' },
      { url: `${BASE}/shared-with-me?owner=dave&server=my+server`, method: 'DELETE', body: '' }
    ]);
  });

  it('reads the listings with GET', async () => {
    const calls: ICall[] = [];
    const listing = { collaborative: true, shares: [], codes: [] };
    const api = makeSharingAPI(
      recordingSettings(calls, () => new Response(JSON.stringify(listing)))
    );

    expect(await api.list()).toEqual(listing);
    await api.sharedWithMe();
    expect(calls.map(call => `${call.method} ${call.url}`)).toEqual([
      `GET ${BASE}/shares`,
      `GET ${BASE}/shared-with-me`
    ]);
  });

  it("rejects with the server's message as is", async () => {
    const api = makeSharingAPI(
      recordingSettings(
        [],
        () => new Response(JSON.stringify({ message: UNKNOWN_USER }), { status: 400 })
      )
    );
    await expect(api.share('user', 'nobody')).rejects.toMatchObject({
      message: UNKNOWN_USER,
      status: 400
    });
  });
});

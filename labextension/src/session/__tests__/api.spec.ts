/**
 * @jest-environment node
 */
import { ServerConnection } from '@jupyterlab/services';

import { makeSessionAPI } from '../model';
import { makeTerms } from './fixtures';

describe('makeSessionAPI', () => {
  it('reads the terms with GET and extends with an empty POST', async () => {
    const calls: Array<{ url: string; method: string; body: string }> = [];
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/user/ada/',
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        const request = new Request(input, init);
        // ServerConnection adds a cache-busting query to GETs.
        const url = request.url.split('?')[0];
        calls.push({ url, method: request.method, body: await request.text() });
        return new Response(JSON.stringify(makeTerms()));
      }
    });
    const api = makeSessionAPI(settings);

    expect(await api.get()).toEqual(makeTerms());
    await api.extend();
    expect(calls).toEqual([
      { url: 'http://localhost:8888/user/ada/sciencelab/api/session', method: 'GET', body: '' },
      { url: 'http://localhost:8888/user/ada/sciencelab/api/session', method: 'POST', body: '{}' }
    ]);
  });

  it("rejects with the hub's reason on 409", async () => {
    const reason = 'The session cannot be extended past 20:00, the limit of profile cpu.';
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: () =>
        Promise.resolve(new Response(JSON.stringify({ message: reason }), { status: 409 }))
    });

    await expect(makeSessionAPI(settings).extend()).rejects.toMatchObject({
      message: reason,
      status: 409
    });
  });
});

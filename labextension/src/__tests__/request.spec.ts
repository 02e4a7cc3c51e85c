/**
 * @jest-environment node
 */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI, SciencelabRequestError } from '../request';

const BASE_URL = 'http://localhost:8888/user/ada/';

/**
 * Settings whose fetch answers every request with `response` and records the URL asked for.
 */
function settingsAnswering(response: Response | Error): {
  settings: ServerConnection.ISettings;
  requestedUrls: string[];
} {
  const requestedUrls: string[] = [];
  const fetch = async (input: RequestInfo | URL): Promise<Response> => {
    requestedUrls.push(input instanceof Request ? input.url : String(input));
    if (response instanceof Error) {
      throw response;
    }
    return response;
  };
  return {
    settings: ServerConnection.makeSettings({ baseUrl: BASE_URL, fetch }),
    requestedUrls
  };
}

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}

describe('requestAPI', () => {
  it('returns the decoded body from <baseUrl>/sciencelab/api/<endPoint>', async () => {
    const info = {
      version: '0.1.0',
      profile: { slug: 'small', display_name: 'Small - 1 CPU, 2 GB' },
      features: { dask_clusters: false, gpu_monitor: false, session_sharing: false }
    };
    const { settings, requestedUrls } = settingsAnswering(jsonResponse(info));

    await expect(requestAPI('info', {}, settings)).resolves.toEqual(info);
    expect(requestedUrls).toHaveLength(1);
    expect(requestedUrls[0]).toMatch(
      /^http:\/\/localhost:8888\/user\/ada\/sciencelab\/api\/info(\?|$)/
    );
  });

  it("raises the server's message and status on an error response", async () => {
    const { settings } = settingsAnswering(
      jsonResponse({ message: 'Profile "huge" is not offered on this hub' }, 500)
    );

    const error = await requestAPI('info', {}, settings).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SciencelabRequestError);
    expect((error as SciencelabRequestError).status).toBe(500);
    expect((error as SciencelabRequestError).message).toBe(
      'Profile "huge" is not offered on this hub'
    );
  });

  it('keeps the rest of the error body, such as the field of a refused option', async () => {
    const body = {
      message: 'workers: 9 is out of bounds; choose 0 to 4 workers',
      field: 'workers',
      value: 9
    };
    const { settings } = settingsAnswering(jsonResponse(body, 400));

    const error = (await requestAPI('dask/clusters', { method: 'POST' }, settings).catch(
      (e: unknown) => e
    )) as SciencelabRequestError;
    expect([error.status, error.message, error.details]).toEqual([400, body.message, body]);
  });

  it('returns nothing for 204 No Content', async () => {
    const { settings } = settingsAnswering(new Response(null, { status: 204 }));

    await expect(
      requestAPI('dask/clusters/abc', { method: 'DELETE' }, settings)
    ).resolves.toBeUndefined();
  });

  it('explains a 404 without a message as a missing server extension', async () => {
    const { settings } = settingsAnswering(new Response('<html>Not Found</html>', { status: 404 }));

    const error = await requestAPI('info', {}, settings).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SciencelabRequestError);
    expect((error as SciencelabRequestError).status).toBe(404);
    expect((error as SciencelabRequestError).message).toContain('server extension');
    expect((error as SciencelabRequestError).message).not.toMatch(/^Error 404/);
  });

  it('reports an unreachable server with status 0', async () => {
    const { settings } = settingsAnswering(new TypeError('Failed to fetch'));

    const error = await requestAPI('info', {}, settings).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SciencelabRequestError);
    expect((error as SciencelabRequestError).status).toBe(0);
    expect((error as SciencelabRequestError).message).toContain('Failed to fetch');
  });

  it('refuses a successful response whose body is not JSON', async () => {
    const { settings } = settingsAnswering(new Response('<html>login</html>', { status: 200 }));

    await expect(requestAPI('info', {}, settings)).rejects.toThrow('not JSON');
  });
});

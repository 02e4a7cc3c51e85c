import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * A failed call to the ScienceLab server extension.
 *
 * `message` is meant for people: it is the server's own `message` when it sent one, otherwise a
 * sentence saying what failed and what to check.
 */
export class SciencelabRequestError extends Error {
  /**
   * @param message - What went wrong, shown as is in the UI.
   * @param status - HTTP status of the response, `0` when the server could not be reached.
   * @param url - The URL that was requested.
   * @param details - The rest of the server's JSON error body, e.g. the `field` and `value` of a
   *   refused option.
   */
  constructor(
    message: string,
    readonly status: number,
    readonly url: string,
    readonly details: Readonly<Record<string, unknown>> = {}
  ) {
    super(message);
    this.name = 'SciencelabRequestError';
  }
}

/**
 * Call the ScienceLab server extension and return the decoded JSON body.
 *
 * @param endPoint - Path below `<baseUrl>/sciencelab/api/`, e.g. `info`.
 * @param init - Request options, e.g. `{ method: 'POST', body: JSON.stringify(...) }`.
 * @param settings - Server connection settings; the page's settings by default.
 * @returns The decoded body; `undefined` for 204 No Content.
 * @throws {SciencelabRequestError} when the server cannot be reached, answers with an error
 *   status, or answers with a body that is not JSON.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'sciencelab', 'api', endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SciencelabRequestError(
      `Could not reach the Jupyter server at ${url}: ${reason}. Check that the server is still running.`,
      0,
      url
    );
  }

  const text = await response.text();
  let body: unknown = undefined;
  let isJSON = false;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
      isJSON = true;
    } catch {
      // Not JSON (an HTML error page from a proxy, for example): handled below.
    }
  }

  if (!response.ok) {
    throw new SciencelabRequestError(
      serverMessage(body) ?? describeFailure(response, url),
      response.status,
      url,
      typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {}
    );
  }
  if (response.status === 204) {
    // No Content (e.g. a DELETE): nothing to decode.
    return undefined as T;
  }
  if (!isJSON) {
    throw new SciencelabRequestError(
      `The ScienceLab server extension answered ${url} with a body that is not JSON ` +
        `(${response.status} ${response.statusText}, ${text.length} characters).`,
      response.status,
      url
    );
  }
  return body as T;
}

/**
 * The `message` field of a JSON error body, if there is a non-empty one.
 */
function serverMessage(body: unknown): string | null {
  if (typeof body === 'object' && body !== null && 'message' in body) {
    const { message } = body;
    if (typeof message === 'string' && message.length > 0) {
      return message;
    }
  }
  return null;
}

/**
 * A sentence for an error response that carried no message of its own.
 */
function describeFailure(response: Response, url: string): string {
  const status = `${response.status} ${response.statusText}`.trim();
  if (response.status === 404) {
    return (
      `The ScienceLab server extension is not answering at ${url} (${status}). ` +
      'Check that it is installed and enabled: `jupyter server extension list` should list sciencelab.'
    );
  }
  if (response.status === 401 || response.status === 403) {
    return `The Jupyter server refused the request to ${url} (${status}). Log in again and reload the page.`;
  }
  return `The ScienceLab server extension failed to answer ${url} (${status}) and gave no reason; see the Jupyter server log.`;
}

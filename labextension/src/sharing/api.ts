import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from '../request';
import { INewShareCode, IShare, IShareListing, ISharedWithMe } from '../tokens';

/**
 * The sharing API of the ScienceLab server extension (`<baseUrl>/sciencelab/api/shares`,
 * `share-codes` and `shared-with-me`), which relays to JupyterHub's. Every method rejects with a
 * `SciencelabRequestError` carrying the server's message (403 for a guest or a server without
 * collaboration, 400 for a user or group the hub does not know).
 */
export interface ISharingAPI {
  /**
   * Who has access, and the open share links.
   */
  list(): Promise<IShareListing>;

  /**
   * Share with one user or one group.
   */
  share(kind: IShare['kind'], name: string): Promise<IShare>;

  /**
   * Take one user's or group's access away, or everyone's (`null`).
   */
  revoke(grantee: Pick<IShare, 'kind' | 'name'> | null): Promise<void>;

  /**
   * A new share link valid for `expiresIn` seconds (60 to 31536000).
   */
  createLink(expiresIn: number): Promise<INewShareCode>;

  /**
   * Revoke one share link, or all of them (`null`).
   */
  revokeLink(id: string | null): Promise<void>;

  /**
   * The servers others shared with this server's owner.
   */
  sharedWithMe(): Promise<ISharedWithMe>;

  /**
   * Stop using `owner`'s server `name` (empty for the default server).
   */
  leave(owner: string, name: string): Promise<void>;
}

/**
 * The sharing API of the server at `serverSettings` (the page's by default).
 */
export function makeSharingAPI(
  serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
): ISharingAPI {
  const call = <T>(endPoint: string, init: RequestInit = {}): Promise<T> =>
    requestAPI<T>(endPoint, init, serverSettings);
  const json = (method: string, body: unknown): RequestInit => ({
    method,
    body: JSON.stringify(body)
  });
  return {
    list: () => call<IShareListing>('shares'),
    share: (kind, name) => call<IShare>('shares', json('POST', { [kind]: name })),
    revoke: grantee =>
      call<void>(grantee ? `shares?${query({ [grantee.kind]: grantee.name })}` : 'shares', {
        method: 'DELETE'
      }),
    createLink: expiresIn =>
      call<INewShareCode>('share-codes', json('POST', { expires_in: expiresIn })),
    revokeLink: id =>
      call<void>(id ? `share-codes?${query({ id })}` : 'share-codes', { method: 'DELETE' }),
    sharedWithMe: () => call<ISharedWithMe>('shared-with-me'),
    leave: (owner, name) =>
      call<void>(`shared-with-me?${query({ owner, server: name })}`, { method: 'DELETE' })
  };
}

function query(parameters: Record<string, string>): string {
  return new URLSearchParams(parameters).toString();
}

// oidc-provider's storage adapter for the test provider: sessions, grants and tokens live in one JSON file, so
// a provider stopped and started again (a test's "provider down") still knows the refresh tokens it issued, as
// a real identity provider would. Clients are read from their own file on every lookup, so the fixture can add
// one while the provider runs. Writes are whole-file and synchronous: a test provider holds a few dozen entries.
// The interface: https://github.com/panva/node-oidc-provider/blob/v9.x/example/my_adapter.js
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

// The models whose entries belong to a grant, and go when it is revoked (as in oidc-provider's memory adapter).
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest'
]);

/** The JSON in `path`, or `fallback` when there is no such file. */
export function readJson(path, fallback) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    if (error.code === 'ENOENT') {
      return fallback;
    }
    throw error;
  }
}

/** An adapter class keeping its entries in `statePath`; `findClient(id)` gives a client's metadata. */
export function fileAdapter(statePath, findClient) {
  // key "Model:id" -> { payload, expiresAt (ms since the epoch, or null for never) }
  const entries = readJson(statePath, {});
  const live = entry => entry && (entry.expiresAt === null || entry.expiresAt > Date.now());
  const save = () => {
    for (const [key, entry] of Object.entries(entries)) {
      if (!live(entry)) {
        delete entries[key];
      }
    }
    writeFileSync(`${statePath}.new`, JSON.stringify(entries));
    renameSync(`${statePath}.new`, statePath);
  };

  return class FileAdapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    findWhere(matches) {
      const prefix = `${this.model}:`;
      const found = Object.entries(entries).find(
        ([key, entry]) => key.startsWith(prefix) && live(entry) && matches(entry.payload)
      );
      return found?.[1].payload;
    }

    async find(id) {
      if (this.model === 'Client') {
        return findClient(id);
      }
      const entry = entries[this.key(id)];
      return live(entry) ? entry.payload : undefined;
    }

    async findByUid(uid) {
      return this.findWhere(payload => payload.uid === uid);
    }

    async findByUserCode(userCode) {
      return this.findWhere(payload => payload.userCode === userCode);
    }

    async upsert(id, payload, expiresIn) {
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null;
      entries[this.key(id)] = { payload, expiresAt };
      save();
    }

    async consume(id) {
      entries[this.key(id)].payload.consumed = Math.floor(Date.now() / 1000);
      save();
    }

    async destroy(id) {
      delete entries[this.key(id)];
      save();
    }

    async revokeByGrantId(grantId) {
      for (const [key, entry] of Object.entries(entries)) {
        if (GRANTABLE.has(key.split(':')[0]) && entry.payload.grantId === grantId) {
          delete entries[key];
        }
      }
      save();
    }
  };
}

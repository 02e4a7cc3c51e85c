// A real OpenID Connect provider for ScienceLab's login tests: panva's oidc-provider on 127.0.0.1, with a
// username and password form, consent granted without asking, and claims shaped like INDIGO-IAM's.
// Usage: node provider.mjs CONFIG.json, CONFIG holding { port, users, clients, state_dir, access_token_ttl }
// (written by tests/oidc/provider.py, which documents the files). Plain http: the issuer is on loopback.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Provider from 'oidc-provider';

import { fileAdapter, readJson } from './file_adapter.mjs';

const config = readJson(process.argv[2]);
const issuer = `http://127.0.0.1:${config.port}`;

// Users are read again on every lookup, so a test can change a user's groups while the provider runs.
const readUsers = () => readJson(config.users, []);
const readClients = () => readJson(config.clients, []);
// A stable subject that is not the username, as with INDIGO-IAM's UUIDs, unless the user names one.
const subjectOf = user =>
  user.sub ??
  createHash('sha256').update(`sciencelab-test:${user.username}`).digest('hex').slice(0, 32);

// Like INDIGO-IAM, a claim whose list would be empty is left out.
function claimsOf(user) {
  const claims = { sub: subjectOf(user), preferred_username: user.username };
  if (user.email) {
    Object.assign(claims, { email: user.email, email_verified: true });
  }
  for (const name of ['groups', 'wlcg.groups']) {
    if (user[name]?.length) {
      claims[name] = user[name];
    }
  }
  return claims;
}

function findClient(clientId) {
  const client = readClients().find(entry => entry.client_id === clientId);
  return (
    client && {
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // client_secret_post is accepted too: oidc-provider takes either form of the secret for these two methods.
      token_endpoint_auth_method: 'client_secret_basic'
    }
  );
}

// The signing key and cookie keys outlive a restart, so tokens and sessions issued before stay valid.
const secretsPath = join(config.state_dir, 'secrets.json');
const secrets = readJson(secretsPath, null) ?? {
  jwk: {
    ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
    kid: 'test'
  },
  cookieKey: randomBytes(32).toString('hex')
};
writeFileSync(secretsPath, JSON.stringify(secrets), { mode: 0o600 });

const provider = new Provider(issuer, {
  adapter: fileAdapter(join(config.state_dir, 'state.json'), findClient),
  async findAccount(ctx, sub) {
    const user = readUsers().find(entry => subjectOf(entry) === sub);
    return user && { accountId: sub, claims: () => claimsOf(user) };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'groups'],
    'wlcg.groups': ['wlcg.groups']
  },
  // Scope-requested claims in the id_token too, not only from userinfo, as INDIGO-IAM and Keycloak do.
  conformIdTokenClaims: false,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Seconds. Short access tokens per client (`access_token_ttl` in clients.json) let tests see them expire.
  ttl: {
    AccessToken: (ctx, token, client) =>
      readClients().find(entry => entry.client_id === client.clientId)?.access_token_ttl ??
      config.access_token_ttl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600
  },
  jwks: { keys: [secrets.jwk] },
  // Names of our own: the hub under test shares the host 127.0.0.1, and cookies do not tell ports apart.
  cookies: {
    keys: [secrets.cookieKey],
    names: {
      session: 'test_idp_session',
      interaction: 'test_idp_interaction',
      resume: 'test_idp_resume'
    }
  },
  responseTypes: ['code'],
  features: { devInteractions: { enabled: false } }
});

const escapeHtml = text => String(text).replace(/[&<>"']/g, char => `&#${char.charCodeAt(0)};`);

// No Content-Security-Policy: Chromium applies a form-action directive to the redirects after the POST as well.
const loginPage = (uid, username = '', error = '') => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in to the test identity provider</title></head>
<body><h1>Sign in to the test identity provider</h1>
${error && `<p id="error" role="alert">${escapeHtml(error)}</p>`}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Username <input id="username" name="username" autocomplete="username" value="${escapeHtml(username)}" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button id="sign-in" type="submit">Sign in</button>
</form></body></html>`;

async function formOf(request) {
  const chunks = [];
  for await (const chunk of request) {
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

// Consent is granted at once, to whatever the client asked for: the tests' client is the platform itself.
async function grantConsent({ prompt, params, session, grantId }) {
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes = {} } = prompt.details;
  if (missingOIDCScope) {
    grant.addOIDCScope(missingOIDCScope.join(' '));
  }
  if (missingOIDCClaims) {
    grant.addOIDCClaims(missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

async function interact(ctx, uid, action) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (details.prompt.name === 'consent') {
    result = await grantConsent(details);
  } else if (action === 'login' && ctx.method === 'POST') {
    const form = await formOf(ctx.req);
    const user = readUsers().find(entry => entry.username === form.get('username'));
    if (user?.password === form.get('password')) {
      result = { login: { accountId: subjectOf(user) } };
    } else {
      ctx.body = loginPage(uid, form.get('username') ?? '', 'Wrong username or password.');
      return;
    }
  } else {
    ctx.body = loginPage(uid);
    return;
  }
  ctx.status = 303;
  ctx.redirect(
    await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false })
  );
}

provider.use(async (ctx, next) => {
  const started = Date.now();
  let outcome;
  try {
    const match = ctx.path.match(/^\/interaction\/([\w-]+)(?:\/(login))?$/);
    await (match ? interact(ctx, match[1], match[2]) : next());
    outcome = ctx.status;
  } catch (error) {
    // Koa answers it after this middleware: an interaction without its cookie, say.
    outcome = `${error.status ?? 500} ${error.message} ${error.error_description ?? ''}`;
    throw error;
  } finally {
    // Without the query: it holds codes and states.
    console.log(`${ctx.method} ${ctx.path} ${outcome} ${Date.now() - started}ms`);
  }
});
// Why a request failed (wrong secret, expired token) goes to the log; the client only sees the error code.
for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'server_error']) {
  provider.on(event, (ctx, error) =>
    console.log(
      `${event}: ${error.message}: ${error.error_detail ?? error.error_description ?? error.stack}`
    )
  );
}

const server = provider.listen(config.port, '127.0.0.1', () =>
  console.log(`OIDC provider ${issuer} ready`)
);
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});

// The OpenID Connect provider of the oidc tests: panva's oidc-provider (OpenID Certified) with
// static clients, test users whose passwords are checked on a login page of its own, short
// token lifetimes and RP-initiated logout (end_session_endpoint). Started by
// tests/services/oidc.py:
//
//     node provider.mjs <config.json> <path of oidc-provider's lib/index.js>
//
// config.json (written by the test, mode 0600): issuer, port, clients (oidc-provider client
// metadata), users ({login, password, claims: {sub, preferred_username, email, groups...}}),
// ttl (seconds per token kind) and cookie_keys. Secrets come from that file, never argv or env.
// It prints "listening <issuer>" once it accepts connections.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { default: Provider, errors } = await import(pathToFileURL(process.argv[3]).href);

const users = new Map(config.users.map((u) => [u.login, u]));
const bySub = new Map(config.users.map((u) => [u.claims.sub, u]));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><main id="provider-page"><h1>Test university sign-in</h1>${body}</main></body></html>`;
}

function loginPage(uid, clientId, error = '') {
  return page('Sign in', `
<p>Signing in to <b id="client">${escape(clientId)}</b></p>
${error ? `<p id="login-error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label>Login <input id="login" name="login" autofocus></label>
  <label>Password <input id="password" name="password" type="password"></label>
  <button id="sign-in" type="submit">Sign in</button>
</form>`);
}

const provider = new Provider(config.issuer, {
  clients: config.clients,
  cookies: { keys: config.cookie_keys },
  ttl: {
    AuthorizationCode: config.ttl.AuthorizationCode,
    AccessToken: config.ttl.AccessToken,
    IdToken: config.ttl.IdToken,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  // Every client must send a PKCE challenge (S256), confidential ones too.
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  async findAccount(ctx, sub) {
    const user = bySub.get(sub);
    if (!user) return undefined;
    return { accountId: sub, async claims() { return { ...user.claims, sub }; } };
  },
  // The login page below, not devInteractions (which accepts any password).
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // First-party clients: consent is implied, the grant covers what the client asked.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    await grant.save();
    return grant;
  },
});

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
  const send = (status, html) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };
  if (details.prompt.name !== 'login') {
    // consent is granted by loadExistingGrant; any other prompt finishes as it is
    return provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET' && !action) return send(200, loginPage(uid, details.params.client_id));
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const user = users.get(form.get('login') || '');
    if (!user || user.password !== form.get('password')) {
      return send(401, loginPage(uid, details.params.client_id, 'Invalid login or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.claims.sub } },
      { mergeWithLastSubmission: false });
  }
  return send(405, page('Not allowed', '<p>Not allowed</p>'));
}

const oidc = provider.callback();
const server = createServer(async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login))?\/?(?:\?.*)?$/.exec(req.url);
  if (!match) return oidc(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page('Error', `<p id="provider-error">${escape(err.message)}</p>`));
  }
});
server.listen(config.port, '127.0.0.1', () => console.log(`listening ${config.issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));

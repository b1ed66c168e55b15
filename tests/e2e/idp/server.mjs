#!/usr/bin/env node
// A real OpenID Connect provider for agentnet's end-to-end tests: panva's certified
// `oidc-provider`, in memory, on 127.0.0.1.
//
//   node idp/server.mjs [--port N] [--host H] [--audience A] [--users FILE] [--clients FILE]
//
// Prints `issuer http://127.0.0.1:PORT` as its FIRST stdout line once it listens (port 0, the
// default, picks an ephemeral port). Everything else it logs goes to stderr. SIGTERM/SIGINT stop it.
//
// What it issues (see tests/e2e/README.md):
// - device flow (client `agentnet-cli`, public; `agentnet-server`, confidential, which the agentnet
//   server uses to broker `agentnet login`) and auth code + PKCE; the built-in dev interaction
//   forms accept a login of a user's sub, email or local part (passwords are not checked);
// - client credentials (clients `ci-bot`, `nightly-agent`, confidential);
// - access tokens are JWTs (`typ: at+jwt`) for the gateway resource: `aud` = the audience
//   (default `agentnet`), `iss`, `exp`, `client_id`, `scope`; user tokens also carry `email`,
//   `email_verified`, `name` and `groups` (from the users file); client-credentials tokens carry
//   `sub` = client_id plus any `x_token_claims` from the clients file;
// - ID tokens carry email and groups directly (conformIdTokenClaims: false);
// - signing keys (RS256 and ES256) are generated at start and served at /jwks.
//
// Test-only control endpoints (loopback only, no auth): GET /_test/users,
// PUT /_test/users/<sub> (JSON user; changes take effect for tokens issued afterwards),
// GET /_test/health.
//
// Options can also come from the environment: IDP_PORT, IDP_HOST, IDP_AUDIENCE, IDP_RESOURCE,
// IDP_RESOURCE_SCOPE, IDP_USERS, IDP_CLIENTS, IDP_ACCESS_TOKEN_TTL (seconds, default 3600),
// IDP_ACCESS_TOKEN_ALG (RS256 | ES256, default RS256), IDP_DEVICE_INTERVAL (seconds, default 1).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const here = path.dirname(fileURLToPath(import.meta.url));

const { values: args, positionals } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    audience: { type: 'string' },
    resource: { type: 'string' },
    users: { type: 'string' },
    clients: { type: 'string' },
  },
  allowPositionals: true,
});

const env = process.env;
const opt = {
  port: Number(args.port ?? positionals[0] ?? env.IDP_PORT ?? 0),
  host: args.host ?? env.IDP_HOST ?? '127.0.0.1',
  audience: args.audience ?? env.IDP_AUDIENCE ?? 'agentnet',
  resource: args.resource ?? env.IDP_RESOURCE,
  resourceScope: env.IDP_RESOURCE_SCOPE ?? 'gateway',
  usersFile: args.users ?? env.IDP_USERS ?? path.join(here, 'users.json'),
  clientsFile: args.clients ?? env.IDP_CLIENTS ?? path.join(here, 'clients.json'),
  accessTokenTtl: Number(env.IDP_ACCESS_TOKEN_TTL ?? 3600),
  accessTokenAlg: env.IDP_ACCESS_TOKEN_ALG ?? 'RS256',
  deviceInterval: Number(env.IDP_DEVICE_INTERVAL ?? 1),
};

// A resource indicator must be an absolute URI (RFC 8707); the audience need not be. An audience
// that is already a URI (`https://agentnet.corp.example`, `api://agentnet`) is its own indicator.
if (!opt.resource) {
  opt.resource = URL.canParse(opt.audience) ? opt.audience : `urn:${opt.audience}`;
}
if (!['RS256', 'ES256'].includes(opt.accessTokenAlg)) {
  throw new Error(`IDP_ACCESS_TOKEN_ALG must be RS256 or ES256, got ${opt.accessTokenAlg}`);
}

const log = (...parts) => process.stderr.write(`[idp] ${parts.join(' ')}\n`);

// ---- users -------------------------------------------------------------------------------------

const users = new Map(); // sub -> user
for (const u of JSON.parse(readFileSync(opt.usersFile, 'utf8'))) {
  if (!u.sub || !u.email) throw new Error(`user without sub or email in ${opt.usersFile}`);
  users.set(u.sub, { groups: [], ...u });
}

// The dev login form takes any string; accept the sub, the email or the email's local part.
function lookupUser(login) {
  if (users.has(login)) return users.get(login);
  const needle = String(login).toLowerCase();
  for (const u of users.values()) {
    if (u.email.toLowerCase() === needle || u.email.split('@')[0].toLowerCase() === needle) return u;
  }
  return undefined;
}

function userClaims(u) {
  return {
    email: u.email,
    email_verified: true,
    name: u.name ?? u.email,
    groups: [...u.groups],
  };
}

// ---- clients -----------------------------------------------------------------------------------

const clientTokenClaims = new Map(); // client_id -> extra access-token claims
const clients = JSON.parse(readFileSync(opt.clientsFile, 'utf8')).map((c) => {
  const { x_token_claims: extra, ...metadata } = c;
  if (extra) clientTokenClaims.set(c.client_id, extra);
  return metadata;
});

// ---- keys --------------------------------------------------------------------------------------

function jwkPair(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const stamp = Date.now().toString(36);
const jwks = {
  keys: [
    jwkPair('rsa', { modulusLength: 2048 }, `rs256-${stamp}`, 'RS256'),
    jwkPair('ec', { namedCurve: 'P-256' }, `es256-${stamp}`, 'ES256'),
  ],
};

// ---- provider ----------------------------------------------------------------------------------

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(opt.port, opt.host, resolve);
});
const { port } = server.address();
const hostForUrl = opt.host.includes(':') ? `[${opt.host}]` : opt.host;
const issuer = `http://${hostForUrl}:${port}`;

const resourceServer = {
  scope: opt.resourceScope,
  audience: opt.audience,
  accessTokenTTL: opt.accessTokenTtl,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: opt.accessTokenAlg } },
};

const provider = new Provider(issuer, {
  clients,
  jwks,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  findAccount(ctx, sub) {
    const u = lookupUser(sub);
    if (!u) return undefined;
    return {
      accountId: u.sub,
      async claims() {
        return { sub: u.sub, ...userClaims(users.get(u.sub) ?? u) };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter: the gateway is the resource (CLIs that don't send one still get
      // gateway-usable tokens, as with an Okta/Entra default audience).
      defaultResource: () => opt.resource,
      // Refresh and code exchanges reuse the granted resource, so tokens stay JWTs for the gateway.
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        if (indicator === opt.resource || indicator === opt.audience) return resourceServer;
        throw new Provider.errors.InvalidTarget(`unknown resource ${indicator}`);
      },
    },
  },
  async extraTokenClaims(ctx, token) {
    if (token.accountId) {
      const u = lookupUser(token.accountId);
      return u ? userClaims(u) : undefined;
    }
    if (token.kind === 'ClientCredentials') {
      return clientTokenClaims.get(token.clientId);
    }
    return undefined;
  },
  ttl: {
    AccessToken: opt.accessTokenTtl,
    ClientCredentials: opt.accessTokenTtl,
    AuthorizationCode: 60,
    DeviceCode: 600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
    RefreshToken: 86400,
  },
  // The defaults print each rendered form's debug data; keep error pages short.
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>oops</title></head><body><pre>${
      Object.entries(out).map(([k, v]) => `${k}: ${String(v).replace(/[<>&]/g, '')}`).join('\n')
    }</pre></body></html>`;
  },
});

// Request log to stderr.
provider.use(async (ctx, next) => {
  const started = Date.now();
  await next();
  log(ctx.method, ctx.path, ctx.status, `${Date.now() - started}ms`);
});

// The stock HTML pages import a web font from the internet; tests (and headless browsers in them)
// talk only to 127.0.0.1, so strip it.
provider.use(async (ctx, next) => {
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body.replace(/@import url\(https?:[^)]*\);?/g, '');
  }
});

// RFC 8628's default 5 s poll interval slows every test: rewrite it.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, interval: opt.deviceInterval };
  }
});

// The dev login form ignores passwords and takes the typed login as the account id. Check the
// password and put the user's canonical sub in its place (an email typed at login must become the
// same account as the sub), then hand the already-read body on (oidc-provider reads req.body).
provider.use(async (ctx, next) => {
  if (ctx.method !== 'POST' || !/^\/interaction\/[^/]+$/.test(ctx.path) || !ctx.is('application/x-www-form-urlencoded')) {
    return next();
  }
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  if (form.get('prompt') === 'login') {
    const u = lookupUser(form.get('login') ?? '');
    if (!u || (u.password !== undefined && u.password !== form.get('password'))) {
      log('login rejected for', JSON.stringify(form.get('login')));
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = '<!DOCTYPE html><html><head><title>Sign-in failed</title></head><body><p>invalid login or password</p></body></html>';
      return undefined;
    }
    form.set('login', u.sub);
  }
  ctx.req.body = form.toString();
  return next();
});

// Test control endpoints.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/_test/')) return next();
  if (ctx.path === '/_test/health') {
    ctx.body = { ok: true, issuer, audience: opt.audience, resource: opt.resource };
    return undefined;
  }
  if (ctx.path === '/_test/users' && ctx.method === 'GET') {
    ctx.body = [...users.values()].map(({ password, ...u }) => u);
    return undefined;
  }
  const m = ctx.path.match(/^\/_test\/users\/([^/]+)$/);
  if (m && ctx.method === 'PUT') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const u = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const sub = decodeURIComponent(m[1]);
    if (!u.email) ctx.throw(400, 'email required');
    users.set(sub, { groups: [], ...u, sub });
    ctx.status = 204;
    return undefined;
  }
  ctx.status = 404;
  return undefined;
});

provider.on('server_error', (ctx, err) => log('server_error', ctx.path, err.stack ?? err));

server.on('request', provider.callback());

process.stdout.write(`issuer ${issuer}\n`);
log(`audience ${opt.audience} resource ${opt.resource} access-token alg ${opt.accessTokenAlg} ttl ${opt.accessTokenTtl}s`);

function stop(signal) {
  log(`${signal}: stopping`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

// A standards-compliant OAuth 2.0 / OpenID Connect authorization server for
// the tests of the generic OAuth 2.0 flows: panva's oidc-provider (certified
// by the OpenID Foundation), configured as a strict provider would be.
//
//   node server.mjs --port <port> --config <file.json>
//
// The issuer is http://127.0.0.1:<port>. The JSON configuration file holds:
//
//   clients                   [{client_id, client_secret, redirect_uris,
//                              token_endpoint_auth_method, grant_types, scope?}]
//   accounts                  [{id, password, name, email}]
//   access_token_ttl_secs     lifetime of access tokens (default 3600)
//   refresh_token_ttl_secs    lifetime of refresh tokens (default 86400)
//
// What the server does, and what it enforces:
//
// - the authorization code flow, PKCE required with S256 for every client;
// - refresh tokens for grants with `offline_access` (asked for with
//   `prompt=consent`, as OpenID Connect wants), rotated at every use; a
//   rotated refresh token presented again is refused and revokes the
//   whole grant (reuse detection);
// - client authentication exactly as each client is registered: a
//   `client_secret_basic` client must use HTTP Basic and a
//   `client_secret_post` client body parameters, at the token, revocation
//   and introspection endpoints (oidc-provider accepts either by default);
// - RFC 7009 revocation (revoking either token of a grant revokes the
//   whole grant), RFC 7662 introspection, the client credentials grant,
//   and the OpenID Connect userinfo endpoint;
// - token endpoint bodies only as application/x-www-form-urlencoded, as
//   RFC 6749 says (a JSON body is refused).
// - a protected resource of client credentials tokens, as an API beside the
//   server would be: `GET /api/client` with `Authorization: Bearer <token>`
//   answers `{"id": <client id>, "scope": ...}` for a live client
//   credentials token and 401 with `WWW-Authenticate: Bearer
//   error="invalid_token"` for any other.
//
// Login and consent: `GET /interaction/<uid>` shows which prompt is open
// (a small HTML page naming it in a `data-prompt` attribute);
// `POST /interaction/<uid>/login` with `login` and `password` (form) logs an
// account in, `POST /interaction/<uid>/confirm` grants what the client asked
// for, `POST /interaction/<uid>/abort` declines. A test drives them with
// plain HTTP requests and the cookies the server sets.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

/** Request bodies larger than this are refused (oidc-provider's own limit). */
const MAX_BODY_BYTES = 56 * 1024;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    config: { type: 'string' },
  },
});
if (!args.port || !args.config) {
  console.error('usage: node server.mjs --port <port> --config <file.json>');
  process.exit(2);
}
const port = Number.parseInt(args.port, 10);
const config = JSON.parse(readFileSync(args.config, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;

const accounts = new Map((config.accounts ?? []).map((account) => [account.id, account]));
const clients = (config.clients ?? []).map((client) => ({
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  ...client,
}));
const authMethods = new Map(clients.map((client) => [client.client_id, client.token_endpoint_auth_method]));

const provider = new Provider(issuer, {
  clients,
  // Signs ID tokens; generated at start, as nothing outlives the process.
  jwks: { keys: [generateSigningKey()] },
  cookies: { keys: [randomKey()] },
  findAccount: (_ctx, id) => {
    const account = accounts.get(id);
    if (!account) {
      return undefined;
    }
    return {
      accountId: id,
      claims: () => ({ sub: id, name: account.name, email: account.email }),
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'read'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  // Expired is expired: no grace period after a token's `exp` (the default
  // tolerates 15 s of clock skew, which would keep short-lived test tokens
  // alive that long).
  clockTolerance: 0,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: config.access_token_ttl_secs ?? 3600,
    AuthorizationCode: 60,
    ClientCredentials: config.access_token_ttl_secs ?? 3600,
    Grant: 86400,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: config.refresh_token_ttl_secs ?? 86400,
    Session: 86400,
  },
});
provider.on('server_error', (_ctx, error) => console.error('server_error', error));

const handle = provider.callback();

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/interaction/')) {
      await interaction(req, res, url);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/client') {
      await clientResource(req, res);
      return;
    }
    if (req.method === 'POST' && ['/token', '/token/revocation', '/token/introspection'].includes(url.pathname)) {
      req.body = await readBody(req);
      const refusal = clientAuthRefusal(req);
      if (refusal) {
        json(res, 401, { error: 'invalid_client', error_description: refusal });
        return;
      }
    }
    handle(req, res);
  } catch (error) {
    console.error(error);
    if (!res.headersSent) {
      json(res, 500, { error: 'server_error', error_description: 'the test server failed' });
    }
  }
});
/** The protected resource of client credentials tokens (see the top). */
async function clientResource(req, res) {
  const header = req.headers.authorization ?? '';
  const value = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  const token = value ? await provider.ClientCredentials.find(value) : undefined;
  if (!token || token.isExpired) {
    res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
    json(res, 401, { error: 'invalid_token', error_description: 'the access token is not a live client credentials token' });
    return;
  }
  json(res, 200, { id: token.clientId, scope: token.scope ?? '' });
}

server.listen(port, '127.0.0.1', () => console.log(`oauth-server listening on ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

/**
 * Why a token endpoint request authenticates its client other than the
 * client is registered to (`client_secret_basic` or `client_secret_post`),
 * or undefined. Clients of other methods are left to oidc-provider.
 */
function clientAuthRefusal(req) {
  const basic = /^basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  const form = new URLSearchParams(typeof req.body === 'string' ? req.body : '');
  let clientId;
  let used;
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      return 'the Basic credentials hold no client secret';
    }
    clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    used = 'client_secret_basic';
  } else if (form.has('client_secret')) {
    clientId = form.get('client_id');
    used = 'client_secret_post';
  } else {
    return undefined;
  }
  const registered = authMethods.get(clientId);
  if (registered && ['client_secret_basic', 'client_secret_post'].includes(registered) && registered !== used) {
    return `client ${clientId} is registered for ${registered}, not ${used}`;
  }
  if (basic && form.has('client_secret')) {
    return 'client authentication must only be provided using one mechanism';
  }
  return undefined;
}

async function interaction(req, res, url) {
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    json(res, 400, { error: 'invalid_request', error_description: 'interaction mismatch' });
    return;
  }
  if (req.method === 'GET' && action === undefined) {
    html(res, details);
    return;
  }
  if (req.method !== 'POST') {
    json(res, 405, { error: 'invalid_request', error_description: 'POST the interaction forms' });
    return;
  }
  const form = new URLSearchParams(await readBody(req));
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'login' && details.prompt.name === 'login') {
    const account = accounts.get(form.get('login') ?? '');
    if (!account || account.password !== form.get('password')) {
      json(res, 401, { error: 'access_denied', error_description: 'wrong login or password' });
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.id } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (action === 'confirm' && details.prompt.name === 'consent') {
    await provider.interactionFinished(req, res, { consent: { grantId: await grantFor(details) } }, {
      mergeWithLastSubmission: true,
    });
    return;
  }
  json(res, 400, { error: 'invalid_request', error_description: `no ${action} in prompt ${details.prompt.name}` });
}

/** The grant of the consent `details` ask for, with what is missing added. */
async function grantFor(details) {
  const { prompt: { details: missing }, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

function html(res, details) {
  const prompt = details.prompt.name;
  const fields = prompt === 'login'
    ? '<input name="login"><input name="password" type="password"><button>Log in</button>'
    : '<button>Allow</button>';
  const action = prompt === 'login' ? 'login' : 'confirm';
  const body = `<!doctype html><title>${prompt}</title>
<main data-prompt="${prompt}"><form method="post" action="/interaction/${details.uid}/${action}">${fields}</form>
<form method="post" action="/interaction/${details.uid}/abort"><button>Cancel</button></form></main>`;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  let received = 0;
  for await (const chunk of req) {
    received += chunk.length;
    if (received > MAX_BODY_BYTES) {
      throw new Error('request entity too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function generateSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig' };
}

function randomKey() {
  return randomBytes(32).toString('base64url');
}

// An OpenID Connect identity provider for the tests: panva's oidc-provider (OpenID
// Certified, npm), configured as a Servicekonto would be — the portal as a confidential
// client, the eIDAS levels as acr values, amr for the means of identification, name,
// birth date and address as claims — with a minimal interaction page on which the test
// (or a browser) picks the test identity, the level and the means.
//
//   node tests/oidc/provider.mjs <config.json>
//
// config.json: { "port" (optional; 0 or none: the system picks a free one), "client_id", "client_secret", "redirect_uris",
//   "post_logout_redirect_uris", "id_token_ttl_secs" (optional) }
// Prints `READY <issuer>` once it listens. Stops on SIGTERM.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const LEVELS = [
  { acr: 'http://eidas.europa.eu/LoA/low', amr: 'pwd', label: 'niedrig – Benutzername und Passwort' },
  { acr: 'http://eidas.europa.eu/LoA/substantial', amr: 'swk', label: 'substanziell – ELSTER-Zertifikat' },
  { acr: 'http://eidas.europa.eu/LoA/high', amr: 'hwk', label: 'hoch – Online-Ausweisfunktion' },
];

// Test identities; the subject is a pseudonym, never a name.
const PEOPLE = {
  'pseudonym-erika-7f3a': {
    label: 'Erika Mustermann',
    given_name: 'Erika',
    family_name: 'Mustermann',
    birthdate: '1964-08-12',
    address: {
      street_address: 'Königsbrücker Straße 12',
      postal_code: '01099',
      locality: 'Dresden',
      country: 'DE',
    },
  },
  'pseudonym-max-2b91': {
    label: 'Max Beispielmann',
    given_name: 'Max',
    family_name: 'Beispielmann',
    birthdate: '1990-01-31',
    address: {
      street_address: 'Am Markt 1',
      postal_code: '04109',
      locality: 'Leipzig',
      country: 'DE',
    },
  },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-1', use: 'sig', alg: 'RS256' };

// The issuer names the port, so the provider is made once the server listens: a port
// picked in advance may be taken by another test's connection before it is bound.
const makeProvider = (issuer) => new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: config.redirect_uris,
    post_logout_redirect_uris: config.post_logout_redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    require_auth_time: true,
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  acrValues: LEVELS.map((l) => l.acr),
  // acr, amr and auth_time in every ID token (the hub needs them); the rest by scope.
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['given_name', 'family_name', 'birthdate'],
    address: ['address'],
  },
  scopes: ['openid', 'profile', 'address'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = `<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Abmelden</title></head>
<body><h1>Abmelden beim Test-Identitätsanbieter</h1>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" id="abmelden">Ja, abmelden</button>
<button type="submit" form="op.logoutForm">Nein</button></body></html>`;
      },
    },
  },
  ttl: {
    IdToken: config.id_token_ttl_secs ?? 3600,
    AccessToken: 600,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  async findAccount(ctx, sub) {
    const person = PEOPLE[sub];
    if (!person) return undefined;
    return {
      accountId: sub,
      async claims() {
        const { label, ...claims } = person;
        return { sub, ...claims };
      },
    };
  },
  // A first-party portal: no consent screen; the grant covers what was asked.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      const scope = ctx.oidc.params.scope ?? 'openid';
      grant.addOIDCScope(scope);
      await grant.save();
      return grant;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
    await grant.save();
    return grant;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const text = Object.entries(out).map(([k, v]) => `${k}: ${String(v).replace(/[<>&"]/g, '')}`).join('\n');
    ctx.body = `<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Fehler</title></head><body><h1>Fehler</h1><pre id="fehler">${text}</pre></body></html>`;
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, params) {
  const asked = (params.acr_values || '').split(' ').filter(Boolean);
  const preselected = LEVELS.find((l) => asked.includes(l.acr)) ?? LEVELS[0];
  const people = Object.entries(PEOPLE).map(([sub, p], i) => `
    <label><input type="radio" name="account" value="${sub}"${i === 0 ? ' checked' : ''}> ${escape(p.label)}</label>`).join('');
  const levels = LEVELS.map((l) => `
    <label><input type="radio" name="acr" value="${l.acr}"${l === preselected ? ' checked' : ''}> ${escape(l.label)}</label>`).join('');
  return `<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Test-Identitätsanbieter</title></head>
<body><h1>Test-Identitätsanbieter (oidc-provider)</h1>
<p id="verlangt">Verlangt: ${escape(asked.join(' ') || 'keine Angabe')}; prompt: ${escape(params.prompt || '')}</p>
<form method="post" action="/interaction/${uid}/login" id="anmelden">
<fieldset><legend>Person</legend>${people}</fieldset>
<fieldset><legend>Vertrauensniveau</legend>${levels}</fieldset>
<button type="submit">Anmelden</button>
</form>
<form method="post" action="/interaction/${uid}/abort" id="abbrechen"><button type="submit">Abbrechen</button></form>
</body></html>`;
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

let provider;
let callback;

const server = createServer(async (req, res) => {
  const match = req.url.match(/^\/interaction\/([\w-]+)(\/login|\/abort)?$/);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    const [, uid, action] = match;
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (!action && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(uid, details.params));
      return;
    }
    if (req.method !== 'POST') throw new Error('method not allowed');
    if (action === '/abort') {
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'Die Anmeldung wurde abgebrochen.',
      }, { mergeWithLastSubmission: false });
      return;
    }
    const form = await body(req);
    const account = form.get('account');
    const level = LEVELS.find((l) => l.acr === form.get('acr'));
    if (!PEOPLE[account] || !level) throw new Error('pick a person and a level');
    await provider.interactionFinished(req, res, {
      login: { accountId: account, acr: level.acr, amr: [level.amr], remember: true },
    }, { mergeWithLastSubmission: false });
  } catch (error) {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`interaction failed: ${error.message}`);
  }
});

server.listen(config.port ?? 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = makeProvider(issuer);
  callback = provider.callback();
  process.stdout.write(`READY ${issuer}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));

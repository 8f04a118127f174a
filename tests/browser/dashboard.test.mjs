// The integrations dashboard in headless Chromium against a real fleet
// (gateway, bridge, workers, NATS, OpenBao, PostgreSQL) and the provider
// simulator, as started by scripts/browser-test. Every wait is on a
// condition with a deadline; nothing sleeps.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through scripts/browser-test`);
  return value;
};

const GATEWAY = env('FLEET_UP_GATEWAY_URL');
const SIM = env('FLEET_UP_SIM_URL');
const SITE = env('FLEET_UP_SITE_URL');
const TOKEN = env('FLEET_UP_TOKEN');
const RUN_DIR = env('FLEET_UP_RUN_DIR');
const UP = env('FLEET_BROWSER_UP');
const SHOTS = env('FLEET_BROWSER_SCREENSHOTS');
const DEMO_USER = 'demo';
const DEMO_PASSWORD = 'demo DEMO demo DEMO demo DEMO';
const DEADLINE = 30_000;

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
});

after(async () => {
  await browser?.close();
});

/** A fresh browser context at 1280x800 with the dashboard open and live.
 * `page.bridge` collects the messages the bridge sent, one array per
 * WebSocket the page opened. */
async function openDashboard(t, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  t.after(() => context.close());
  const page = await context.newPage();
  page.bridge = [];
  page.on('websocket', (socket) => {
    const messages = [];
    page.bridge.push(messages);
    socket.on('framereceived', ({ payload }) => {
      try {
        messages.push(JSON.parse(payload));
      } catch {
        messages.push(payload);
      }
    });
  });
  const problems = [];
  // Only the dashboard's own errors count, not the provider's pages'.
  const ours = () => page.url().startsWith(GATEWAY);
  page.on('pageerror', (error) => {
    if (ours()) problems.push(error.message);
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && ours()) problems.push(`${message.text()} (${message.location().url})`);
  });
  t.after(() => {
    // Failed WebSocket attempts while the bridge is down are expected noise.
    const real = problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(p));
    assert.deepEqual(real, [], 'the page logged errors');
  });
  page.setDefaultTimeout(DEADLINE);
  await page.goto(`${GATEWAY}/#token=${TOKEN}`);
  await page.locator('#live[data-state="online"]').waitFor();
  return page;
}

/** A screenshot of the whole page, or with `fullPage` false of what the
 * viewport shows. */
async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

async function api(method, path, body) {
  const response = await fetch(`${GATEWAY}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      Accept: 'application/json',
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: response.status, body: json };
}

/** Polls `probe` until it returns a truthy value, or fails after `ms`. */
async function eventually(what, probe, ms = DEADLINE) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`${what} did not happen within ${ms} ms (last: ${JSON.stringify(last)})`);
}

/** A token of another tenant, minted like scripts/up mints the demo's:
 * `fleet token` with the run's key. */
async function mintToken(tenant, user) {
  const env = await readFile(join(RUN_DIR, 'env'), 'utf8');
  const key = env.match(/FLEET_AUTH__KEY=(\S+)/)?.[1];
  assert.ok(key, `no FLEET_AUTH__KEY in ${RUN_DIR}/env`);
  const target = process.env.CARGO_TARGET_DIR || join(dirname(dirname(UP)), 'target');
  const fleet = join(target, 'debug', 'fleet');
  const { stdout } = await promisify(execFile)(fleet, ['token', '--tenant', tenant, '--user', user], {
    env: { ...process.env, FLEET_AUTH__KEY: key },
  });
  return stdout.trim();
}

/** Makes the demo site answer its next `times` requests slowly, so a sync
 * lasts long enough to be watched. */
async function slowDemoSite(times, delayMs) {
  const response = await fetch(`${SIM}/_sim/faults`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ site: 'demo', fault: { kind: 'slow', delay_ms: delayMs }, times }),
  });
  assert.equal(response.status, 204, 'the simulator took the fault');
}

async function clearFaults() {
  await fetch(`${SIM}/_sim/faults`, { method: 'DELETE' });
}

/** The messages of the last WebSocket session that received any. */
function lastSession(page) {
  return page.bridge.filter((messages) => messages.length > 0).at(-1) ?? [];
}

async function bridgePid() {
  return Number((await readFile(join(RUN_DIR, 'pids', 'bridge'), 'utf8')).trim());
}

/** Starts the bridge again (stopping it first if it runs), with `extraEnv`. */
async function startBridge(extraEnv = {}) {
  await promisify(execFile)(UP, ['--service', 'bridge'], { env: { ...process.env, ...extraEnv } });
}

/** Starts the bridge if it does not run. */
async function ensureBridge() {
  try {
    process.kill(await bridgePid(), 0);
  } catch {
    await startBridge();
  }
}

/** Connects the demo site through the API and returns its id. */
async function connectDemoSite(name) {
  const created = await api('POST', '/api/connections', {
    connector: 'wordpress',
    display_name: name,
    credentials: { site_url: SITE, username: DEMO_USER, application_password: DEMO_PASSWORD },
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  return created.body.id;
}

/** Takes the bridge down, presses Sync now on the page, and waits until
 * that sync has finished behind the page's back. Returns the last sync
 * time the page showed before. */
async function syncWhileBridgeIsDown(page, id) {
  const before = await lastSyncOf(page, id);
  process.kill(await bridgePid(), 'SIGTERM');
  const banner = page.getByRole('status').filter({ hasText: 'Offline – reconnecting' });
  await banner.waitFor();

  const connection = row(page, id);
  await connection.getByRole('button', { name: 'Sync WordPress now' }).click();
  await connection.locator('.state-badge', { hasText: 'Sync requested' }).waitFor();
  await eventually('the sync requested while the bridge was down', async () => {
    const { body } = await api('GET', `/api/connections/${id}`);
    return body?.state === 'synced' && Date.parse(body.last_sync_at) > Date.parse(before);
  });
  assert.equal(await lastSyncOf(page, id), before, 'the page cannot know of the sync yet');
  assert.ok(await banner.isVisible(), 'the page still says it is offline');
  return before;
}

/** Waits until the page, live again, shows a sync newer than `before`. */
async function caughtUp(page, id, before) {
  await page.getByRole('status').filter({ hasText: 'Offline – reconnecting' }).waitFor({ state: 'hidden' });
  await page.locator('#live[data-state="online"]').waitFor();
  await page.waitForFunction(
    ([rowId, previous]) => {
      const el = document.getElementById(rowId);
      const time = el?.querySelector('.last-sync time')?.getAttribute('datetime');
      return el?.dataset.state === 'synced' && time && Date.parse(time) > Date.parse(previous);
    },
    [`connection-${id}`, before],
    { timeout: DEADLINE },
  );
  assert.equal(await row(page, id).locator('.state-badge').textContent(), 'Synced');
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
}

// Opens the connect form of `name` from its `card`, checks that the field
// labelled `secret` hides what is typed, fills `fields` in order (`fill`
// types a value, `choose` picks an option) and sends the form; returns the
// new connection's id once the gateway accepted it and the form closed.
async function connectWithForm(page, card, name, secret, fields) {
  await card.getByRole('button', { name: `Connect ${name}` }).click();
  const dialog = page.getByRole('dialog', { name: `Connect ${name}` });
  await dialog.waitFor();
  assert.equal(await dialog.getByLabel(secret).getAttribute('type'), 'password');
  for (const field of fields) {
    const input = dialog.getByLabel(field.label);
    if (field.choose !== undefined) await input.selectOption(field.choose);
    else await input.fill(field.fill);
  }
  const created = page.waitForResponse(
    (r) => r.url().endsWith('/api/connections') && r.request().method() === 'POST',
  );
  await dialog.getByRole('button', { name: 'Connect', exact: true }).click();
  const response = await created;
  assert.equal(response.status(), 202);
  await dialog.waitFor({ state: 'hidden' });
  return (await response.json()).id;
}

function row(page, id) {
  return page.locator(`#connection-${id}`);
}

function inState(page, id, state) {
  return page.locator(`#connection-${id}[data-state="${state}"]`);
}

async function lastSyncOf(page, id) {
  return row(page, id).locator('.last-sync time').getAttribute('datetime');
}

test('a WordPress site connects through the form, with inline errors, and syncs with progress', async (t) => {
  t.after(clearFaults);
  const page = await openDashboard(t);
  assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');

  const card = page.locator('.connector[data-connector="wordpress"]');
  await card.waitFor();
  await shot(page, 'grid');

  await card.getByRole('button', { name: 'Connect WordPress' }).click();
  const dialog = page.getByRole('dialog', { name: 'Connect WordPress' });
  await dialog.waitFor();
  await dialog.getByLabel('Site address').fill(SITE);
  await dialog.getByLabel('User name').fill(DEMO_USER);
  await dialog.getByRole('button', { name: 'Connect', exact: true }).click();

  const password = dialog.getByLabel('Application password');
  const error = page.locator('#field-application_password-error');
  await error.waitFor();
  assert.match(await error.textContent(), /Enter the application password/);
  assert.equal(await password.getAttribute('aria-invalid'), 'true');
  assert.ok(await password.evaluate((el) => el === document.activeElement), 'the invalid field has focus');
  await shot(page, 'form-error');

  await slowDemoSite(10, 400);
  await password.fill(DEMO_PASSWORD);
  const created = page.waitForResponse(
    (r) => r.url().endsWith('/api/connections') && r.request().method() === 'POST',
  );
  await dialog.getByRole('button', { name: 'Connect', exact: true }).click();
  const response = await created;
  assert.equal(response.status(), 202);
  const { id } = await response.json();
  await dialog.waitFor({ state: 'hidden' });

  const connection = row(page, id);
  await inState(page, id, 'syncing').waitFor();
  await connection.locator('.progress progress').waitFor({ state: 'visible' });
  assert.match(await connection.locator('.state-badge').textContent(), /Syncing/);
  // Progress events move the bar: records counted before the run ends.
  await connection.locator('.progress-text', { hasText: /^[1-9][\d,.\s]* records so far/ }).waitFor();
  await shot(page, 'syncing');

  await inState(page, id, 'synced').waitFor();
  await connection.locator('.progress').waitFor({ state: 'hidden' });
  const records = await connection.locator('.records').textContent();
  assert.match(records, /^[1-9][\d,.\s]* records$/, `records shown: ${records}`);
  assert.ok(await lastSyncOf(page, id), 'a last sync time is shown');
  assert.equal(await connection.locator('.connection-title').textContent(), 'WordPress');
  await connection.locator('.connection-account', { hasText: 'Account:' }).waitFor();
  // Its health: the provider answered, and the schedule's next sync.
  await connection.locator('.health', { hasText: /^OK · provider last answered / }).waitFor();
  await connection.locator('.next-sync time').waitFor();
  await shot(page, 'synced');

  // The demo meters the completed sync to its Lago: one usage event of
  // this tenant's subscription with the records the run stored.
  const usage = await eventually('a usage event in the demo Lago', async () => {
    const { events } = await (await fetch(`${SIM}/_sim/lago/events`)).json();
    return events.find((event) => event.properties?.connection === id);
  });
  assert.match(usage.external_subscription_id, /^demo-/);
  assert.ok(usage.properties.records > 0, JSON.stringify(usage));

  await page.setViewportSize({ width: 390, height: 844 });
  await connection.getByRole('button', { name: 'Sync WordPress now' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a narrow screen`);
  await shot(page, 'narrow');
});

test('after the bridge restarts the page replays the sync it missed, without a reload', async (t) => {
  const id = await connectDemoSite('Restart watch');
  const page = await openDashboard(t);
  await inState(page, id, 'synced').waitFor();
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  // Whatever happens, the bridge runs again for the scenarios after this one.
  t.after(ensureBridge);

  const before = await syncWhileBridgeIsDown(page, id);
  await shot(page, 'offline');
  const sessions = page.bridge.length;
  await startBridge();
  await caughtUp(page, id, before);

  assert.ok(page.bridge.length > sessions, 'the page opened a new session');
  const resumed = lastSession(page);
  assert.ok(!resumed.some((m) => m.type === 'snapshot' || m.type === 'resync'), 'resumed by replay');
  assert.ok(
    resumed.some((m) => m.type === 'event' && m.event.connection === id && m.event.data.status.state === 'synced'),
    'the missed synced event was replayed',
  );
});

test('when the bridge cannot replay what the page missed, the page takes its fresh snapshot', async (t) => {
  const id = await connectDemoSite('Too old watch');
  const page = await openDashboard(t);
  await inState(page, id, 'synced').waitFor();
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  t.after(() => startBridge()); // with the default replay limit again

  const before = await syncWhileBridgeIsDown(page, id);
  // The missed sync published more than one event: too many to replay.
  await startBridge({ FLEET_BRIDGE__MAX_REPLAY: '1' });
  await caughtUp(page, id, before);

  const resumed = lastSession(page);
  const resync = resumed.findIndex((m) => m.type === 'resync');
  assert.ok(resync >= 0, `the bridge refused the replay: ${JSON.stringify(resumed.map((m) => m.type))}`);
  assert.equal(resumed[resync].reason, 'too old');
  assert.equal(resumed[resync + 1]?.type, 'snapshot', 'a snapshot followed');
});

/** Whether this gateway can start a Google Analytics authorization; skips
 * the test, saying why, when it has no route for it. */
async function oauthAvailable(t) {
  const probe = await api('GET', '/oauth/authorize/google-analytics');
  if (probe.status === 404 && probe.body?.error?.code !== 'not_found') {
    t.skip('the gateway has no /oauth/authorize route');
    return false;
  }
  assert.equal(probe.status, 200, `authorize answered ${probe.status}: ${JSON.stringify(probe.body)}`);
  return true;
}

test('Google Analytics connects through the consent page and comes back synced', async (t) => {
  if (!(await oauthAvailable(t))) return;
  const page = await openDashboard(t);
  await page.getByRole('button', { name: 'Connect Google Analytics 4', exact: true }).click();
  await page.waitForURL((url) => url.href.startsWith(SIM));
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${GATEWAY}/callback`));
  const callback = new URL(page.url());
  assert.equal(callback.searchParams.get('status'), 'connected', `callback: ${callback.search}`);
  const id = callback.searchParams.get('connection_id');
  await page.getByRole('heading', { name: 'Google Analytics 4 is connected' }).waitFor();
  await shot(page, 'callback');

  await page.waitForURL(`${GATEWAY}/`);
  const connection = row(page, id);
  await inState(page, id, 'synced').waitFor();
  assert.equal(await connection.locator('.connection-title').textContent(), 'Google Analytics 4');
  assert.ok(await lastSyncOf(page, id), 'a last sync time is shown');
});

test('a provider with a per-connection setting asks for it, with its help, refuses a bad value inline, and connects', async (t) => {
  if (!(await oauthAvailable(t))) return;
  const page = await openDashboard(t);
  await page.getByRole('button', { name: 'Connect Acme', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Connect Acme' });
  await dialog.waitFor();
  const tenant = dialog.getByLabel('Acme tenant');
  assert.equal(await tenant.getAttribute('placeholder'), 'demo');
  assert.match(await dialog.locator('#field-tenant-help').textContent(), /before \.acme\.example/);

  await tenant.fill('evil.test/x');
  await dialog.getByRole('button', { name: 'Continue to Acme' }).click();
  const error = page.locator('#field-tenant-error');
  await error.waitFor();
  assert.match(await error.textContent(), /does not look like a valid acme tenant/);
  assert.equal(await tenant.getAttribute('aria-invalid'), 'true');
  await shot(page, 'settings-error');
  // The gateway refuses it too, naming the setting.
  const refused = await api('GET', '/oauth/authorize/acme?tenant=evil.test%2Fx');
  assert.equal(refused.status, 422);
  assert.equal(refused.body.error.field, 'tenant');

  await tenant.fill('demo');
  await dialog.getByRole('button', { name: 'Continue to Acme' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${GATEWAY}/callback`));
  const callback = new URL(page.url());
  assert.equal(callback.searchParams.get('status'), 'connected', `callback: ${callback.search}`);
  const id = callback.searchParams.get('connection_id');
  await page.waitForURL(`${GATEWAY}/`);
  await inState(page, id, 'synced').waitFor();
  assert.equal(await row(page, id).locator('.connection-title').textContent(), 'Acme');
});

test('an API-key provider asks for its key and setting in the form, and connects', async (t) => {
  const page = await openDashboard(t);
  const card = page.locator('.connector[data-connector="keyed"]');
  await card.waitFor();
  assert.equal(await card.locator('.connector-kind').textContent(), 'Connect with an API key');
  const id = await connectWithForm(page, card, 'Keyed', 'Keyed API key', [
    { label: 'API section', choose: 'api' },
    { label: 'Keyed API key', fill: 'sim-key-9c1e5b7a' },
  ]);
  await inState(page, id, 'synced').waitFor();
  assert.equal(await row(page, id).locator('.connection-title').textContent(), 'Keyed');
  await shot(page, 'api-key');
});

test('a Basic provider asks for a user name and password in the form, and connects', async (t) => {
  const page = await openDashboard(t);
  const card = page.locator('.connector[data-connector="keyed-basic"]');
  await card.waitFor();
  const id = await connectWithForm(page, card, 'Keyed Basic', 'Keyed password', [
    { label: 'Keyed user name', fill: 'keyed-user' },
    { label: 'Keyed password', fill: 'sim-pass/with:colon' },
  ]);
  await inState(page, id, 'synced').waitFor();
  await shot(page, 'basic');
});

test('a client-credentials provider asks for the client id and secret, refuses a wrong secret, and connects', async (t) => {
  const page = await openDashboard(t);
  const card = page.locator('.connector[data-connector="keyed-service"]');
  await card.waitFor();
  const connect = (secret) =>
    connectWithForm(page, card, 'Keyed Service', 'Client secret', [
      { label: 'Client ID', fill: 'keyed-client' },
      { label: 'Client secret', fill: secret },
    ]);
  const wrong = await connect('not-the-secret');
  await inState(page, wrong, 'invalid').waitFor();
  assert.ok(!(await row(page, wrong).textContent()).includes('not-the-secret'));
  const id = await connect('sim-client-secret-42d0');
  await inState(page, id, 'synced').waitFor();
  await shot(page, 'client-credentials');
});

test('declining on the consent page is said in plain words, with a way back', async (t) => {
  if (!(await oauthAvailable(t))) return;
  const page = await openDashboard(t);
  await page.getByRole('button', { name: 'Connect Google Analytics 4', exact: true }).click();
  await page.waitForURL((url) => url.href.startsWith(SIM));
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${GATEWAY}/callback`));
  await page.getByRole('heading', { name: 'Google Analytics 4 could not be connected' }).waitFor();
  assert.match(await page.locator('#callback-message').textContent(), /declined access/);
  await shot(page, 'callback-error');
  await page.getByRole('link', { name: 'Back to integrations' }).click();
  await page.locator('.connector[data-connector="google-analytics"]').waitFor();
});

test('a refused token is said plainly, and a new one opens the dashboard', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE);
  await page.goto(`${GATEWAY}/#token=not-a-token`);
  const notice = page.getByRole('alert');
  await notice.filter({ hasText: 'Your access token is missing or has expired' }).waitFor();
  await shot(page, 'token-refused');

  await page.getByLabel('Access token').fill(TOKEN);
  await page.getByRole('button', { name: 'Open dashboard' }).click();
  await page.locator('.connector[data-connector="wordpress"]').waitFor();
  await page.locator('#live[data-state="online"]').waitFor();
  assert.ok(await notice.isHidden(), 'the notice went away');
});

test('a #token= link never silently replaces the tenant the page acts for, which it shows', async (t) => {
  const page = await openDashboard(t);
  const identity = page.locator('#identity');
  assert.equal(await identity.textContent(), 'Tenant demo');
  const other = await mintToken('mallory', 'mallory@example.test');
  const questions = [];
  page.on('dialog', async (dialog) => {
    questions.push(dialog.message());
    await (questions.length === 1 ? dialog.dismiss() : dialog.accept());
  });

  // Someone sends a link with their own token; the signed-in page asks.
  await page.goto(`${GATEWAY}/#token=${other}`);
  await eventually('the question', () => questions.length === 1);
  assert.match(questions[0], /signs the dashboard in as tenant "mallory" \(mallory@example\.test\)/);
  assert.match(questions[0], /It is signed in as tenant "demo"/);
  await page
    .getByRole('alert')
    .filter({ hasText: 'The sign-in link was not used: the dashboard is still signed in as tenant "demo".' })
    .waitFor();
  assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');
  assert.equal(await identity.textContent(), 'Tenant demo');
  assert.equal(
    await page.evaluate(() => sessionStorage.getItem('fleet.dashboard.token')),
    TOKEN,
    'the session kept its token',
  );
  await shot(page, 'token-link-refused');

  // Agreeing switches the whole page over to the other tenant.
  await page.goto(`${GATEWAY}/#token=${other}`);
  await eventually('the second question', () => questions.length === 2);
  await identity.filter({ hasText: 'Tenant mallory · mallory@example.test' }).waitFor();
  await page.locator('#live[data-state="online"]').waitFor();
  await page.locator('#no-connections').waitFor();
  assert.equal(await page.locator('#connections > li').count(), 0, "demo's connections are gone");
});

test('Disconnect asks first, then the connection shows as disconnected', async (t) => {
  const id = await connectDemoSite('To be removed');
  const page = await openDashboard(t);
  await inState(page, id, 'synced').waitFor();

  const questions = [];
  page.on('dialog', async (dialog) => {
    questions.push(dialog.message());
    await (questions.length === 1 ? dialog.dismiss() : dialog.accept());
  });
  const button = row(page, id).getByRole('button', { name: 'Disconnect WordPress' });
  await button.click();
  await eventually('the first question', () => questions.length === 1);
  assert.match(questions[0], /Disconnect WordPress\?/);
  assert.equal(await row(page, id).getAttribute('data-state'), 'synced', 'dismissing keeps it');

  await button.click();
  await inState(page, id, 'disconnected').waitFor();
  assert.equal(await row(page, id).locator('.state-badge').textContent(), 'Disconnected');
  const gone = await api('GET', `/api/connections/${id}`);
  assert.equal(gone.status, 404);
});

test('The whole local fleet restarts and an existing connection syncs with its stored credentials', async () => {
  const id = await connectDemoSite('Survives a restart');
  const synced = async () => {
    const { status, body } = await api('GET', `/api/connections/${id}`);
    return status === 200 && body.state === 'synced' ? body : null;
  };
  const before = await eventually('the first sync', synced);

  const run = promisify(execFile);
  await run(UP, ['--stop'], { env: process.env });
  await eventually('the gateway to stop', async () => {
    try {
      await fetch(`${GATEWAY}/healthz`);
      return false;
    } catch {
      return true;
    }
  });
  await run(UP, ['--detach'], { env: process.env, timeout: 120_000 });
  await eventually('the restarted gateway to be ready', async () => {
    try {
      return (await fetch(`${GATEWAY}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }, 60_000);

  const kept = await api('GET', `/api/connections/${id}`);
  assert.equal(kept.status, 200, 'the connection is still there');
  assert.equal(kept.body.state, 'synced');
  assert.equal(kept.body.records_total, before.records_total);
  const sync = await api('POST', `/api/connections/${id}/sync`);
  assert.equal(sync.status, 202, JSON.stringify(sync.body));
  // A sync reads the credentials from OpenBao: it ends synced only if they
  // survived the restart.
  const after = await eventually('a sync after the restart', async () => {
    const body = await synced();
    return body && body.last_sync_at > before.last_sync_at ? body : null;
  }, 60_000);
  assert.equal(after.records_total, before.records_total);
  assert.equal(after.last_error, null);
});

// ---------------------------------------------------------------- data views

/** Every record of `stream` of connection `id`, read through the records API. */
async function records(id, stream) {
  const all = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ stream, limit: '1000' });
    if (cursor) query.set('cursor', cursor);
    const { status, body } = await api('GET', `/api/connections/${id}/records?${query}`);
    assert.equal(status, 200, JSON.stringify(body));
    all.push(...body.records);
    cursor = body.next;
  } while (cursor);
  return all;
}

/** The data views' screen: their screenshots illustrate the README. */
const VIEW_VIEWPORT = { width: 1000, height: 720 };

/** Collects the page's Content-Security-Policy violations in
 * `window.cspViolations` (the listener is not subject to the policy). */
async function watchCsp(page) {
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.violatedDirective}: ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`);
    });
  });
}

async function assertNoCspViolation(page) {
  assert.deepEqual(await page.evaluate(() => window.cspViolations), [], 'the page broke its Content-Security-Policy');
}

/** The dashboard, watched for CSP violations from its first script on. */
async function openWatchedDashboard(t, viewport = VIEW_VIEWPORT) {
  const page = await openDashboard(t, viewport);
  await watchCsp(page);
  await page.reload();
  await page.locator('#live[data-state="online"]').waitFor();
  return page;
}

/** Connects the OAuth connector shown as `name` through the simulator's
 * consent page; returns the connection's id once it synced. */
async function connectThroughConsent(page, name) {
  await page.getByRole('button', { name: `Connect ${name}`, exact: true }).click();
  await page.waitForURL((url) => url.href.startsWith(SIM));
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((url) => url.href.startsWith(`${GATEWAY}/callback`));
  const callback = new URL(page.url());
  assert.equal(callback.searchParams.get('status'), 'connected', `callback: ${callback.search}`);
  const id = callback.searchParams.get('connection_id');
  await page.waitForURL(`${GATEWAY}/`);
  await inState(page, id, 'synced').waitFor();
  return id;
}

/** Opens the data view of connection `id` from its card and waits for
 * its records. */
async function openView(page, id, name) {
  await row(page, id).getByRole('button', { name: `View ${name} data` }).click();
  await page.getByRole('heading', { name: `${name}: synced data` }).waitFor();
  await page.locator(`#data-view[data-connection="${id}"][data-loaded]`).waitFor();
}

/** Digits only: numbers as the page formats them in its locale. */
const digits = (text) => String(text).replace(/[^\d-]/g, '');

/** The totals the chart view shows, by series key. */
async function totalsShown(page) {
  const shown = {};
  for (const item of await page.locator('.totals > div').all()) {
    shown[await item.getAttribute('data-series')] = digits(await item.locator('dd').textContent());
  }
  return shown;
}

/** Points at the last day of the chart and returns the legend's text. */
async function legendAtLastDay(page) {
  const over = page.locator('.chart .u-over');
  const box = await over.boundingBox();
  await over.hover({ position: { x: box.width - 1, y: box.height / 2 } });
  return page.locator('.chart .u-legend').textContent();
}

test('the WordPress view lists synced posts and pages, finds them by title, and shows a new post after a sync', async (t) => {
  const id = await connectDemoSite('Data view');
  const page = await openWatchedDashboard(t);
  await inState(page, id, 'synced').waitFor();
  const posts = await records(id, 'posts');
  const pages = await records(id, 'pages');
  assert.ok(posts.length > 50 && pages.length > 0, `${posts.length} posts, ${pages.length} pages`);

  const reads = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === `/api/connections/${id}/records`) reads.push(url.searchParams);
  });
  await openView(page, id, 'WordPress');
  const view = page.locator('#data-view');
  await view.getByRole('status').filter({ hasText: `${posts.length} posts and ${pages.length} pages` }).waitFor();
  // More posts than one request brings: the view followed the cursor.
  const postReads = reads.filter((q) => q.get('stream') === 'posts');
  assert.ok(postReads.length >= 2, `posts read in ${postReads.length} requests`);
  assert.ok(postReads.slice(1).every((q) => q.get('cursor')), 'each later request names a cursor');
  const table = view.getByRole('table');
  assert.deepEqual(await table.locator('th').allTextContents(), ['Title', 'Type', 'Status', 'Modified', 'Link']);
  assert.equal(await table.locator('tbody tr').count(), 50, 'a page of 50 rows');
  await view.getByText(`Showing 1–50 of ${posts.length + pages.length}`).waitFor();
  await shot(page, 'view-wordpress', false);
  const firstPage = await table.locator('tbody tr td:first-child').allTextContents();
  await view.getByRole('button', { name: 'Next' }).click();
  await view.getByText(`Showing 51–100 of ${posts.length + pages.length}`).waitFor();
  const secondPage = await table.locator('tbody tr td:first-child').allTextContents();
  assert.equal(secondPage.length, 50);
  assert.ok(!secondPage.some((title) => firstPage.includes(title)), 'the second page shows other rows');
  await view.getByRole('button', { name: 'Previous' }).click();
  await view.getByText(`Showing 1–50 of ${posts.length + pages.length}`).waitFor();

  // Search: a synced post's title finds it, with its status and link.
  const wanted = posts[17].payload;
  const search = view.getByLabel('Search posts and pages');
  await search.fill(wanted.title.rendered);
  const expected = [...posts, ...pages].filter((r) =>
    r.payload.title.rendered.toLowerCase().includes(wanted.title.rendered.toLowerCase()),
  ).length;
  await view.getByText(new RegExp(`^Showing 1–${Math.min(expected, 50)} of ${expected}$`)).waitFor();
  const hit = table.locator('tbody tr').filter({ has: page.getByRole('cell', { name: wanted.title.rendered, exact: true }) });
  await hit.waitFor();
  assert.equal(await hit.locator('td').nth(1).textContent(), 'Post');
  assert.equal(await hit.locator('td').nth(2).textContent(), wanted.status);
  assert.equal(await hit.getByRole('link').getAttribute('href'), wanted.link);
  await search.fill('no such title anywhere');
  await view.getByText('No post or page matches the search.').waitFor();
  await search.fill('');
  await view.getByText(`Showing 1–50 of ${posts.length + pages.length}`).waitFor();

  // Live: the site gets a new post; a sync brings it into the open view.
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  const loads = Number(await view.getAttribute('data-loaded'));
  const change = await fetch(`${SIM}/_sim/sites/demo/changes`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ op: 'create', collection: 'posts', count: 1 }),
  });
  assert.equal(change.status, 200);
  const [newId] = (await change.json()).ids;
  await view.getByRole('button', { name: 'Sync WordPress now' }).click();
  const added = await eventually('the new post in the records API', async () =>
    (await records(id, 'posts')).find((r) => r.external_id === String(newId)),
  );
  const newTitle = added.payload.title.rendered;
  await table.locator('tbody tr').first().getByRole('cell', { name: newTitle, exact: true }).waitFor();
  await view.getByRole('status').filter({ hasText: `${posts.length + 1} posts and ${pages.length} pages` }).waitFor();
  assert.ok(Number(await view.getAttribute('data-loaded')) > loads, 'the view read the records again');
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
  await shot(page, 'view-wordpress-live');

  // A narrow screen: the table scrolls in its box, the page does not.
  await page.setViewportSize({ width: 375, height: 812 });
  await table.waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a narrow screen`);
  const box = view.locator('.table-scroll');
  assert.ok(
    await box.evaluate((el) => el.scrollWidth > el.clientWidth),
    'the table scrolls inside its box',
  );
  await shot(page, 'view-wordpress-narrow', false);

  const html = await page.content();
  assert.ok(!html.includes(DEMO_PASSWORD), 'the view shows no credential');

  await view.getByRole('button', { name: 'Back to integrations' }).click();
  await row(page, id).getByRole('button', { name: 'View WordPress data' }).waitFor();
  await assertNoCspViolation(page);
});

/** Narrows the screen to 375 px and waits until the page fits in it
 * (charts redraw at the new width), with no horizontal page scroll. */
async function fitsNarrowScreen(page, name) {
  await page.setViewportSize({ width: 375, height: 812 });
  await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, null, {
    timeout: DEADLINE,
  });
  const chart = page.locator('#data-view .chart canvas');
  if ((await chart.count()) > 0) {
    // The chart redraws at the new width once its ResizeObserver fires.
    await page
      .waitForFunction(
        () => {
          const rect = document.querySelector('#data-view .chart canvas').getBoundingClientRect();
          return rect.x >= 0 && rect.x + rect.width <= window.innerWidth;
        },
        null,
        { timeout: DEADLINE },
      )
      .catch(() => {});
    const box = await chart.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 375, `the chart fits the screen: ${JSON.stringify(box)}`);
  }
  await shot(page, `${name}-narrow`, false);
}

/** Sums `value` of the payloads of `rows` (records). */
function total(rows, value) {
  return rows.reduce((sum, r) => sum + Number(value(r.payload)), 0);
}

test('the Google Analytics view charts daily sessions, users and pageviews between two dates', async (t) => {
  if (!(await oauthAvailable(t))) return;
  const page = await openWatchedDashboard(t);
  const id = await connectThroughConsent(page, 'Google Analytics 4');
  const rows = await records(id, 'daily_metrics');
  assert.ok(rows.length > 0, 'the sync stored daily rows');

  await openView(page, id, 'Google Analytics 4');
  const view = page.locator('#data-view');
  const picker = view.getByLabel('Property', { exact: true });
  const property = (await picker.count()) > 0 ? await picker.inputValue() : rows[0].payload.property;
  const mine = rows
    .filter((r) => r.payload.property === property)
    .sort((a, b) => a.payload.date.localeCompare(b.payload.date));
  const shown = await totalsShown(page);
  assert.deepEqual(shown, {
    sessions: String(total(mine, (p) => p.sessions)),
    users: String(total(mine, (p) => p.totalUsers)),
    pageviews: String(total(mine, (p) => p.screenPageViews)),
  });
  const last = mine.at(-1).payload;
  const legend = digits(await legendAtLastDay(page));
  for (const value of [last.sessions, last.totalUsers, last.screenPageViews]) {
    assert.ok(legend.includes(String(value)), `the legend at the last day shows ${value}: ${legend}`);
  }
  await shot(page, 'view-google-analytics', false);

  // The last seven days only.
  const from = mine.at(-7).payload.date;
  await view.getByLabel('From', { exact: true }).fill(from);
  const week = mine.slice(-7);
  await eventually('the totals of the last seven days', async () => {
    const now = await totalsShown(page);
    return now.sessions === String(total(week, (p) => p.sessions)) ? now : null;
  });
  assert.deepEqual(await totalsShown(page), {
    sessions: String(total(week, (p) => p.sessions)),
    users: String(total(week, (p) => p.totalUsers)),
    pageviews: String(total(week, (p) => p.screenPageViews)),
  });
  await view.getByRole('status').filter({ hasText: /^7 days from/ }).waitFor();
  // A start after the end is refused in words.
  await view.getByLabel('To', { exact: true }).fill(mine.at(-8).payload.date);
  await view.getByRole('alert').filter({ hasText: 'The start date is after the end date' }).waitFor();
  await view.getByLabel('To', { exact: true }).fill(mine.at(-1).payload.date);
  await page.locator('#data-view .chart canvas').waitFor();
  await fitsNarrowScreen(page, 'view-google-analytics');
  await assertNoCspViolation(page);
});

test('the FluentCRM view lists subscribers with their lists, filtered by list', async (t) => {
  const created = await api('POST', '/api/connections', {
    connector: 'fluentcrm',
    display_name: 'CRM view',
    credentials: { site_url: SITE, username: DEMO_USER, application_password: DEMO_PASSWORD },
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id;
  const page = await openWatchedDashboard(t);
  await inState(page, id, 'synced').waitFor();
  const subscribers = await records(id, 'subscribers');
  const lists = await records(id, 'lists');
  assert.ok(subscribers.length > 0 && lists.length > 1);

  await openView(page, id, 'FluentCRM');
  const view = page.locator('#data-view');
  await view.getByRole('status').filter({ hasText: `${subscribers.length} subscribers on ${lists.length} lists` }).waitFor();
  const table = view.getByRole('table');
  assert.deepEqual(await table.locator('th').allTextContents(), ['Name', 'Email', 'Status', 'Lists']);
  // Sorted by name: the first row is the first subscriber by name, with
  // the titles of the lists the sync stored for it.
  const byName = (a, b) => a.full_name.localeCompare(b.full_name) || a.email.localeCompare(b.email);
  const titles = new Map(lists.map((l) => [String(l.external_id), l.payload.title]));
  const first = subscribers.map((s) => s.payload).sort(byName)[0];
  assert.deepEqual(await table.locator('tbody tr').first().locator('td').allTextContents(), [
    first.full_name,
    first.email,
    first.status,
    first.lists.map((l) => titles.get(String(l.id))).join(', '),
  ]);
  await shot(page, 'view-fluentcrm');

  const list = lists[1].payload;
  await view.getByLabel('List', { exact: true }).selectOption({ label: list.title });
  const members = subscribers.filter((s) => s.payload.lists.some((l) => String(l.id) === String(list.id)));
  assert.ok(members.length > 0 && members.length < subscribers.length, `${members.length} on ${list.title}`);
  await view.getByText(new RegExp(`^Showing 1–${Math.min(members.length, 50)} of ${members.length}$`)).waitFor();
  for (const cells of await table.locator('tbody tr td:nth-child(4)').allTextContents()) {
    assert.ok(cells.split(', ').includes(list.title), `a row on ${cells} shows under ${list.title}`);
  }
  const member = members.map((s) => s.payload).sort(byName)[0];
  const firstMember = table.locator('tbody tr').first();
  assert.equal(await firstMember.locator('td').nth(0).textContent(), member.full_name);
  assert.equal(await firstMember.locator('td').nth(1).textContent(), member.email);
  await shot(page, 'view-fluentcrm-list', false);
  await fitsNarrowScreen(page, 'view-fluentcrm');
  await assertNoCspViolation(page);
});

test('the Meta view charts spend, impressions and clicks per day of an ad account', async (t) => {
  if (!(await oauthAvailable(t))) return;
  const page = await openWatchedDashboard(t);
  const id = await connectThroughConsent(page, 'Meta Ads');
  const rows = await records(id, 'ad_insights');
  assert.ok(rows.length > 0);

  await openView(page, id, 'Meta Ads');
  const picker = page.locator('#data-view').getByLabel('Ad account', { exact: true });
  const account = (await picker.count()) > 0 ? await picker.inputValue() : rows[0].payload.account;
  const mine = rows.filter((r) => r.payload.account === account).sort((a, b) => a.payload.date.localeCompare(b.payload.date));
  const spend = total(mine, (p) => p.numbers.spend);
  assert.deepEqual(await totalsShown(page), {
    spend: digits(spend.toFixed(2)),
    impressions: String(total(mine, (p) => p.numbers.impressions)),
    clicks: String(total(mine, (p) => p.numbers.clicks)),
  });
  const last = mine.at(-1).payload.numbers;
  const legend = digits(await legendAtLastDay(page));
  for (const value of [last.impressions, last.clicks, digits(Number(last.spend).toFixed(2))]) {
    assert.ok(legend.includes(String(value)), `the legend at the last day shows ${value}: ${legend}`);
  }
  await shot(page, 'view-meta', false);
  await fitsNarrowScreen(page, 'view-meta');
  await assertNoCspViolation(page);
});

test('the LinkedIn view charts follower gains per day of an organization', async (t) => {
  if (!(await oauthAvailable(t))) return;
  const page = await openWatchedDashboard(t);
  const id = await connectThroughConsent(page, 'LinkedIn');
  const rows = await records(id, 'follower_statistics');
  assert.ok(rows.length > 0);

  await openView(page, id, 'LinkedIn');
  const picker = page.locator('#data-view').getByLabel('Organization', { exact: true });
  const organization = (await picker.count()) > 0 ? await picker.inputValue() : rows[0].payload.organization;
  const mine = rows.filter((r) => r.payload.organization === organization).sort((a, b) => a.payload.date.localeCompare(b.payload.date));
  assert.deepEqual(await totalsShown(page), {
    organic: String(total(mine, (p) => p.organicFollowerGain)),
    paid: String(total(mine, (p) => p.paidFollowerGain)),
  });
  const last = mine.at(-1).payload;
  const legend = digits(await legendAtLastDay(page));
  for (const value of [last.organicFollowerGain, last.paidFollowerGain]) {
    assert.ok(legend.includes(String(value)), `the legend at the last day shows ${value}: ${legend}`);
  }
  await shot(page, 'view-linkedin', false);
  await fitsNarrowScreen(page, 'view-linkedin');
  await assertNoCspViolation(page);
});

test('the Trello view shows each board with its cards', async (t) => {
  if (!(await oauthAvailable(t))) return;
  const page = await openWatchedDashboard(t);
  const id = await connectThroughConsent(page, 'Trello');
  const boards = await records(id, 'boards');
  const cards = await records(id, 'cards');
  assert.ok(boards.length > 1 && cards.length > 0);

  await openView(page, id, 'Trello');
  const view = page.locator('#data-view');
  await view.getByRole('status').filter({ hasText: `${boards.length} boards with ${cards.length} cards` }).waitFor();
  for (const board of boards) {
    const section = view.locator(`section.board[data-board="${board.external_id}"]`);
    await section.getByRole('heading', { name: board.payload.name }).waitFor();
    const mine = cards.filter((c) => c.payload.idBoard === board.external_id);
    assert.equal(await section.locator('.muted').first().textContent(), `${mine.length} open cards`);
    if (mine.length > 0) {
      assert.equal(await section.locator('tbody tr').count(), mine.length);
      await section.getByRole('cell', { name: mine[0].payload.name, exact: true }).waitFor();
    }
  }
  await shot(page, 'view-trello', false);
  await fitsNarrowScreen(page, 'view-trello');
  await assertNoCspViolation(page);
});

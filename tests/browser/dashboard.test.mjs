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

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
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
  await shot(page, 'synced');

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
  await card.getByRole('button', { name: 'Connect Keyed' }).click();
  const dialog = page.getByRole('dialog', { name: 'Connect Keyed' });
  await dialog.waitFor();
  const key = dialog.getByLabel('Keyed API key');
  assert.equal(await key.getAttribute('type'), 'password');
  await dialog.getByLabel('API section').selectOption('api');
  await key.fill('sim-key-9c1e5b7a');
  const created = page.waitForResponse(
    (r) => r.url().endsWith('/api/connections') && r.request().method() === 'POST',
  );
  await dialog.getByRole('button', { name: 'Connect', exact: true }).click();
  const response = await created;
  assert.equal(response.status(), 202);
  const { id } = await response.json();
  await dialog.waitFor({ state: 'hidden' });
  await inState(page, id, 'synced').waitFor();
  assert.equal(await row(page, id).locator('.connection-title').textContent(), 'Keyed');
  await shot(page, 'api-key');
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

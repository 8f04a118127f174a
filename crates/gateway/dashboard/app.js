// The integrations dashboard: the connectors on offer, the tenant's
// connections with their live status from the bridge, and the page OAuth
// flows come back to (/callback).
//
// The tenant token arrives once in the URL fragment (#token=...), is moved
// to sessionStorage and removed from the address bar, and goes with every
// API call as a bearer token and to the bridge in its first message. A
// link never silently replaces the token of a signed-in tab: whoever holds
// the dashboard's token decides which tenant accounts get connected to, so
// the page asks first, and always shows which tenant (and user) it acts
// for, read from the token's claims for display only (the server checks
// the token; nothing here trusts it).
// Everything shown comes from the API or the bridge as text (textContent),
// never as markup.
// "View data" opens a view of what a connection synced (views.js); it
// reads the records again whenever a sync of that connection completes.

import { DataView } from './views.js';

const TOKEN_KEY = 'fleet.dashboard.token';
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 8000;
const CALLBACK_RETURN_MS = 4000;

const BUSY_STATES = new Set(['pending', 'validating', 'saving', 'syncing']);
const STATE_LABELS = {
  pending: 'Waiting to validate',
  validating: 'Validating',
  invalid: 'Credentials refused',
  saving: 'Saving credentials',
  syncing: 'Syncing',
  synced: 'Synced',
  partial: 'Synced in part',
  retrying: 'Retrying',
  failed: 'Failed',
  reauth_required: 'Reconnect needed',
  disconnected: 'Disconnected',
};

const $ = (selector, root = document) => root.querySelector(selector);

const app = {
  token: null,
  /** @type {Map<string, object>} catalog entries by id */
  connectors: new Map(),
  /** @type {Map<string, object>} connection models by id */
  connections: new Map(),
  /** @type {LiveStatus | null} */
  live: null,
  /** the connector whose credentials form is open */
  formConnector: null,
  /** a message to show once the dashboard opens */
  pendingNotice: null,
  /** @type {DataView | null} the data view, made at start */
  data: null,
  /** the timer that reads the cards' health again */
  healthTimer: null,
};

// ---------------------------------------------------------------- start

document.addEventListener('DOMContentLoaded', () => {
  takeTokenFromFragment();
  app.token = sessionStorage.getItem(TOKEN_KEY);
  app.data = new DataView(api, {
    root: $('#data-view'),
    status: $('#data-status'),
    controls: $('#data-controls'),
    body: $('#data-body'),
  });
  bindStaticHandlers();
  renderIdentity();
  if (location.pathname === '/callback') {
    showCallback();
  } else if (app.token) {
    openDashboard();
  } else {
    askForToken();
  }
});

// A #token= link followed while the page is open changes only the fragment.
window.addEventListener('hashchange', () => {
  if (!new URLSearchParams(location.hash.slice(1)).has('token')) return;
  if (takeTokenFromFragment()) {
    switchSession();
  } else if (app.pendingNotice) {
    showNotice(app.pendingNotice);
    app.pendingNotice = null;
  }
});

/**
 * Moves `#token=...` out of the address bar, and into sessionStorage when
 * the tab has no token yet, or the person agrees to replace the one it has.
 * Returns whether the tab's token changed.
 */
function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has('token')) return false;
  const offered = (params.get('token') ?? '').trim();
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  const current = sessionStorage.getItem(TOKEN_KEY);
  if (!offered || offered === current) return false;
  if (current) {
    const now = describeIdentity(tokenIdentity(current));
    const next = describeIdentity(tokenIdentity(offered));
    const switchIt = window.confirm(
      `This link signs the dashboard in as ${next}.\n\n` +
        `It is signed in as ${now}. Accounts you connect are added to the tenant it is signed in as.\n\n` +
        `Switch to ${next}?`,
    );
    if (!switchIt) {
      app.pendingNotice = `The sign-in link was not used: the dashboard is still signed in as ${now}.`;
      return false;
    }
  }
  sessionStorage.setItem(TOKEN_KEY, offered);
  return true;
}

/** Starts over with the tab's (new) token. */
function switchSession() {
  app.live?.stop();
  app.live = null;
  app.data.close();
  app.connections.clear();
  $('#connections').replaceChildren();
  $('#credentials-dialog').close();
  app.token = sessionStorage.getItem(TOKEN_KEY);
  renderIdentity();
  if (location.pathname !== '/') history.replaceState(null, '', '/');
  openDashboard();
}

/**
 * The tenant and user a token names (claims `tenant` and `sub`), for
 * display only; nulls when it cannot be read.
 */
function tokenIdentity(token) {
  const text = (value) => (typeof value === 'string' && value.trim() ? value.trim().slice(0, 120) : null);
  try {
    const payload = String(token).split('.')[1] ?? '';
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64.padEnd(Math.ceil(base64.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return { tenant: text(claims?.tenant), user: text(claims?.sub) };
  } catch {
    return { tenant: null, user: null };
  }
}

function describeIdentity({ tenant, user }) {
  if (!tenant) return 'a tenant this page cannot read from the token';
  return user ? `tenant "${tenant}" (${user})` : `tenant "${tenant}"`;
}

/** Shows whom the dashboard acts for, from the tab's token. */
function renderIdentity() {
  const element = $('#identity');
  if (!app.token) {
    element.textContent = '';
    element.hidden = true;
    return;
  }
  const { tenant, user } = tokenIdentity(app.token);
  element.textContent = tenant ? `Tenant ${tenant}${user ? ` · ${user}` : ''}` : 'Tenant unknown';
  element.title = tenant
    ? `This dashboard acts for tenant ${tenant}${user ? ` as ${user}` : ''}; accounts you connect are added to it.`
    : 'The access token does not say which tenant it is for.';
  element.hidden = false;
}

function bindStaticHandlers() {
  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#token-input');
    const token = input.value.trim();
    if (!token) {
      setFieldError(input, $('#token-error'), 'Enter the access token.');
      input.focus();
      return;
    }
    setFieldError(input, $('#token-error'), null);
    sessionStorage.setItem(TOKEN_KEY, token);
    app.token = token;
    input.value = '';
    renderIdentity();
    openDashboard();
  });
  $('#credentials-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submitCredentials();
  });
  $('#credentials-cancel').addEventListener('click', () => $('#credentials-dialog').close());
  $('#data-back').addEventListener('click', closeDataView);
  $('#data-sync').addEventListener('click', () => {
    const id = app.data.connectionId;
    if (id) syncNow(id);
  });
}

function showView(id) {
  for (const view of ['token-view', 'callback-view', 'grid-view', 'data-view']) {
    $(`#${view}`).hidden = view !== id;
  }
  // Live status is followed on the grid and in a data view.
  $('#live').hidden = id !== 'grid-view' && id !== 'data-view';
}

async function openDashboard() {
  hideNotice();
  if (app.pendingNotice) {
    showNotice(app.pendingNotice);
    app.pendingNotice = null;
  }
  showView('grid-view');
  let settings;
  try {
    settings = await fetchJson('/dashboard/config.json');
  } catch {
    showNotice('The dashboard could not load its settings. Reload the page to try again.');
    return;
  }
  try {
    await Promise.all([loadConnectors(), loadConnections()]);
  } catch (error) {
    if (error.status !== 401) showNotice(`Your integrations could not be loaded: ${error.message}`);
    if (error.status === 401) return;
  }
  app.live?.stop();
  app.live = new LiveStatus(settings.bridge_url, app.token, {
    online: () => setLive('online'),
    offline: () => setLive('offline'),
    snapshot: applySnapshot,
    event: applyEvent,
    health: (event) => {
      if (event?.connection && app.connections.has(event.connection)) refreshHealth(event.connection, true);
    },
    refused: (reason) => signOut(reason),
    expired: () => signOut(null, SESSION_EXPIRED),
  });
  app.live.start();
  // A health check that passes or fails without degrading or recovering
  // the connection comes with no message: read the cards' health again now
  // and then.
  clearInterval(app.healthTimer);
  app.healthTimer = setInterval(() => {
    if (!app.token || document.hidden) return;
    for (const id of [...app.connections.keys()].slice(0, 50)) refreshHealth(id);
  }, HEALTH_EVERY_MS);
}

/** How often the cards' health is read again without a status change. */
const HEALTH_EVERY_MS = 300_000;

const TOKEN_NEEDED = 'Your access token is missing or has expired. Paste a new one to continue.';
const SESSION_EXPIRED = 'Your session expired with its access token. Paste a new one to continue.';

/** Forgets the token and asks for a new one, saying why with `message`. */
function signOut(reason, message = TOKEN_NEEDED) {
  sessionStorage.removeItem(TOKEN_KEY);
  app.token = null;
  renderIdentity();
  app.live?.stop();
  app.live = null;
  setLive('stopped');
  app.data.close();
  app.connections.clear();
  $('#connections').replaceChildren();
  $('#credentials-dialog').close();
  const detail = reason ? ` (The server said: ${unsentence(reason)}.)` : '';
  askForToken();
  showNotice(`${message}${detail}`);
}

function askForToken() {
  hideNotice();
  showView('token-view');
  $('#token-input').focus();
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body, fallback) {
    const detail = body && typeof body === 'object' ? body.error : null;
    super(detail?.message ? sentence(detail.message) : fallback ?? describeStatus(status));
    this.status = status;
    this.field = detail?.field ?? null;
    this.details = detail?.details ?? null;
  }
}

function describeStatus(status) {
  if (status === 0) return 'The server cannot be reached. Check your connection and try again.';
  if (status === 404) return 'This is not available on this server.';
  if (status >= 500) return 'The server could not do this right now. Try again in a moment.';
  return `The server refused the request (HTTP ${status}).`;
}

/** Calls the gateway with the tenant's token; a 401 signs out. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${app.token ?? ''}` };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    const error = new ApiError(401, data);
    signOut(error.message);
    throw error;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

async function fetchJson(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new ApiError(response.status, null);
  return response.json();
}

// ---------------------------------------------------------------- connectors

async function loadConnectors() {
  const { connectors } = await api('GET', '/api/connectors');
  app.connectors = new Map(connectors.map((c) => [c.id, c]));
  const list = $('#connectors');
  list.replaceChildren(...connectors.map(connectorCard));
  $('#connectors-loading').hidden = true;
  for (const model of app.connections.values()) renderConnection(model);
}

/** How a connector of typed-in credentials is connected, by its `auth`. */
const MANUAL_KINDS = {
  app_password: 'Connect with an application password',
  api_key: 'Connect with an API key',
  basic: 'Connect with a user name and password',
  oauth2_client_credentials: 'Connect with a client ID and secret',
};

function isOAuth(connector) {
  return connector?.auth === 'oauth2' || connector?.auth === 'oauth1';
}

function connectorName(id) {
  return app.connectors.get(id)?.display_name ?? id;
}

function connectorCard(connector) {
  const card = $('#connector-template').content.firstElementChild.cloneNode(true);
  card.dataset.connector = connector.id;
  $('.connector-name', card).textContent = connector.display_name;
  $('.connector-kind', card).textContent = isOAuth(connector)
    ? `Sign in on ${connector.display_name}'s own page`
    : (MANUAL_KINDS[connector.auth] ?? 'Connect with an application password');
  const streams = connector.streams.map((s) => s.name).join(', ');
  $('.connector-streams', card).textContent = streams ? `Syncs ${streams}` : '';
  const button = $('.connect', card);
  button.setAttribute('aria-label', `Connect ${connector.display_name}`);
  button.addEventListener('click', () => {
    if (isOAuth(connector) && !connector.settings?.length) startOAuth(connector, button);
    else openCredentialsForm(connector);
  });
  const docs = $('.docs', card);
  docs.href = connector.docs_url;
  docs.setAttribute('aria-label', `${connector.display_name} setup guide (opens in a new tab)`);
  return card;
}

/** The authorize route of `connector`, with its settings in the query. */
function authorizePath(connector, settings = {}) {
  const query = new URLSearchParams(settings).toString();
  return `/oauth/authorize/${encodeURIComponent(connector.id)}${query ? `?${query}` : ''}`;
}

/** Asks the gateway for the provider's consent page, then goes there. */
async function startOAuth(connector, button) {
  button.disabled = true;
  hideNotice();
  try {
    const { authorize_url: url } = await api('GET', authorizePath(connector));
    location.assign(url);
  } catch (error) {
    button.disabled = false;
    if (error.status === 401) return;
    const why = error.status === 404 && !error.field ? 'this server does not offer it yet' : unsentence(error.message);
    showNotice(`${connector.display_name} could not be connected: ${why}.`);
  }
}

// ---------------------------------------------------------------- credentials form

/**
 * Opens the connect form: the credentials fields of a connector that
 * takes typed-in credentials, or the settings an OAuth connector asks of
 * each connection before its consent page (a subdomain, a region).
 */
function openCredentialsForm(connector) {
  app.formConnector = connector;
  hideFormError();
  $('#credentials-title').textContent = `Connect ${connector.display_name}`;
  const oauth = isOAuth(connector);
  $('#credentials-intro').textContent = oauth
    ? `Tell us about your ${connector.display_name} account, then sign in on ${connector.display_name}'s own page. All fields are required unless marked optional.`
    : 'All fields are required unless marked optional.';
  // Typed-in credentials come with the entry's settings (a subdomain, a
  // region), which are sent among them.
  const settings = (connector.settings ?? []).map((setting) =>
    formField({ ...setting, kind: setting.secret ? 'password' : 'text' }),
  );
  const fields = oauth ? settings : [...connector.form.map((field) => formField(field)), ...settings];
  if (!oauth) {
    fields.push(
      formField({
        name: 'display_name',
        label: 'Name to show',
        kind: 'text',
        required: false,
        help:
          connector.auth === 'app_password'
            ? 'Optional; the site address is used when empty.'
            : `Optional; ${connector.display_name} is used when empty.`,
      }),
    );
  }
  $('#credentials-fields').replaceChildren(...fields);
  const submit = $('#credentials-submit');
  submit.textContent = oauth ? `Continue to ${connector.display_name}` : 'Connect';
  submit.disabled = false;
  $('#credentials-dialog').showModal();
  $('#credentials-fields input, #credentials-fields select')?.focus();
}

const INPUT_TYPES = { url: 'url', text: 'text', password: 'password', email: 'email' };
const AUTOCOMPLETE = { url: 'url', text: 'off', password: 'new-password', email: 'email' };

/** A select of `allowed` values, with an empty choice when optional. */
function choiceInput(field) {
  const select = document.createElement('select');
  const choices = field.required === false ? ['', ...field.allowed] : field.allowed;
  if (field.required !== false) {
    const prompt = document.createElement('option');
    prompt.value = '';
    prompt.textContent = 'Choose…';
    prompt.disabled = true;
    prompt.selected = true;
    select.append(prompt);
  }
  for (const value of choices) {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = value || '(none)';
    select.append(option);
  }
  return select;
}

function formField(field) {
  const wrapper = document.createElement('div');
  wrapper.className = 'field';
  const id = `field-${field.name}`;
  const label = document.createElement('label');
  label.htmlFor = id;
  label.textContent = field.required === false ? `${field.label} (optional)` : field.label;
  const choice = Array.isArray(field.allowed) && field.allowed.length > 0;
  const input = choice ? choiceInput(field) : document.createElement('input');
  input.id = id;
  input.name = field.name;
  if (!choice) {
    input.type = INPUT_TYPES[field.kind] ?? 'text';
    input.autocomplete = AUTOCOMPLETE[field.kind] ?? 'off';
    input.spellcheck = false;
    if (field.example) input.placeholder = field.example;
  }
  input.required = field.required !== false;
  input.dataset.label = field.label;
  input.dataset.kind = field.kind;
  if (field.pattern) input.dataset.pattern = field.pattern;
  if (field.help) input.dataset.help = field.help;
  const described = [];
  wrapper.append(label, input);
  if (field.help) {
    const help = document.createElement('p');
    help.className = 'help';
    help.id = `${id}-help`;
    help.textContent = field.help;
    wrapper.append(help);
    described.push(help.id);
  }
  const error = document.createElement('p');
  error.className = 'field-error';
  error.id = `${id}-error`;
  error.hidden = true;
  wrapper.append(error);
  described.push(error.id);
  input.setAttribute('aria-describedby', described.join(' '));
  const recheck = () => {
    if (input.getAttribute('aria-invalid') === 'true') setFieldError(input, error, checkField(input));
  };
  input.addEventListener('input', recheck);
  input.addEventListener('change', recheck);
  return wrapper;
}

/** What is wrong with an input's value, in words, or null. */
function checkField(input) {
  const value = input.value.trim();
  const label = input.dataset.label;
  if (!value) {
    if (!input.required) return null;
    return input.tagName === 'SELECT' ? `Choose the ${label.toLowerCase()}.` : `Enter the ${label.toLowerCase()}.`;
  }
  if (input.dataset.kind === 'url') {
    let url = null;
    try {
      url = new URL(value);
    } catch {
      url = null;
    }
    if (!url || !['http:', 'https:'].includes(url.protocol)) {
      return 'Enter the full address, starting with https://, such as https://example.com.';
    }
  }
  if (input.dataset.kind === 'email' && !/^[^\s@]+@[^\s@]+$/.test(value)) {
    return 'Enter an e-mail address, such as name@example.com.';
  }
  if (input.dataset.pattern) {
    let pattern = null;
    try {
      // The whole value must match, as on the server.
      pattern = new RegExp(`^(?:${input.dataset.pattern})$`, 'u');
    } catch {
      pattern = null; // the server checks it anyway
    }
    if (pattern && !pattern.test(value)) {
      const help = input.dataset.help ? ` ${input.dataset.help}` : '';
      return `This does not look like a valid ${label.toLowerCase()}.${help}`;
    }
  }
  return null;
}

function setFieldError(input, element, message) {
  if (message) {
    element.textContent = message;
    element.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  } else {
    element.textContent = '';
    element.hidden = true;
    input.removeAttribute('aria-invalid');
  }
}

function fieldError(input) {
  return document.getElementById(`${input.id}-error`);
}

function showFormError(message) {
  const element = $('#form-error');
  element.textContent = message;
  element.hidden = false;
}

function hideFormError() {
  const element = $('#form-error');
  element.textContent = '';
  element.hidden = true;
}

async function submitCredentials() {
  const connector = app.formConnector;
  if (!connector) return;
  hideFormError();
  const inputs = [...$('#credentials-fields').querySelectorAll('input, select')];
  let firstInvalid = null;
  for (const input of inputs) {
    const message = checkField(input);
    setFieldError(input, fieldError(input), message);
    if (message && !firstInvalid) firstInvalid = input;
  }
  if (firstInvalid) {
    firstInvalid.focus();
    return;
  }
  if (isOAuth(connector)) {
    await submitSettings(connector, inputs);
    return;
  }
  const credentials = {};
  let displayName;
  for (const input of inputs) {
    const value = input.value.trim();
    if (input.name === 'display_name') displayName = value || undefined;
    else if (value) credentials[input.name] = value;
  }
  const submit = $('#credentials-submit');
  submit.disabled = true;
  try {
    const created = await api('POST', '/api/connections', {
      connector: connector.id,
      display_name: displayName,
      credentials,
    });
    $('#credentials-dialog').close();
    const model = upsertModel(created.id, connector.id);
    model.display_name = displayName ?? hostOf(credentials.site_url) ?? connector.display_name;
    if (!model.fromBridge) model.status = { state: created.state ?? 'pending' };
    renderConnection(model);
    announce(`${connector.display_name} added; checking the credentials.`);
    refreshDetails(created.id);
  } catch (error) {
    if (error.status === 401) return;
    showServerErrors(error, inputs);
  } finally {
    submit.disabled = false;
  }
}

/** Starts the consent flow with the settings typed in, or shows why not. */
async function submitSettings(connector, inputs) {
  const settings = {};
  for (const input of inputs) settings[input.name] = input.value.trim();
  const submit = $('#credentials-submit');
  submit.disabled = true;
  try {
    const { authorize_url: url } = await api('GET', authorizePath(connector, settings));
    location.assign(url);
  } catch (error) {
    submit.disabled = false;
    if (error.status === 401) return;
    showServerErrors(error, inputs);
  }
}

/** Puts the API's 4xx answer next to the fields it names. */
function showServerErrors(error, inputs) {
  const byName = new Map(inputs.map((input) => [input.name, input]));
  const problems = [];
  if (error.field) problems.push({ field: error.field, message: error.message });
  if (Array.isArray(error.details)) {
    for (const detail of error.details) if (detail?.field) problems.push(detail);
  } else if (error.details && typeof error.details === 'object') {
    for (const [field, message] of Object.entries(error.details)) problems.push({ field, message });
  }
  let first = null;
  for (const { field, message } of problems) {
    const name = String(field).replace(/^credentials\./, '');
    const input = byName.get(name);
    if (!input) continue;
    setFieldError(input, fieldError(input), humanize(String(message), name, input.dataset.label));
    first ??= input;
  }
  if (first) {
    first.focus();
  } else {
    showFormError(error.message);
  }
}

/** "credentials.username (User name) is required" -> "User name is required." */
function humanize(message, name, label) {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const text = message
    .replace(`credentials.${name} (${label})`, label)
    .replace(`${name} (${label})`, label)
    .replace(new RegExp(`^(credentials\\.)?${escaped}\\b`), label);
  return sentence(text);
}

// ---------------------------------------------------------------- connections

async function loadConnections() {
  const { connections } = await api('GET', '/api/connections');
  for (const view of [...connections].reverse()) applyView(view);
  renderEmpty();
  // The list has each connection's health in brief; the next sync and the
  // token's renewal come from the health endpoint (the first 50 cards).
  for (const view of connections.slice(0, 50)) refreshHealth(view.id);
}

/** A connection as the page keeps it. */
function upsertModel(id, connector) {
  let model = app.connections.get(id);
  if (!model) {
    model = {
      id,
      connector,
      display_name: null,
      account: null,
      status: { state: 'pending' },
      statusAt: [0, 0, ''],
      fromBridge: false,
      last_sync_at: null,
      last_error: null,
      records_total: 0,
      health: null,
      requested: false,
      detailsFor: null,
    };
    app.connections.set(id, model);
  }
  return model;
}

/** Takes what the REST API knows; the bridge's live status wins over it. */
function applyView(view) {
  const model = upsertModel(view.id, view.connector);
  model.display_name = view.display_name;
  model.account = view.account ?? model.account;
  if (view.health) model.health = { ...model.health, ...view.health };
  if (!model.fromBridge) {
    model.status = view.status && view.status.state ? view.status : { state: view.state };
    model.last_sync_at = view.last_sync_at;
    model.last_error = view.last_error;
    model.records_total = view.records_total;
  }
  renderConnection(model);
}

/** Connections whose health is to be read, how many reads run, and
 * until when the gateway asked to wait (429). */
const healthQueue = { waiting: new Set(), running: 0, pausedUntil: 0 };

/** A card's health read this recently is not read again for a list or a
 * snapshot, which come together when the page opens. */
const HEALTH_FRESH_MS = 30_000;

/** How long health reads pause after the gateway answered 429; its
 * budget refills within seconds. */
const HEALTH_BACKOFF_MS = 2_000;

/** The most health reads at once: the tenant's request budget is shared
 * with its other tabs and the platform. */
const HEALTH_READS_AT_ONCE = 3;

/** Reads the connection's whole health (next sync, token renewal) again,
 * a few connections at a time; a connection already waiting is read once,
 * and one read in the last HEALTH_FRESH_MS only when `force` (its status
 * or health changed). */
function refreshHealth(id, force = false) {
  const model = app.connections.get(id);
  if (!force && model?.healthReadAt && Date.now() - model.healthReadAt < HEALTH_FRESH_MS) return;
  if (model) model.healthReadAt = Date.now();
  healthQueue.waiting.add(id);
  pumpHealth();
}

function pumpHealth() {
  const wait = healthQueue.pausedUntil - Date.now();
  if (wait > 0) {
    clearTimeout(healthQueue.timer);
    healthQueue.timer = setTimeout(pumpHealth, wait);
    return;
  }
  while (healthQueue.running < HEALTH_READS_AT_ONCE && healthQueue.waiting.size > 0) {
    const [id] = healthQueue.waiting;
    healthQueue.waiting.delete(id);
    healthQueue.running += 1;
    readHealth(id).finally(() => {
      healthQueue.running -= 1;
      pumpHealth();
    });
  }
}

async function readHealth(id) {
  try {
    const health = await api('GET', `/api/connections/${encodeURIComponent(id)}/health`);
    const model = app.connections.get(id);
    if (!model) return;
    model.health = health;
    renderConnection(model);
  } catch (error) {
    if (error?.status === 429) {
      // Over the tenant's request budget: read it again after a pause,
      // before the others waiting.
      healthQueue.pausedUntil = Date.now() + HEALTH_BACKOFF_MS;
      healthQueue.waiting = new Set([id, ...healthQueue.waiting]);
    }
    // Otherwise the card keeps the health it has; the next status reads it again.
  }
}

async function refreshDetails(id) {
  try {
    const view = await api('GET', `/api/connections/${encodeURIComponent(id)}`);
    applyView(view);
  } catch {
    // The live status still shows; the account name comes with a later event.
  }
}

function applySnapshot(connections) {
  const seen = new Set();
  // The first snapshot comes with the list the page just read; a later
  // one follows a reconnect, after which missed health messages are read.
  app.snapshots = (app.snapshots ?? 0) + 1;
  const reconnected = app.snapshots > 1;
  for (const snap of connections) {
    seen.add(snap.id);
    const model = upsertModel(snap.id, snap.connector);
    const before = model.status.state;
    const lastSync = model.last_sync_at;
    model.display_name = snap.display_name;
    model.status = snap.status;
    // An event older than the snapshot's status that arrives later was overtaken by it.
    model.statusAt = statusOrder(snap.status_at, snap.status_event);
    model.fromBridge = true;
    model.last_sync_at = snap.last_sync_at;
    model.last_error = snap.last_error;
    model.records_total = snap.records_total;
    model.requested = false;
    renderConnection(model);
    if (before !== model.status.state) announceState(model);
    fetchAccountIfMissing(model);
    if (snap.last_sync_at && snap.last_sync_at !== lastSync) dataChanged(model);
    // Health messages are live only: after a (re)connect, read it again.
    refreshHealth(snap.id, reconnected);
  }
  for (const [id, model] of app.connections) {
    if (!seen.has(id)) {
      app.connections.delete(id);
      document.getElementById(rowId(model.id))?.remove();
      if (app.data.connectionId === id) closeDataView();
    }
  }
  renderEmpty();
}

// The status writer's order of a status: its time to the microsecond (as
// PostgreSQL keeps it), then its event id. `[seconds, micros, id]`; a
// missing time sorts first.
function statusOrder(at, id) {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(at || '');
  if (!match) return [0, 0, ''];
  const seconds = Date.parse(match[1] + match[3]);
  const micros = Number((match[2] || '').padEnd(6, '0').slice(0, 6));
  return [Number.isNaN(seconds) ? 0 : seconds, micros, id || ''];
}

function compareOrder(a, b) {
  for (let i = 0; i < 3; i += 1) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

function applyEvent(event) {
  const status = event?.data?.status;
  if (!status || !event.connection) return;
  const known = app.connections.has(event.connection);
  if (!known && status.state === 'disconnected') return;
  const model = upsertModel(event.connection, event.connector);
  const at = statusOrder(event.occurred_at, event.id);
  if (compareOrder(at, model.statusAt) < 0) return; // overtaken by a newer status of a concurrent flow
  const before = model.status.state;
  model.status = status;
  model.statusAt = at;
  model.fromBridge = true;
  if (status.state !== 'pending') model.requested = false;
  if (status.state === 'synced') {
    model.last_sync_at = status.last_sync_at;
    model.records_total = status.records;
    model.last_error = null;
  } else if (status.state === 'partial') {
    model.last_sync_at = status.last_sync_at;
    model.records_total = status.records;
    model.last_error = status.reason;
  } else if ('reason' in status) {
    model.last_error = status.reason;
  }
  renderConnection(model);
  renderEmpty();
  if (before !== status.state || !known) announceState(model);
  if (!known) refreshDetails(model.id);
  else fetchAccountIfMissing(model);
  if (status.state === 'synced' || status.state === 'partial') dataChanged(model);
  if (HEALTH_CHANGES.has(status.state)) refreshHealth(model.id, true);
  if (status.state === 'disconnected' && app.data.connectionId === model.id) closeDataView();
}

function fetchAccountIfMissing(model) {
  const state = model.status.state;
  if (model.account || !['saving', 'syncing', 'synced', 'partial'].includes(state)) return;
  if (model.detailsFor === state) return;
  model.detailsFor = state;
  refreshDetails(model.id);
}

function rowId(id) {
  return `connection-${id}`;
}

function renderEmpty() {
  $('#no-connections').hidden = app.connections.size > 0;
}

function renderConnection(model) {
  let row = document.getElementById(rowId(model.id));
  if (!row) {
    row = $('#connection-template').content.firstElementChild.cloneNode(true);
    row.id = rowId(model.id);
    row.dataset.id = model.id;
    $('.sync-now', row).addEventListener('click', () => syncNow(model.id));
    $('.view-data', row).addEventListener('click', () => openDataView(model.id));
    $('.disconnect', row).addEventListener('click', () => disconnect(model.id));
    $('.reconnect', row).addEventListener('click', (event) => reconnect(model.id, event.currentTarget));
    $('#connections').prepend(row);
  }
  const state = model.status.state;
  const name = connectorName(model.connector);
  row.dataset.state = state;
  $('.connection-title', row).textContent = name;
  const account = model.account?.name;
  $('.connection-account', row).textContent = account
    ? `Account: ${account}${model.display_name && model.display_name !== account ? ` · ${model.display_name}` : ''}`
    : model.display_name ?? '';

  const badge = $('.state-badge', row);
  badge.dataset.state = state;
  badge.textContent = model.requested && !BUSY_STATES.has(state) ? 'Sync requested' : STATE_LABELS[state] ?? state;

  renderProgress(row, model);
  renderLastSync($('.last-sync', row), model.last_sync_at);
  $('.records', row).textContent = model.last_sync_at
    ? `${Number(model.records_total).toLocaleString()} records`
    : 'None yet';

  renderHealth(row, model);

  const error = problem(model, name);
  const errorLine = $('.connection-error', row);
  errorLine.textContent = error ?? '';
  errorLine.hidden = !error;

  const gone = state === 'disconnected';
  const view = $('.view-data', row);
  view.hidden = gone || !model.last_sync_at || !DataView.supports(model.connector);
  view.setAttribute('aria-label', `View ${name} data`);
  const sync = $('.sync-now', row);
  sync.hidden = gone;
  sync.disabled = BUSY_STATES.has(state) || model.requested || state === 'invalid' || state === 'reauth_required';
  sync.setAttribute('aria-label', `Sync ${name} now`);
  const reconnectButton = $('.reconnect', row);
  reconnectButton.hidden = !(state === 'reauth_required' && isOAuth(app.connectors.get(model.connector)));
  reconnectButton.setAttribute('aria-label', `Reconnect ${name}`);
  const disconnectButton = $('.disconnect', row);
  disconnectButton.hidden = gone;
  disconnectButton.setAttribute('aria-label', `Disconnect ${name}`);
  if (app.data.connectionId === model.id) renderDataHead(model);
}

// ---------------------------------------------------------------- data views

/** Shows what connection `id` synced, in place of the grid. */
function openDataView(id) {
  const model = app.connections.get(id);
  if (!model || !DataView.supports(model.connector)) return;
  hideNotice();
  showView('data-view');
  renderDataHead(model);
  app.data.open(id, model.connector);
  $('#data-title').focus();
}

function closeDataView() {
  const id = app.data.connectionId;
  app.data.close();
  if ($('#data-view').hidden) return;
  showView('grid-view');
  if (id) document.getElementById(rowId(id))?.querySelector('.view-data')?.focus();
}

/** The open view's title, account, last sync and Sync now button. */
function renderDataHead(model) {
  const name = connectorName(model.connector);
  $('#data-title').textContent = `${name}: synced data`;
  const account = model.account?.name ?? model.display_name ?? '';
  $('#data-account').textContent = account ? `Account: ${account}` : '';
  renderLastSync($('#data-last-sync'), model.last_sync_at);
  const state = model.status.state;
  const sync = $('#data-sync');
  sync.disabled = BUSY_STATES.has(state) || model.requested || state === 'invalid' || state === 'reauth_required';
  sync.textContent = model.requested || state === 'syncing' ? 'Syncing…' : 'Sync now';
  sync.setAttribute('aria-label', `Sync ${name} now`);
}

/** A sync of `model` completed: an open view of it reads its records again. */
function dataChanged(model) {
  if (app.data.connectionId === model.id) app.data.load();
}

function renderProgress(row, model) {
  const box = $('.progress', row);
  const status = model.status;
  if (status.state !== 'syncing') {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const bar = $('progress', box);
  const records = Number(status.records ?? 0);
  const expected = Number(model.records_total ?? 0);
  if (expected > 0 && records <= expected) {
    // A resync of a known connection: the last total is a fair estimate.
    bar.max = expected;
    bar.value = records;
  } else {
    bar.removeAttribute('value'); // indeterminate
  }
  bar.setAttribute('aria-label', `Sync progress of ${connectorName(model.connector)}`);
  const stream = status.stream ? ` (${status.stream})` : '';
  $('.progress-text', box).textContent = `${records.toLocaleString()} records so far${stream}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function renderLastSync(cell, iso) {
  if (!iso) {
    cell.textContent = 'Never';
    return;
  }
  const time = document.createElement('time');
  time.dateTime = iso;
  const date = new Date(iso);
  time.textContent = Number.isNaN(date.getTime()) ? iso : timeFormat.format(date);
  cell.replaceChildren(time);
}

/** States after which a connection's health has changed. */
const HEALTH_CHANGES = new Set(['synced', 'partial', 'failed', 'reauth_required', 'invalid']);

/** The health line and the next sync of a card, from the health API. */
function renderHealth(row, model) {
  const health = model.health;
  const gone = model.status.state === 'disconnected';
  const fact = $('.health-fact', row);
  fact.hidden = gone || !health;
  const nextFact = $('.next-sync-fact', row);
  nextFact.hidden = gone || !health?.next_sync_at;
  if (!health || gone) return;
  const cell = $('.health', row);
  cell.dataset.degraded = String(Boolean(health.degraded));
  const parts = [];
  const failures = Number(health.consecutive_failures ?? 0);
  if (health.degraded) {
    parts.push(`Degraded: ${failures} failures in a row`);
  } else if (failures > 0) {
    parts.push(`${failures} failure${failures === 1 ? '' : 's'} since the last success`);
  } else if (health.last_ok_at) {
    parts.push('OK');
  }
  const nodes = [];
  const add = (text, iso) => {
    if (nodes.length) nodes.push(' · ');
    nodes.push(text);
    if (iso) nodes.push(timeNode(iso));
  };
  for (const part of parts) add(part);
  if (health.last_ok_at) add('provider last answered ', health.last_ok_at);
  const renews = health.token?.renews_after;
  if (renews) add('token renews after ', renews);
  if (!nodes.length) nodes.push('Not checked yet');
  cell.replaceChildren(...nodes);
  if (health.next_sync_at) $('.next-sync', row).replaceChildren(timeNode(health.next_sync_at));
}

function timeNode(iso) {
  const time = document.createElement('time');
  time.dateTime = iso;
  const date = new Date(iso);
  time.textContent = Number.isNaN(date.getTime()) ? iso : timeFormat.format(date);
  return time;
}

/** What went wrong and what to do about it, or null. */
function problem(model, name) {
  const status = model.status;
  const oauth = isOAuth(app.connectors.get(model.connector));
  switch (status.state) {
    case 'invalid':
      return `${sentence(status.reason)} Check the credentials, then disconnect and connect ${name} again.`;
    case 'reauth_required':
      return oauth
        ? `${sentence(status.reason)} Press Reconnect to give access again.`
        : `${sentence(status.reason)} Disconnect, then connect again with new credentials.`;
    case 'failed':
      return status.retryable
        ? `${sentence(status.reason)} Press Sync now to try again.`
        : `${sentence(status.reason)} Check the account on ${name}'s side, then press Sync now.`;
    case 'retrying': {
      const at = Date.parse(status.next_at);
      const when = Number.isNaN(at) ? 'shortly' : `at ${timeFormat.format(new Date(at))}`;
      return `${sentence(status.reason)} Trying again ${when}.`;
    }
    case 'partial':
      return `${sentence(status.reason)}`;
    case 'synced':
    case 'disconnected':
      return null;
    default:
      return model.last_error ? `Last problem: ${sentence(model.last_error)}` : null;
  }
}

async function syncNow(id) {
  const model = app.connections.get(id);
  if (!model) return;
  model.requested = true;
  renderConnection(model);
  try {
    await api('POST', `/api/connections/${encodeURIComponent(id)}/sync`);
    announce(`Sync of ${connectorName(model.connector)} requested.`);
  } catch (error) {
    model.requested = false;
    renderConnection(model);
    if (error.status !== 401) showNotice(`The sync could not be started: ${unsentence(error.message)}.`);
  }
}

async function disconnect(id) {
  const model = app.connections.get(id);
  if (!model) return;
  const name = connectorName(model.connector);
  const ok = window.confirm(`Disconnect ${name}? Its stored credentials and synced records are deleted.`);
  if (!ok) return;
  try {
    await api('DELETE', `/api/connections/${encodeURIComponent(id)}`);
    model.status = { state: 'disconnected' };
    model.statusAt = statusOrder(new Date().toISOString(), '');
    renderConnection(model);
    announce(`${name} disconnected.`);
  } catch (error) {
    if (error.status !== 401) showNotice(`${name} could not be disconnected: ${unsentence(error.message)}.`);
  }
}

function reconnect(id, button) {
  const model = app.connections.get(id);
  const connector = model && app.connectors.get(model.connector);
  if (connector) startOAuth(connector, button);
}

// ---------------------------------------------------------------- live status

/**
 * The bridge's WebSocket (docs/bridge.md): authenticates in the first
 * message, keeps the position of the last message, and after any close but
 * a refused (4001) or expired (4003) token reconnects with backoff and
 * resumes from that position.
 * When the bridge cannot replay ("too old", "epoch changed") it sends
 * `resync` and a fresh snapshot, which replaces the local state.
 */
class LiveStatus {
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.handlers = handlers;
    this.position = null;
    this.failures = 0;
    this.socket = null;
    this.retryTimer = null;
    this.stableTimer = null;
    this.stopped = false;
    this.retryNow = () => {
      if (!this.socket && !this.stopped) this.connect();
    };
  }

  start() {
    window.addEventListener('online', this.retryNow);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.retryNow);
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    this.socket?.close(1000, 'dashboard closed');
    this.socket = null;
  }

  connect() {
    clearTimeout(this.retryTimer);
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleRetry(null);
      return;
    }
    this.socket = socket;
    socket.addEventListener('open', () => {
      const auth = { type: 'auth', token: this.token };
      if (this.position) auth.since = this.position;
      socket.send(JSON.stringify(auth));
      this.handlers.online();
      // Backoff starts over only once a session has lasted.
      this.stableTimer = setTimeout(() => {
        this.failures = 0;
      }, 5000);
    });
    socket.addEventListener('message', (message) => this.receive(message.data));
    socket.addEventListener('close', (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearTimeout(this.stableTimer);
      if (this.stopped) return;
      if (close.code === 4001) {
        this.stopped = true;
        this.handlers.refused(close.reason);
        return;
      }
      // 4003: the token expired during the session; a new one is needed.
      if (close.code === 4003) {
        this.stopped = true;
        this.handlers.expired();
        return;
      }
      this.handlers.offline();
      this.scheduleRetry(close.code);
    });
  }

  scheduleRetry(code) {
    this.failures += 1;
    // 4010: the bridge is restarting, another may already serve.
    const first = code === 4010 || code === 4002 ? RECONNECT_MIN_MS : RECONNECT_MIN_MS * 2;
    const base = Math.min(RECONNECT_MAX_MS, first * 2 ** (this.failures - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    switch (message.type) {
      case 'snapshot':
        this.handlers.snapshot(message.connections ?? []);
        this.position = message.position;
        break;
      case 'event':
        this.handlers.event(message.event);
        this.position = message.position;
        break;
      case 'health':
        // Live only: no position to keep.
        this.handlers.health?.(message.event);
        break;
      case 'resync':
        // A snapshot follows at once; it replaces everything shown.
        this.position = null;
        break;
      default:
        break;
    }
  }
}

function setLive(state) {
  const live = $('#live');
  live.dataset.state = state;
  $('#live-text').textContent = { online: 'Live', offline: 'Offline', stopped: 'Signed out' }[state] ?? 'Connecting…';
  $('#offline').hidden = state !== 'offline';
}

// ---------------------------------------------------------------- OAuth callback page

async function showCallback() {
  showView('callback-view');
  const params = new URLSearchParams(location.search);
  const connector = params.get('connector') ?? '';
  let name = connector || 'The integration';
  if (app.token && connector) {
    try {
      await loadConnectors();
      name = connectorName(connector);
    } catch {
      // The id is shown instead of the name.
    }
  }
  const title = $('#callback-title');
  const message = $('#callback-message');
  if (params.get('status') === 'connected') {
    title.textContent = `${name} is connected`;
    message.textContent = `Its first sync has started. Taking you back to your integrations…`;
    setTimeout(() => location.replace('/'), CALLBACK_RETURN_MS);
  } else {
    const why = params.get('message');
    title.textContent = `${name} could not be connected`;
    message.textContent = why
      ? `${sentence(why)} You can try again from your integrations.`
      : 'The provider did not say why. You can try again from your integrations.';
  }
  $('#callback-back').focus();
}

// ---------------------------------------------------------------- small helpers

function showNotice(message) {
  const notice = $('#notice');
  notice.textContent = message;
  notice.hidden = false;
}

function hideNotice() {
  const notice = $('#notice');
  notice.textContent = '';
  notice.hidden = true;
}

function announce(message) {
  const announcer = $('#announcer');
  announcer.textContent = '';
  requestAnimationFrame(() => {
    announcer.textContent = message;
  });
}

function announceState(model) {
  const state = model.status.state;
  const name = connectorName(model.connector);
  const extra = ['synced', 'partial'].includes(state)
    ? `, ${Number(model.records_total).toLocaleString()} records`
    : '';
  announce(`${name}: ${STATE_LABELS[state] ?? state}${extra}.`);
}

/** Capitalised, with a full stop. */
function sentence(text) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return '';
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** Lower-case start, no full stop: for use inside a sentence. */
function unsentence(text) {
  const trimmed = String(text ?? '').trim().replace(/[.!?]+$/, '');
  if (!trimmed) return '';
  return /^[A-Z][a-z]/.test(trimmed) ? trimmed[0].toLowerCase() + trimmed.slice(1) : trimmed;
}

function hostOf(url) {
  try {
    return new URL(url).hostname;
  } catch {
    return null;
  }
}

// Data views: what a connection synced, read through the records API
// (GET /api/connections/{id}/records, a page at a time) and shown as a
// table or a chart. Records are provider payloads: everything from them
// goes into the page as text (textContent), links only when they are
// http(s) addresses. Charts are drawn by uPlot (vendor/uPlot.iife.min.js,
// loaded before this module).

/** Records per request (the records API allows up to 1000): small enough
 * that each answer stays quick, large enough that a view needs few. */
const PAGE_SIZE = 200;
/** The most records a view reads of one stream; it says when there are more. */
export const MAX_RECORDS = 5000;
/** Table rows per page of a table. */
const ROWS_PER_PAGE = 50;

const dayFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const numberFormat = new Intl.NumberFormat();

/** An element with properties, attributes (`attrs`) and children. */
function el(tag, props = {}, children = []) {
  const element = document.createElement(tag);
  const { attrs, dataset, ...rest } = props;
  Object.assign(element, rest);
  for (const [name, value] of Object.entries(attrs ?? {})) element.setAttribute(name, value);
  Object.assign(element.dataset, dataset ?? {});
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/** Text of a WordPress "rendered" field: entities decoded, tags dropped.
 * DOMParser builds an inert document: nothing in it runs or loads. */
function plainText(html) {
  const text = String(html ?? '');
  if (!/[<&]/.test(text)) return text;
  return new DOMParser().parseFromString(text, 'text/html').documentElement.textContent ?? '';
}

/** `url` when it is an http(s) address, else null. */
function safeLink(url) {
  try {
    const parsed = new URL(String(url));
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso ?? '') : timeFormat.format(date);
}

function formatNumber(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return digits === undefined
    ? numberFormat.format(value)
    : new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

function toNumber(value) {
  const number = typeof value === 'number' ? value : Number.parseFloat(value);
  return Number.isFinite(number) ? number : 0;
}

/** `YYYY-MM-DD` as seconds since the epoch at midnight UTC, or null. */
function daySeconds(day) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(day ?? ''));
  if (!match) return null;
  return Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) / 1000;
}

/** Reads every record of `stream` (at most MAX_RECORDS), page by page. */
async function readStream(api, id, stream) {
  const records = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ stream, limit: String(PAGE_SIZE) });
    if (cursor) query.set('cursor', cursor);
    const page = await api('GET', `/api/connections/${encodeURIComponent(id)}/records?${query}`);
    records.push(...(page.records ?? []));
    cursor = page.next ?? null;
  } while (cursor && records.length < MAX_RECORDS);
  return { records: records.slice(0, MAX_RECORDS), more: Boolean(cursor) || records.length > MAX_RECORDS };
}

// ---------------------------------------------------------------- controls

let controlCount = 0;

/** A labelled input in the view's control bar. */
function control(label, input) {
  controlCount += 1;
  input.id = `data-control-${controlCount}`;
  return el('div', { className: 'data-control' }, [el('label', { htmlFor: input.id, textContent: label }), input]);
}

function select(options, value, onChange) {
  const element = el('select');
  for (const [optionValue, text] of options) {
    element.append(el('option', { value: optionValue, textContent: text }));
  }
  element.value = value;
  element.addEventListener('change', () => onChange(element.value));
  return element;
}

/** A table inside its own scrolling box, so a narrow screen scrolls the
 * table and not the page. */
function table(caption, columns, rows) {
  const head = el('tr', {}, columns.map((column) => el('th', { scope: 'col', textContent: column })));
  const body = rows.map((cells) =>
    el(
      'tr',
      {},
      cells.map((cell) => (cell instanceof Node ? el('td', {}, [cell]) : el('td', { textContent: String(cell ?? '') }))),
    ),
  );
  return el('div', { className: 'table-scroll', tabIndex: 0, attrs: { role: 'region', 'aria-label': caption } }, [
    el('table', { className: 'data-table' }, [
      el('caption', { className: 'visually-hidden', textContent: caption }),
      el('thead', {}, [head]),
      el('tbody', {}, body),
    ]),
  ]);
}

/** "Showing 1–50 of 252" with Previous and Next. */
function pager(total, page, onPage) {
  const pages = Math.max(1, Math.ceil(total / ROWS_PER_PAGE));
  const first = total === 0 ? 0 : page * ROWS_PER_PAGE + 1;
  const last = Math.min(total, (page + 1) * ROWS_PER_PAGE);
  const previous = el('button', { type: 'button', textContent: 'Previous', disabled: page === 0 });
  const next = el('button', { type: 'button', textContent: 'Next', disabled: page + 1 >= pages });
  previous.addEventListener('click', () => onPage(page - 1));
  next.addEventListener('click', () => onPage(page + 1));
  return el('div', { className: 'pager' }, [
    el('p', { className: 'pager-text', textContent: `Showing ${first}–${last} of ${formatNumber(total)}` }),
    el('div', { className: 'pager-buttons' }, [previous, next]),
  ]);
}

// ---------------------------------------------------------------- tables

const wordpress = {
  streams: ['posts', 'pages'],
  controls(view, rerender) {
    const search = el('input', {
      type: 'search',
      value: view.state.search ?? '',
      placeholder: 'Words in the title',
      autocomplete: 'off',
    });
    search.addEventListener('input', () => {
      view.state.search = search.value;
      view.state.page = 0;
      rerender();
    });
    return [control('Search posts and pages', search)];
  },
  render(view) {
    const items = [...view.data.posts.records, ...view.data.pages.records].map((record) => ({
      id: record.external_id,
      title: plainText(record.payload?.title?.rendered) || '(no title)',
      type: record.payload?.type === 'page' || record.stream === 'pages' ? 'Page' : 'Post',
      status: String(record.payload?.status ?? ''),
      modified: record.payload?.modified_gmt ? `${record.payload.modified_gmt}Z` : record.updated_at,
      link: safeLink(record.payload?.link),
    }));
    items.sort((a, b) => String(b.modified).localeCompare(String(a.modified)) || a.id.localeCompare(b.id));
    const query = (view.state.search ?? '').trim().toLowerCase();
    const shown = query ? items.filter((item) => item.title.toLowerCase().includes(query)) : items;
    const page = clampPage(view, shown.length);
    const rows = shown.slice(page * ROWS_PER_PAGE, (page + 1) * ROWS_PER_PAGE).map((item) => [
      item.title,
      item.type,
      item.status,
      el('time', { dateTime: item.modified ?? '', textContent: formatTime(item.modified) }),
      item.link
        ? el('a', { href: item.link, textContent: item.link, target: '_blank', rel: 'noopener noreferrer' })
        : '',
    ]);
    const parts = [];
    if (shown.length === 0) {
      parts.push(el('p', { className: 'empty', textContent: query ? 'No post or page matches the search.' : 'No posts or pages synced yet.' }));
    } else {
      parts.push(table('Posts and pages', ['Title', 'Type', 'Status', 'Modified', 'Link'], rows));
    }
    parts.push(pager(shown.length, page, (next) => view.setPage(next)));
    return {
      parts,
      summary: `${formatNumber(view.data.posts.records.length)} posts and ${formatNumber(view.data.pages.records.length)} pages`,
    };
  },
};

const fluentcrm = {
  streams: ['subscribers', 'lists'],
  controls(view, rerender) {
    const lists = listTitles(view);
    const options = [['', 'All lists'], ...[...lists].map(([id, title]) => [id, title])];
    const current = lists.has(view.state.list) ? view.state.list : '';
    view.state.list = current;
    const choose = select(options, current, (value) => {
      view.state.list = value;
      view.state.page = 0;
      rerender();
    });
    return [control('List', choose)];
  },
  render(view) {
    const lists = listTitles(view);
    const subscribers = view.data.subscribers.records.map((record) => {
      const p = record.payload ?? {};
      const member = Array.isArray(p.lists) ? p.lists.map((list) => String(list?.id ?? list)) : [];
      const name = p.full_name || [p.first_name, p.last_name].filter(Boolean).join(' ');
      return {
        id: record.external_id,
        name: String(name ?? ''),
        email: String(p.email ?? ''),
        status: String(p.status ?? ''),
        lists: member,
      };
    });
    subscribers.sort((a, b) => a.name.localeCompare(b.name) || a.email.localeCompare(b.email));
    const wanted = view.state.list;
    const shown = wanted ? subscribers.filter((s) => s.lists.includes(wanted)) : subscribers;
    const page = clampPage(view, shown.length);
    const rows = shown.slice(page * ROWS_PER_PAGE, (page + 1) * ROWS_PER_PAGE).map((s) => [
      s.name,
      s.email,
      s.status,
      s.lists.map((id) => lists.get(id) ?? `List ${id}`).join(', '),
    ]);
    const parts = [];
    if (shown.length === 0) {
      parts.push(el('p', { className: 'empty', textContent: wanted ? 'No subscriber is on this list.' : 'No subscribers synced yet.' }));
    } else {
      parts.push(table('Subscribers', ['Name', 'Email', 'Status', 'Lists'], rows));
    }
    parts.push(pager(shown.length, page, (next) => view.setPage(next)));
    return {
      parts,
      summary: `${formatNumber(subscribers.length)} subscribers on ${formatNumber(lists.size)} lists`,
    };
  },
};

/** The synced lists: id to title. */
function listTitles(view) {
  const lists = new Map();
  for (const record of view.data?.lists?.records ?? []) {
    lists.set(String(record.external_id), String(record.payload?.title ?? `List ${record.external_id}`));
  }
  return lists;
}

const trello = {
  streams: ['boards', 'cards'],
  controls() {
    return [];
  },
  render(view) {
    const cardsByBoard = new Map();
    for (const record of view.data.cards.records) {
      const board = String(record.payload?.idBoard ?? '');
      if (!cardsByBoard.has(board)) cardsByBoard.set(board, []);
      cardsByBoard.get(board).push(record.payload ?? {});
    }
    const boards = view.data.boards.records
      .map((record) => ({ id: String(record.external_id), payload: record.payload ?? {} }))
      .sort((a, b) => String(a.payload.name ?? '').localeCompare(String(b.payload.name ?? '')));
    const parts = boards.map(({ id, payload }) => {
      const cards = (cardsByBoard.get(id) ?? []).sort(
        (a, b) => toNumber(a.pos) - toNumber(b.pos) || String(a.name ?? '').localeCompare(String(b.name ?? '')),
      );
      const name = String(payload.name ?? id);
      const link = safeLink(payload.url);
      const heading = el('h3', {}, [
        link ? el('a', { href: link, textContent: name, target: '_blank', rel: 'noopener noreferrer' }) : name,
      ]);
      const count = el('p', { className: 'muted', textContent: `${formatNumber(cards.length)} open cards` });
      const rows = cards.map((card) => [
        String(card.name ?? ''),
        card.due ? formatTime(card.due) : '',
        card.dateLastActivity ? formatTime(card.dateLastActivity) : '',
      ]);
      const body = cards.length
        ? table(`Cards of ${name}`, ['Card', 'Due', 'Last activity'], rows)
        : el('p', { className: 'empty', textContent: 'No open cards.' });
      return el('section', { className: 'board', dataset: { board: id } }, [heading, count, body]);
    });
    if (parts.length === 0) parts.push(el('p', { className: 'empty', textContent: 'No boards synced yet.' }));
    return {
      parts,
      summary: `${formatNumber(boards.length)} boards with ${formatNumber(view.data.cards.records.length)} cards`,
    };
  },
};

function clampPage(view, total) {
  const pages = Math.max(1, Math.ceil(total / ROWS_PER_PAGE));
  view.state.page = Math.min(Math.max(0, view.state.page ?? 0), pages - 1);
  return view.state.page;
}

// ---------------------------------------------------------------- charts

/**
 * A daily chart: the records of `stream` grouped by `group` (a property,
 * an ad account, an organization; a picker when there are several), one
 * line per series, between two dates the viewer picks.
 */
function dailyChart({ stream, group, groupLabel, groupName, series, noun }) {
  return {
    streams: [stream],
    controls(view, rerender) {
      const groups = groupsOf(view, stream, group, groupName);
      const controls = [];
      if (!groups.has(view.state.group)) view.state.group = groups.keys().next().value ?? '';
      if (groups.size > 1) {
        controls.push(
          control(
            groupLabel,
            select([...groups], view.state.group, (value) => {
              view.state.group = value;
              rerender();
            }),
          ),
        );
      }
      const days = view.data[stream].records.map((r) => String(r.payload?.date ?? '')).filter((d) => daySeconds(d) !== null).sort();
      const first = days[0] ?? '';
      const last = days.at(-1) ?? '';
      const from = el('input', { type: 'date', min: first, max: last, value: view.state.from ?? first });
      const to = el('input', { type: 'date', min: first, max: last, value: view.state.to ?? last });
      // A range the viewer chose is kept across reloads; the default one
      // grows with the data.
      const change = () => {
        view.state.from = from.value || null;
        view.state.to = to.value || null;
        rerender();
      };
      from.addEventListener('change', change);
      to.addEventListener('change', change);
      controls.push(control('From', from), control('To', to));
      return controls;
    },
    render(view) {
      const rows = view.data[stream].records
        .map((record) => record.payload ?? {})
        .filter((p) => String(p[group] ?? '') === view.state.group)
        .map((p) => ({ day: String(p.date ?? ''), at: daySeconds(p.date), payload: p }))
        .filter((row) => row.at !== null);
      const all = rows.map((r) => r.day).sort();
      const from = view.state.from ?? all[0] ?? '';
      const to = view.state.to ?? all.at(-1) ?? '';
      if (from && to && from > to) {
        return { parts: [el('p', { className: 'form-error', attrs: { role: 'alert' }, textContent: 'The start date is after the end date: pick a start on or before the end.' })], summary: '' };
      }
      const inRange = rows.filter((row) => (!from || row.day >= from) && (!to || row.day <= to)).sort((a, b) => a.at - b.at);
      if (inRange.length === 0) {
        return { parts: [el('p', { className: 'empty', textContent: `No ${noun} in this range.` })], summary: '' };
      }
      const x = inRange.map((row) => row.at);
      const columns = series.map((s) => inRange.map((row) => s.value(row.payload)));
      const totals = series.map((s, i) => ({ label: s.total ?? s.label, value: columns[i].reduce((sum, v) => sum + v, 0), s }));
      const facts = el(
        'dl',
        { className: 'totals' },
        totals.map(({ label, value, s }) =>
          el('div', { dataset: { series: s.key } }, [
            el('dt', { textContent: label }),
            el('dd', { textContent: s.format ? s.format(value, inRange[0].payload) : formatNumber(value) }),
          ]),
        ),
      );
      const box = el('div', { className: 'chart', attrs: { role: 'figure', 'aria-label': `${series.map((s) => s.label).join(', ')} per day, ${dayFormat.format(new Date(x[0] * 1000))} to ${dayFormat.format(new Date(x.at(-1) * 1000))}` } });
      view.drawAfterMount.push(() => drawChart(view, box, x, columns, series, inRange[0].payload));
      return {
        parts: [facts, box],
        summary: `${formatNumber(inRange.length)} days from ${dayFormat.format(new Date(x[0] * 1000))} to ${dayFormat.format(new Date(x.at(-1) * 1000))}`,
      };
    },
  };
}

function groupsOf(view, stream, group, groupName) {
  const groups = new Map();
  for (const record of view.data[stream].records) {
    const key = String(record.payload?.[group] ?? '');
    if (!groups.has(key)) groups.set(key, groupName(record.payload ?? {}));
  }
  return new Map([...groups].sort((a, b) => a[1].localeCompare(b[1])));
}

const COLOURS = ['#1d5fd1', '#c2410c', '#17693a', '#7c3aed'];

function drawChart(view, box, x, columns, series, sample) {
  const Plot = window.uPlot;
  if (!Plot) {
    box.replaceChildren(el('p', { className: 'form-error', textContent: 'The chart could not be drawn: its script did not load. Reload the page.' }));
    return;
  }
  const width = () => Math.max(240, Math.floor(box.clientWidth));
  const scales = { x: { time: true } };
  const axes = [{}];
  const usedScales = [...new Set(series.map((s) => s.scale ?? 'count'))];
  usedScales.forEach((scale, i) => {
    scales[scale] = { auto: true };
    axes.push({
      scale,
      side: i === 0 ? 3 : 1,
      grid: { show: i === 0 },
      size: 60,
      values: (u, ticks) => ticks.map((t) => formatNumber(t)),
    });
  });
  const options = {
    width: width(),
    height: 300,
    tzDate: (ts) => Plot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales,
    axes,
    series: [
      { label: 'Day', value: (u, ts) => (ts === null || ts === undefined ? '–' : dayFormat.format(new Date(ts * 1000))) },
      ...series.map((s, i) => ({
        label: s.label,
        scale: s.scale ?? 'count',
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        points: { show: x.length <= 62 },
        value: (u, v) => (v === null || v === undefined ? '–' : s.format ? s.format(v, sample) : formatNumber(v)),
      })),
    ],
    legend: { live: true },
  };
  const chart = new Plot(options, [x, ...columns], box);
  view.charts.push(chart);
  const resize = new ResizeObserver(() => chart.setSize({ width: width(), height: 300 }));
  resize.observe(box);
  view.observers.push(resize);
}

function money(value, sample) {
  const currency = /^[A-Z]{3}$/.test(String(sample?.currency ?? '')) ? sample.currency : null;
  if (!currency) return formatNumber(value, 2);
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(value);
  } catch {
    return `${formatNumber(value, 2)} ${currency}`;
  }
}

const googleAnalytics = dailyChart({
  stream: 'daily_metrics',
  group: 'property',
  groupLabel: 'Property',
  groupName: (p) => String(p.property ?? '').replace(/^properties\//, 'Property '),
  noun: 'days',
  series: [
    { key: 'sessions', label: 'Sessions', value: (p) => toNumber(p.sessions) },
    { key: 'users', label: 'Users', value: (p) => toNumber(p.totalUsers) },
    { key: 'pageviews', label: 'Pageviews', value: (p) => toNumber(p.screenPageViews) },
  ],
});

const meta = dailyChart({
  stream: 'ad_insights',
  group: 'account',
  groupLabel: 'Ad account',
  groupName: (p) => (p.account_name ? `${p.account_name} (${p.account})` : String(p.account ?? '')),
  noun: 'insights',
  series: [
    { key: 'spend', label: 'Spend', scale: 'money', value: (p) => toNumber(p.numbers?.spend ?? p.spend), format: money },
    { key: 'impressions', label: 'Impressions', value: (p) => toNumber(p.numbers?.impressions ?? p.impressions) },
    { key: 'clicks', label: 'Clicks', value: (p) => toNumber(p.numbers?.clicks ?? p.clicks) },
  ],
});

const linkedin = dailyChart({
  stream: 'follower_statistics',
  group: 'organization',
  groupLabel: 'Organization',
  groupName: (p) => String(p.organization ?? '').replace(/^urn:li:organization:/, 'Organization '),
  noun: 'follower statistics',
  series: [
    { key: 'organic', label: 'Organic follower gain', total: 'Organic followers gained', value: (p) => toNumber(p.organicFollowerGain) },
    { key: 'paid', label: 'Paid follower gain', total: 'Paid followers gained', value: (p) => toNumber(p.paidFollowerGain) },
  ],
});

const VIEWS = {
  wordpress,
  fluentcrm,
  trello,
  'google-analytics': googleAnalytics,
  meta,
  linkedin,
};

// ---------------------------------------------------------------- the view

/**
 * The open data view, at most one. `api` calls the gateway with the
 * tenant's token; `elements` are the view's parts of the page.
 */
export class DataView {
  constructor(api, elements) {
    this.api = api;
    this.elements = elements;
    this.current = null;
    this.loading = false;
    this.again = false;
  }

  /** Whether connections of `connector` have a view. */
  static supports(connector) {
    return Object.hasOwn(VIEWS, connector);
  }

  /** The connection shown, or null. */
  get connectionId() {
    return this.current?.id ?? null;
  }

  open(id, connector) {
    this.close();
    const view = {
      id,
      connector,
      spec: VIEWS[connector],
      state: {},
      data: null,
      charts: [],
      observers: [],
      drawAfterMount: [],
      controlsShown: false,
      setPage: null,
    };
    view.setPage = (page) => {
      view.state.page = page;
      this.render(view);
    };
    this.current = view;
    this.elements.controls.replaceChildren();
    this.elements.body.replaceChildren();
    this.elements.root.dataset.connector = connector;
    this.elements.root.dataset.connection = id;
    return this.load();
  }

  close() {
    if (this.current) this.dispose(this.current);
    this.current = null;
    this.elements.controls.replaceChildren();
    this.elements.body.replaceChildren();
    this.elements.status.textContent = '';
    delete this.elements.root.dataset.loaded;
  }

  /** Reads the data again, keeping what the viewer chose; a call while a
   * load runs makes one more load afterwards. */
  async load() {
    const view = this.current;
    if (!view) return;
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    this.elements.root.setAttribute('aria-busy', 'true');
    if (!view.data) this.elements.status.textContent = 'Loading the synced records…';
    try {
      const data = {};
      for (const stream of view.spec.streams) data[stream] = await readStream(this.api, view.id, stream);
      if (this.current !== view) return;
      view.data = data;
      view.loads = (view.loads ?? 0) + 1;
      this.render(view, true);
    } catch (error) {
      if (this.current === view && error.status !== 401) {
        this.elements.status.textContent = `The synced records could not be loaded: ${String(error.message ?? error).replace(/\.$/, '')}.`;
      }
    } finally {
      this.loading = false;
      this.elements.root.removeAttribute('aria-busy');
      if (this.again) {
        this.again = false;
        this.load();
      }
    }
  }

  /** Draws the controls (when the data changed) and the body. */
  render(view, fresh = false) {
    if (this.current !== view || !view.data) return;
    if (fresh) {
      const focused = this.elements.controls.contains(document.activeElement) ? document.activeElement : null;
      const focusLabel = focused ? this.elements.controls.querySelector(`label[for="${focused.id}"]`)?.textContent : null;
      this.elements.controls.replaceChildren(...view.spec.controls(view, () => this.render(view)));
      // Keep the viewer's place when a live reload redraws the controls.
      if (focusLabel) {
        for (const label of this.elements.controls.querySelectorAll('label')) {
          if (label.textContent === focusLabel) document.getElementById(label.htmlFor)?.focus();
        }
      }
    }
    this.dispose(view);
    const { parts, summary } = view.spec.render(view);
    this.elements.body.replaceChildren(...parts);
    for (const draw of view.drawAfterMount.splice(0)) draw();
    const more = Object.values(view.data).some((stream) => stream.more);
    this.elements.status.textContent = `${summary}${summary ? '.' : ''}${more ? ` Only the first ${formatNumber(MAX_RECORDS)} records of a stream are shown.` : ''}`;
    this.elements.root.dataset.loaded = String(view.loads);
  }

  dispose(view) {
    for (const chart of view.charts.splice(0)) chart.destroy();
    for (const observer of view.observers.splice(0)) observer.disconnect();
    view.drawAfterMount = [];
  }
}

// The dashboard page: follows one system (or two, side by side) through Server-Sent Events
// from its own server, draws what each snapshot says, and sends the controls back.
//
// What the server sends is described in crates/dashboard/src/snapshot.rs; this file only
// draws it. Everything goes to this page's own origin: a second system is reached through
// `?peer=` on this server's routes, so the page needs no cross-origin access.

import { LineChart, formatNumber } from './charts.js';

const SERVICES = ['account', 'order', 'payment', 'loyalty', 'stats'];
const COLORS = {
  account: '#9aa0a6', order: '#4e79a7', payment: '#f28e2b', loyalty: '#59a14f', stats: '#e15759',
  all: '#202124', offered: '#9aa0a6', acked: '#1a73e8', p50: '#1a73e8', p99: '#d93025',
};
// Snapshots kept for the charts: two minutes at two a second (the chart's span).
const HISTORY_MAX = 240;
const CHART_SPAN_MS = 120000;
// The slider's rate goes to the server this long after the last move, so dragging sends one
// request, not hundreds.
const SLIDER_DEBOUNCE_MS = 150;
// After the user moves the slider, snapshots do not move it back for this long (a snapshot
// may still carry the old rate).
const SLIDER_HOLD_MS = 3000;
// The slider moves in this many steps, quadratically: the low rates, where most of the
// interest is, get most of its travel (200 orders/s is a fifth of the way, not a
// twenty-fifth).
const SLIDER_STEPS = 1000;
// A clicked order's timeline is read again this often while some service has not applied
// it yet, for at most this long: past a cron tick or two, and a busy system's backlog.
const TIMELINE_REFRESH_MS = 700;
const TIMELINE_FOLLOW_MS = 30000;
const PRESETS = [0, 50, 200, 500, 1000, 2000, 5000];
// How long to wait before opening a new event stream after one was refused.
const RECONNECT_MS = 2000;

const query = new URLSearchParams(location.search);
// The token travels in the fragment, which the browser never sends in a request line.
const fragment = new URLSearchParams(location.hash.slice(1));
const token = fragment.get('token') || '';
const compareToken = fragment.get('compare_token') || token;

// Said beside a control that would work with the token.
const NEEDS_TOKEN = 'needs the dashboard token: open the dashboard link `converge serve` or `converge up` printed (…/dashboard#token=…)';

const systems = [];
let rateMax = 5000;
let lastUserMove = 0;

// ---- helpers ------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    // Through the CSSOM: the Content-Security-Policy refuses inline style attributes.
    else if (k === 'style') node.style.cssText = v;
    else if (k.includes('-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function ms(v) {
  if (v == null || !Number.isFinite(v)) return '–';
  if (v < 10) return `${v.toFixed(2)} ms`;
  if (v < 100) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 10000) return `${(v / 1000).toFixed(2)} s`;
  return `${(v / 1000).toFixed(1)} s`;
}

const rateAt = (position) => Math.round(rateMax * (position / SLIDER_STEPS) ** 2);
const positionOf = (rate) => Math.round(Math.sqrt(rate / rateMax) * SLIDER_STEPS);

function perSecond(v) {
  return v == null || !Number.isFinite(v) ? '–' : v >= 100 ? Math.round(v).toString() : v.toFixed(1);
}

function count(v) {
  return v == null ? '–' : String(v);
}

function when(atMs) {
  return atMs ? new Date(atMs).toLocaleTimeString() : '–';
}

// A span of time, to the second: "45 s", "3 min 12 s", "2 h 5 min".
function duration(spanMs) {
  const s = Math.max(0, Math.round(spanMs / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function withPeer(path, system) {
  if (!system.peer) return path;
  return `${path}${path.includes('?') ? '&' : '?'}peer=${encodeURIComponent(system.peer)}`;
}

function setText(root, selector, text) {
  const node = root.querySelector(selector);
  if (node && node.textContent !== text) node.textContent = text;
}

// A metric's figure, with its raw value in data-value for whoever reads the page (tests).
function setFigure(node, text, raw) {
  if (!node) return;
  if (node.textContent !== text) node.textContent = text;
  node.dataset.value = raw == null || !Number.isFinite(raw) ? '' : String(raw);
}

function status(message, isError = false) {
  const node = document.getElementById('control-status');
  node.textContent = message;
  node.classList.toggle('error', isError);
}

// A control request to `system`'s dashboard, with its token; resolves to the answer's JSON
// or throws with the server's error.
async function request(system, method, path, body) {
  const response = await fetch(withPeer(path, system), {
    method,
    headers: { 'content-type': 'application/json', 'x-dashboard-token': system.token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try { message = JSON.parse(text).error; } catch { /* not JSON: show as is */ }
    throw new Error(`${system.name}: ${message}`);
  }
  return text ? JSON.parse(text) : null;
}

const post = (system, path, body) => request(system, 'POST', path, body);

// ---- one followed system ----------------------------------------------------------------

function addSystem(peer, systemToken) {
  const template = document.getElementById('system-template');
  const root = template.content.firstElementChild.cloneNode(true);
  const index = systems.length;
  root.id = `system-${index}`;
  root.dataset.system = peer ? 'peer' : 'self';
  document.getElementById('systems').append(root);
  const charts = {};
  for (const canvas of root.querySelectorAll('canvas[data-chart]')) {
    const kind = canvas.dataset.chart;
    charts[kind] = new LineChart(canvas, kind === 'visibility'
      ? { x: 'category', labels: [], yMax: 1, yFormat: (v) => `${Math.round(v * 100)}%` }
      : { x: 'time', spanMs: CHART_SPAN_MS });
  }
  const system = {
    index, peer, root, charts, token: systemToken, name: peer || location.origin,
    history: [], last: null, timeline: null, authorized: false,
    // Dead letters whose body the user opened: "service/id" -> the body, pretty-printed.
    bodies: new Map(),
  };
  systems.push(system);
  buildServiceRows(system);
  buildOperateRows(system);
  connect(system);
  checkToken(system);
  return system;
}

function buildServiceRows(system) {
  const body = system.root.querySelector('table.services tbody');
  for (const name of SERVICES) {
    const row = el('tr', { 'data-service': name },
      el('th', { scope: 'row' }, el('span', { class: 'swatch', style: `background:${COLORS[name]}` }), name),
      el('td', { 'data-field': 'state' },
        el('span', { class: 'pill state', text: '–' }),
        el('span', { class: 'since' }),
        el('div', { class: 'last-error' })));
    for (const field of ['lag-p50', 'lag-p99', 'lag-max', 'applied-per-s', 'backlog', 'in-doubt', 'dead-letters']) {
      row.append(el('td', { 'data-field': field, class: 'num', text: '–' }));
    }
    body.append(row);
  }
}

function connect(system) {
  const source = new EventSource(withPeer('/dashboard/events', system));
  const connection = system.root.querySelector('[data-field=connection]');
  source.addEventListener('open', () => {
    connection.textContent = 'live';
    connection.className = 'pill ok';
  });
  // EventSource reconnects by itself after a dropped connection (the server asks for a
  // retry after 2 s), but gives up on an answer that is not an event stream, such as the
  // 502 this server gives while a followed system is down: then start over by hand.
  source.addEventListener('error', () => {
    connection.textContent = 'reconnecting…';
    connection.className = 'pill warn';
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => connect(system), RECONNECT_MS);
    }
  });
  source.addEventListener('snapshot', (event) => {
    const snapshot = JSON.parse(event.data);
    system.last = snapshot;
    system.history.push(snapshot);
    if (system.history.length > HISTORY_MAX) system.history.shift();
    render(system, snapshot);
  });
}

async function checkToken(system) {
  if (!system.token) {
    system.authorized = false;
    updateAuth();
    return;
  }
  try {
    const response = await fetch(withPeer('/dashboard/api/auth', system), {
      headers: { 'x-dashboard-token': system.token },
    });
    system.authorized = response.status === 204;
  } catch {
    system.authorized = false;
  }
  updateAuth();
}

function updateAuth() {
  const badge = document.getElementById('auth');
  const all = systems.every((s) => s.authorized);
  const any = systems.some((s) => s.authorized);
  if (all) {
    badge.textContent = 'controls unlocked';
    badge.className = 'pill ok';
  } else if (any) {
    badge.textContent = 'controls: some systems refused the token';
    badge.className = 'pill warn';
    badge.title = 'Add #compare_token=… for the other system, or start both with the same CONVERGE_DASHBOARD_TOKEN';
  } else {
    badge.textContent = 'read-only (no token)';
    badge.className = 'pill';
    badge.title = 'Open the link `converge serve` printed: …/dashboard#token=…';
  }
  const slider = document.getElementById('rate-slider');
  const input = document.getElementById('rate-input');
  slider.disabled = input.disabled = !any;
  for (const button of document.querySelectorAll('#presets button')) button.disabled = !any;
  for (const system of systems) {
    renderOperate(system);
    if (system.last) renderDeadLetters(system, system.last);
  }
}

// ---- drawing a snapshot -----------------------------------------------------------------

function render(system, s) {
  const root = system.root;
  const label = root.querySelector('[data-field=label]');
  if (label.textContent !== s.label) {
    label.textContent = s.label;
    label.className = `mode-badge mode-${s.label}`;
  }
  setText(root, '[data-field=url]', s.gateway_url);
  const quiet = root.querySelector('[data-field=quiet]');
  quiet.textContent = s.quiet == null ? '' : s.quiet ? 'quiet: services agree' : 'catching up';
  quiet.className = `pill ${s.quiet ? 'ok' : 'warn'}`;
  const errors = root.querySelector('[data-field=errors]');
  errors.hidden = s.errors.length === 0;
  errors.textContent = s.errors.join(' · ');

  const figure = (metric, text, raw) => setFigure(root.querySelector(`[data-metric=${metric}] .value`), text, raw);
  figure('acked-per-s', perSecond(s.load.acked_per_s), s.load.acked_per_s);
  figure('ack-p50', ms(s.load.ack_p50_ms), s.load.ack_p50_ms);
  figure('ack-p99', ms(s.load.ack_p99_ms), s.load.ack_p99_ms);
  figure('system-acked-per-s', perSecond(s.orders.acked_per_s), s.orders.acked_per_s);
  figure('order-ack-p99', ms(s.orders.ack_p99_ms), s.orders.ack_p99_ms);
  // Shown once Order exports an acknowledgement-latency histogram; an empty tile would read
  // as broken.
  root.querySelector('[data-metric=order-ack-p99]').hidden = s.orders.ack_p99_ms == null;
  figure('in-flight', count(s.load.in_flight), s.load.in_flight);
  const phase = s.load.phase === 'running' && s.load.behind_ms > 100
    ? `behind by ${ms(s.load.behind_ms)}`
    : s.load.phase.replace('_', ' ') + (s.load.detail ? `: ${s.load.detail}` : '');
  setText(root, '[data-field=phase]', phase);

  for (const service of s.services) {
    const row = root.querySelector(`tr[data-service=${service.name}]`);
    if (!row) continue;
    renderState(row.querySelector('[data-field=state]'), service, s.at_ms);
    setFigure(row.querySelector('[data-field=lag-p50]'), ms(service.lag_p50_ms), service.lag_p50_ms);
    setFigure(row.querySelector('[data-field=lag-p99]'), ms(service.lag_p99_ms), service.lag_p99_ms);
    setFigure(row.querySelector('[data-field=lag-max]'), ms(service.lag_max_ms), service.lag_max_ms);
    setFigure(row.querySelector('[data-field=applied-per-s]'), perSecond(service.applied_per_s), service.applied_per_s);
    setFigure(row.querySelector('[data-field=backlog]'), count(service.backlog), service.backlog);
    setFigure(row.querySelector('[data-field=in-doubt]'), count(service.in_doubt), service.in_doubt);
    setFigure(row.querySelector('[data-field=dead-letters]'), count(service.dead_letters), service.dead_letters);
  }

  renderCharts(system, s);
  renderRecent(system, s);
  renderOperate(system);
  renderDeadLetters(system, s);

  // The slider follows the first system's limits.
  if (system.index === 0) {
    if (s.limits.rate_max_per_s !== rateMax) {
      rateMax = s.limits.rate_max_per_s;
      document.getElementById('rate-input').max = rateMax;
    }
    if (Date.now() - lastUserMove > SLIDER_HOLD_MS) showRate(s.load.rate_per_s);
  }
}

// A service's state, since when (the service's word when it is stuck, else when this page
// saw it change), and its last error: in red while stuck, muted once it recovered (services
// keep their last error).
function renderState(cell, service, nowMs) {
  const pill = cell.querySelector('.pill');
  if (pill.textContent !== service.state) pill.textContent = service.state;
  pill.className = `pill state state-${service.state}`;
  const since = cell.querySelector('.since');
  const span = duration(nowMs - service.state_since_ms);
  setText(cell, '.since', service.state === 'stuck' ? ` since ${when(service.state_since_ms)} (${span})` : ` for ${span}`);
  since.title = `since ${new Date(service.state_since_ms).toLocaleString()}, ${service.state_since_source === 'service'
    ? 'as the service says' : 'as this page saw it change (to within a snapshot)'}`;
  const error = cell.querySelector('.last-error');
  const text = service.last_error
    ? (service.state === 'stuck' ? service.last_error : `last error (recovered): ${service.last_error}`) : '';
  if (error.textContent !== text) error.textContent = text;
  error.title = text;
  error.classList.toggle('bad', service.state === 'stuck');
}

function renderCharts(system, s) {
  const h = system.history;
  const now = s.at_ms;
  const series = (name, color, pick, extra = {}) => ({ name, color, points: h.map((x) => [x.at_ms, pick(x)]), ...extra });
  system.charts.rate.draw([
    series('offered', COLORS.offered, (x) => x.load.rate_per_s, { dashed: true }),
    series('acknowledged', COLORS.acked, (x) => x.load.acked_per_s),
  ], now);
  system.charts.latency.draw([
    series('p50', COLORS.p50, (x) => x.load.ack_p50_ms),
    series('p99', COLORS.p99, (x) => x.load.ack_p99_ms),
  ], now);
  const perService = (pick) => SERVICES.filter((n) => n !== 'account').map((name) =>
    series(name, COLORS[name], (x) => {
      const row = x.services.find((r) => r.name === name);
      return row ? pick(row) : null;
    }));
  system.charts.lag.draw(perService((r) => r.lag_p99_ms), now);
  system.charts.backlog.draw(perService((r) => r.backlog), now);

  const v = s.visibility;
  const chart = system.charts.visibility;
  chart.options.labels = v.delays_ms.map((d) => (d >= 1000 ? `${d / 1000}s` : `${d}`));
  chart.draw(v.samples === 0 ? [] : v.curves.map((c) => ({
    name: c.service, color: COLORS[c.service], width: c.service === 'all' ? 2.6 : 1.8,
    dashed: c.service === 'all', points: c.visible.map((y, i) => [i, y]),
  })));
  setText(system.root, '[data-field=visibility-note]', v.samples === 0
    ? 'no samples yet: move the slider'
    : `${v.samples} orders sampled in the last ${v.window_s} s (ms after the ack, cancelled orders left out)`);
}

function renderRecent(system, s) {
  const list = system.root.querySelector('[data-field=recent]');
  const ids = s.load.recent.map((o) => o.id).join(',');
  if (list.dataset.ids === ids) return;
  // Under load the list turns over twice a second; redrawn under the pointer, it would move
  // the order the user is about to click. It holds still while hovered.
  if (list.matches(':hover')) return;
  list.dataset.ids = ids;
  list.replaceChildren();
  if (s.load.recent.length === 0) {
    list.append(el('li', { class: 'empty', text: 'none yet: move the slider' }));
    return;
  }
  for (const order of s.load.recent) {
    const button = el('button', { type: 'button', class: 'order-link', 'data-order': order.id },
      el('code', { text: order.id }),
      el('span', { class: 'meta', text: ` ${order.status} · ${(order.total_cents / 100).toFixed(2)} · ${ms(order.latency_ms)}` }));
    button.addEventListener('click', () => showTimeline(system, order.id));
    list.append(el('li', {}, button));
  }
}

// Why a control is off, or null when it works: the server's reason, the token, then what
// the control itself needs (`ready`, else `why`).
function offReason(system, control, ready = true, why = null) {
  if (!control) return 'waiting for the first snapshot';
  if (!control.enabled) return control.reason;
  if (!system.authorized) return NEEDS_TOKEN;
  return ready ? null : why;
}

function enable(node, reason, title) {
  node.disabled = reason != null;
  node.title = reason || title;
}

const LETTER_ACTIONS = {
  body: 'show the event as it came (operators only: the public listing leaves it out)',
  replay: 'apply the event again: it leaves the list if it applies now, else stays with the new error',
  discard: 'remove it from the list without applying it',
};

function renderDeadLetters(system, s) {
  const body = system.root.querySelector('table.dead-letters tbody');
  const shown = s.dead_letters.shown;
  setText(system.root, '[data-field=dead-total]', s.dead_letters.total > shown.length
    ? `${shown.length} newest of ${s.dead_letters.total}` : '');
  const reason = offReason(system, s.controls.dead_letters);
  // Forget the bodies of letters that are gone.
  const listed = new Set(shown.map((d) => `${d.service}/${d.id}`));
  for (const id of [...system.bodies.keys()]) if (!listed.has(id)) system.bodies.delete(id);
  const key = JSON.stringify([shown.map((d) => [d.service, d.id, d.attempts, d.error]), reason, [...system.bodies.keys()]]);
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  body.replaceChildren();
  if (shown.length === 0) {
    body.append(el('tr', { class: 'empty' }, el('td', { colSpan: 6, text: 'none' })));
    return;
  }
  for (const d of shown) {
    const id = `${d.service}/${d.id}`;
    const actions = el('td', { class: 'actions' });
    for (const [action, title] of Object.entries(LETTER_ACTIONS)) {
      const label = action === 'body' && system.bodies.has(id) ? 'hide body' : action;
      const button = el('button', { type: 'button', text: label, 'data-action': action });
      enable(button, reason, title);
      button.addEventListener('click', () => (action === 'body' ? toggleBody(system, d) : actOnLetter(system, d, action)));
      actions.append(button);
    }
    body.append(el('tr', { 'data-dead': id, 'data-event': d.event_id },
      el('td', { text: d.service }), el('td', { text: `${d.feed} · ${d.seq}` }),
      el('td', { class: 'error-text' }, el('div', { class: 'clamp', text: d.error, title: d.error })),
      el('td', { class: 'num', 'data-field': 'attempts', text: String(d.attempts) }),
      el('td', { text: when(d.recorded_at_ms) }), actions));
    if (system.bodies.has(id)) {
      body.append(el('tr', { class: 'dead-body', 'data-dead-body': id },
        el('td', { colSpan: 6 }, el('pre', { text: system.bodies.get(id) }))));
    }
  }
}

function redrawDeadLetters(system) {
  system.root.querySelector('table.dead-letters tbody').dataset.key = '';
  if (system.last) renderDeadLetters(system, system.last);
}

function deadStatus(system, message, isError = false) {
  const node = system.root.querySelector('[data-field=dead-status]');
  node.textContent = message;
  node.classList.toggle('error', isError);
}

async function toggleBody(system, d) {
  const id = `${d.service}/${d.id}`;
  if (system.bodies.has(id)) {
    system.bodies.delete(id);
  } else {
    try {
      const letter = await request(system, 'GET', `/dashboard/api/dead-letters/${encodeURIComponent(d.service)}/${d.id}`);
      system.bodies.set(id, JSON.stringify(letter.body, null, 2));
    } catch (error) {
      deadStatus(system, `cannot read ${d.service}'s dead letter ${d.id}: ${error.message}`, true);
      return;
    }
  }
  redrawDeadLetters(system);
}

async function actOnLetter(system, d, action) {
  const what = `${d.service}'s dead letter ${d.id} (${d.feed} · ${d.seq})`;
  deadStatus(system, `${action === 'replay' ? 'replaying' : 'discarding'} ${what}…`);
  try {
    await post(system, `/dashboard/api/dead-letters/${encodeURIComponent(d.service)}/${d.id}/${action}`, {});
    deadStatus(system, action === 'replay' ? `replayed ${what}: it applied, and left the list` : `discarded ${what}`);
  } catch (error) {
    deadStatus(system, `${action} of ${what} refused: ${error.message}`, true);
  }
}

// ---- operating the services -----------------------------------------------------------

function operateStatus(system, message, isError = false) {
  const node = system.root.querySelector('[data-field=operate-status]');
  node.textContent = message;
  node.classList.toggle('error', isError);
}

async function operate(system, path, body, done) {
  try {
    await post(system, path, body);
    operateStatus(system, done);
  } catch (error) {
    operateStatus(system, error.message, true);
  }
}

function buildOperateRows(system) {
  const body = system.root.querySelector('table.operate tbody');
  for (const name of SERVICES) {
    const input = el('input', {
      type: 'number', min: 0, max: 60000, step: 10, placeholder: 'ms',
      'data-field': 'delay-input', 'aria-label': `${name} processing delay (ms)`,
    });
    const set = el('button', { type: 'button', text: 'set', 'data-action': 'set-delay' });
    const submit = () => {
      const max = Number(input.max);
      const value = Number(input.value);
      if (input.value === '' || !Number.isInteger(value) || value < 0 || value > max) {
        operateStatus(system, `a processing delay is a whole number of ms from 0 to ${max}`, true);
        return;
      }
      operate(system, `/dashboard/api/services/${name}/delay`, { delay_ms: value },
        `${name}'s processing delay set to ${value} ms`);
    };
    set.addEventListener('click', submit);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') submit();
    });
    const button = (action, text, done) => {
      const b = el('button', { type: 'button', text, 'data-action': action });
      if (done) b.addEventListener('click', () => operate(system, `/dashboard/api/services/${name}/${action}`, {}, done));
      return b;
    };
    body.append(el('tr', { 'data-service': name },
      el('th', { scope: 'row' }, el('span', { class: 'swatch', style: `background:${COLORS[name]}` }), name),
      el('td', { class: 'delay' },
        el('span', { class: 'delay-now', 'data-field': 'delay-now', text: '–' }), input, set),
      el('td', {},
        button('pause', 'pause', `${name}'s consumers paused: its backlog grows until resumed`),
        button('resume', 'resume', `${name}'s consumers resumed`)),
      // Enabled under `converge up`'s supervisor only: see the note under the table.
      el('td', {},
        button('kill', 'kill', `${name}'s processes killed (SIGKILL): they stay down until restarted`),
        button('restart', 'restart', `${name}'s processes restarted and healthy`))));
  }
}

// The controls of a system's card, from its latest snapshot and whether its token works.
function renderOperate(system) {
  const s = system.last;
  const c = s ? s.controls : {};
  const max = s ? s.limits.processing_delay_ms_max : 60000;
  for (const row of system.root.querySelectorAll('table.operate tbody tr')) {
    const name = row.dataset.service;
    const service = s ? s.services.find((r) => r.name === name) : null;
    const delay = service ? service.delay_ms : null;
    setFigure(row.querySelector('[data-field=delay-now]'), delay == null ? 'now –' : `now ${delay} ms`, delay);
    const input = row.querySelector('[data-field=delay-input]');
    if (Number(input.max) !== max) input.max = max;
    const delayReason = offReason(system, c.delays);
    enable(input, delayReason, `ms per two-phase-commit step or batch of events, 0 to ${max}`);
    enable(row.querySelector('[data-action=set-delay]'), delayReason, `set ${name}'s processing delay`);
    const consumes = Boolean(service && service.consumes);
    const none = !service || service.state === 'unreachable'
      ? `${name} does not answer`
      : `${name} consumes no feed here (Account never does; no service does in strong mode)`;
    enable(row.querySelector('[data-action=pause]'),
      offReason(system, c.pause, consumes && service.state !== 'paused', consumes ? 'already paused' : none),
      'stop taking events (after the batch in hand)');
    enable(row.querySelector('[data-action=resume]'),
      offReason(system, c.pause, consumes && service.state !== 'running', consumes ? 'not paused' : none),
      'take events again');
    const down = !service || service.state === 'unreachable';
    enable(row.querySelector('[data-action=kill]'),
      offReason(system, c.kill, !down, `${name} does not answer: restart it`),
      `kill ${name}'s processes as a crash would (SIGKILL); they stay down until restarted`);
    enable(row.querySelector('[data-action=restart]'), offReason(system, c.kill),
      `start ${name}'s processes again (killed first if they run)`);
  }
  setText(system.root, '[data-field=kill-note]', c.kill && !c.kill.enabled ? `Kill and restart: ${c.kill.reason}.` : '');
}

// ---- one order's life --------------------------------------------------------------------

async function showTimeline(system, orderId, since = Date.now()) {
  const box = system.root.querySelector('[data-field=timeline]');
  if (system.timeline !== orderId) {
    system.timeline = orderId;
    setText(system.root, '[data-field=timeline-order]', orderId);
    box.replaceChildren(el('p', { class: 'empty', text: 'reading the five services…' }));
  }
  let timeline;
  try {
    const response = await fetch(withPeer(`/dashboard/api/orders/${encodeURIComponent(orderId)}/timeline`, system));
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    timeline = body;
  } catch (error) {
    box.replaceChildren(el('p', { class: 'error-text', text: `Cannot read the order: ${error.message}` }));
    return;
  }
  if (system.timeline !== orderId) return; // another order was clicked meanwhile
  drawTimeline(box, timeline);
  const pending = timeline.steps.some((step) => step.state !== 'done');
  if (pending && Date.now() - since < TIMELINE_FOLLOW_MS) {
    setTimeout(() => {
      if (system.timeline === orderId) showTimeline(system, orderId, since);
    }, TIMELINE_REFRESH_MS);
  }
}

function drawTimeline(box, t) {
  const timed = t.steps.filter((s) => s.after_ack_ms != null);
  const low = Math.min(0, ...timed.map((s) => s.after_ack_ms));
  const high = Math.max(1, ...timed.map((s) => s.after_ack_ms));
  const track = el('div', { class: 'track' });
  for (const step of timed) {
    const left = ((step.after_ack_ms - low) / (high - low)) * 100;
    track.append(el('span', {
      class: 'mark', style: `left:${left}%;background:${COLORS[step.service]}`,
      title: `${step.step} (${step.service}) ${step.after_ack_ms} ms after the acknowledgement`,
    }));
  }
  const scale = el('div', { class: 'scale' }, el('span', { text: `${low} ms` }), el('span', { text: `+${high} ms` }));
  const list = el('ol', { class: 'steps' });
  for (const step of t.steps) {
    const timing = step.state === 'pending' ? 'not yet'
      : step.state === 'unknown' ? 'could not read'
        : step.after_ack_ms == null ? 'applied (this service does not report when yet)'
          : `${step.after_ack_ms >= 0 ? '+' : ''}${step.after_ack_ms} ms`;
    list.append(el('li', { class: `step step-${step.state}`, 'data-step': step.step, 'data-service': step.service },
      el('span', { class: 'swatch', style: `background:${COLORS[step.service]}` }),
      el('span', { class: 'step-name', text: step.step }),
      el('span', { class: 'step-service', text: step.service }),
      el('span', { class: 'step-time', text: timing })));
  }
  const summary = el('p', { class: 'summary', text:
    `${t.status}${t.reason ? ` (${t.reason.replaceAll('_', ' ')})` : ''} · ${(t.total_cents / 100).toFixed(2)} · account ${t.account_id}` });
  box.replaceChildren(summary, track, scale, list);
}

// ---- controls -----------------------------------------------------------------------------

function showRate(rate, fromSlider = false) {
  if (!fromSlider) document.getElementById('rate-slider').value = positionOf(rate);
  document.getElementById('rate-input').value = rate;
}

let sendTimer = null;
function userSetsRate(rate, fromSlider = false) {
  const clamped = Math.max(0, Math.min(rateMax, Math.round(Number(rate) || 0)));
  lastUserMove = Date.now();
  showRate(clamped, fromSlider);
  clearTimeout(sendTimer);
  sendTimer = setTimeout(() => sendRate(clamped), SLIDER_DEBOUNCE_MS);
}

async function sendRate(rate) {
  const results = await Promise.allSettled(systems.filter((s) => s.authorized)
    .map((s) => post(s, '/dashboard/api/load', { rate_per_s: rate })));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  if (failed.length) status(failed.join(' · '), true);
  else status(rate === 0 ? 'load stopped' : `offering ${rate} orders/s`);
}

function setUpControls() {
  const slider = document.getElementById('rate-slider');
  const input = document.getElementById('rate-input');
  slider.addEventListener('input', () => userSetsRate(rateAt(Number(slider.value)), true));
  input.addEventListener('change', () => userSetsRate(input.value));
  const presets = document.getElementById('presets');
  for (const rate of PRESETS) {
    const b = el('button', { type: 'button', text: formatNumber(rate), disabled: true, 'data-rate': rate });
    b.addEventListener('click', () => userSetsRate(rate));
    presets.append(b);
  }
  const form = document.getElementById('compare-form');
  const url = document.getElementById('compare-url');
  url.value = query.get('compare') || '';
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URL(location.href);
    if (url.value.trim()) next.searchParams.set('compare', url.value.trim());
    else next.searchParams.delete('compare');
    location.assign(next.toString());
  });
}

// Charts are drawn at the canvas's size: redraw on resize.
window.addEventListener('resize', () => {
  for (const system of systems) if (system.last) renderCharts(system, system.last);
});

setUpControls();
addSystem(null, token);
if (query.get('compare')) addSystem(query.get('compare'), compareToken);

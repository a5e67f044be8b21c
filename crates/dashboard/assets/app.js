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

const systems = [];
let rateMax = 5000;
let lastUserMove = 0;
let controls = {};

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

async function post(system, path, body) {
  const response = await fetch(withPeer(path, system), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-dashboard-token': system.token },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try { message = JSON.parse(text).error; } catch { /* not JSON: show as is */ }
    throw new Error(`${system.name}: ${message}`);
  }
  return text ? JSON.parse(text) : null;
}

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
  };
  systems.push(system);
  buildServiceRows(system);
  connect(system);
  checkToken(system);
  return system;
}

function buildServiceRows(system) {
  const body = system.root.querySelector('table.services tbody');
  for (const name of SERVICES) {
    const row = el('tr', { 'data-service': name },
      el('th', { scope: 'row' }, el('span', { class: 'swatch', style: `background:${COLORS[name]}` }), name),
      el('td', { 'data-field': 'state' }, el('span', { class: 'pill state', text: '–' })));
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
  renderFaultControls();
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
    const state = row.querySelector('[data-field=state] .pill');
    const stateText = service.state === 'stuck' && service.stuck_since_ms
      ? `stuck since ${when(service.stuck_since_ms)}` : service.state;
    state.textContent = stateText;
    state.className = `pill state state-${service.state}`;
    state.title = service.last_error || '';
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
  renderDeadLetters(system, s);

  // The controls follow the first system's limits and abilities.
  if (system.index === 0) {
    if (s.limits.rate_max_per_s !== rateMax) {
      rateMax = s.limits.rate_max_per_s;
      document.getElementById('rate-input').max = rateMax;
    }
    if (JSON.stringify(controls) !== JSON.stringify(s.controls)) {
      controls = s.controls;
      renderFaultControls();
    }
    if (Date.now() - lastUserMove > SLIDER_HOLD_MS) showRate(s.load.rate_per_s);
  }
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

function renderDeadLetters(system, s) {
  const body = system.root.querySelector('table.dead-letters tbody');
  setText(system.root, '[data-field=dead-total]', s.dead_letters.total > s.dead_letters.shown.length
    ? `${s.dead_letters.shown.length} newest of ${s.dead_letters.total}` : '');
  const key = s.dead_letters.shown.map((d) => `${d.service}/${d.event_id}`).join(',') + JSON.stringify(controls);
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  body.replaceChildren();
  if (s.dead_letters.shown.length === 0) {
    body.append(el('tr', { class: 'empty' }, el('td', { colSpan: 6, text: 'none' })));
    return;
  }
  for (const d of s.dead_letters.shown) {
    const actions = el('td', { class: 'actions' });
    for (const action of ['replay', 'discard']) {
      const button = el('button', {
        type: 'button', text: action, disabled: !(controls.dead_letters && system.authorized),
        title: controls.dead_letters ? `${action} this event` : controls.disabled_reason,
      });
      button.addEventListener('click', () => act(system,
        `/dashboard/api/dead-letters/${encodeURIComponent(d.service)}/${encodeURIComponent(d.event_id)}/${action}`, {}));
      actions.append(button);
    }
    body.append(el('tr', { 'data-event': d.event_id },
      el('td', { text: d.service }), el('td', { text: `${d.feed} · ${d.seq}` }),
      el('td', { class: 'error-text', text: d.error }), el('td', { class: 'num', text: String(d.attempts) }),
      el('td', { text: when(d.recorded_at_ms) }), actions));
  }
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

async function act(system, path, body) {
  try {
    await post(system, path, body);
    status('done');
  } catch (error) {
    status(error.message, true);
  }
}

function renderFaultControls() {
  const body = document.querySelector('#fault-controls tbody');
  const authorized = systems.length > 0 && systems[0].authorized;
  const reason = controls.disabled_reason || 'needs phase 2';
  document.getElementById('faults-tag').hidden = Boolean(controls.delays && controls.pause);
  body.replaceChildren();
  for (const name of SERVICES) {
    const delay = el('input', { type: 'number', min: 0, max: 10000, value: 0, disabled: !(controls.delays && authorized), title: controls.delays ? 'ms per batch or step' : reason, 'aria-label': `${name} processing delay (ms)` });
    const setDelay = el('button', { type: 'button', text: 'set', disabled: delay.disabled, title: delay.title });
    setDelay.addEventListener('click', () => {
      for (const system of systems) act(system, `/dashboard/api/services/${name}/delay`, { delay_ms: Number(delay.value) });
    });
    // Side by side, a control acts on every system followed, as the slider does.
    const button = (label, path, enabled, title) => {
      const b = el('button', { type: 'button', text: label, disabled: !(enabled && authorized), title: enabled ? title : reason });
      b.addEventListener('click', () => {
        for (const system of systems) act(system, path, {});
      });
      return b;
    };
    body.append(el('tr', { 'data-service': name },
      el('th', { scope: 'row', text: name }),
      el('td', {}, delay, el('span', { class: 'unit', text: ' ms ' }), setDelay),
      el('td', {}, button('pause', `/dashboard/api/services/${name}/pause`, controls.pause, 'stop applying events'),
        button('resume', `/dashboard/api/services/${name}/resume`, controls.pause, 'apply events again')),
      el('td', {}, button('kill', `/dashboard/api/services/${name}/kill`, controls.kill, 'stop this service\'s process'),
        button('restart', `/dashboard/api/services/${name}/restart`, controls.kill, 'start it again'))));
  }
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
  renderFaultControls();
}

// Charts are drawn at the canvas's size: redraw on resize.
window.addEventListener('resize', () => {
  for (const system of systems) if (system.last) renderCharts(system, system.last);
});

setUpControls();
addSystem(null, token);
if (query.get('compare')) addSystem(query.get('compare'), compareToken);

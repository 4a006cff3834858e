// The DataFlow console: plain browser JavaScript, no build step. Everything it
// shows comes from the node's admin API (/api/v1) and its live feed (server-sent
// events). Text from the node is always set with textContent, never as HTML.

const TOKEN_KEY = 'dataflow.token';
const ACTIONS = {
  start: ['configured', 'stopped'],
  pause: ['running'],
  resume: ['paused'],
  stop: ['running', 'paused'],
  restart: ['running', 'paused', 'stopped', 'failed'],
  reset: ['failed'],
};

const state = { pipelines: new Map(), selected: undefined };

const $ = (id) => document.getElementById(id);

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

async function api(method, path, payload) {
  const json = payload === undefined ? {} : { 'content-type': 'application/json' };
  const response = await fetch(path, { method, headers: { ...headers(), ...json }, ...(payload === undefined ? {} : { body: JSON.stringify(payload) }) });
  if (response.status === 401 && sessionStorage.getItem(TOKEN_KEY) === null) {
    const token = window.prompt('This node asks for its API token (api.authToken):');
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      return api(method, path, payload);
    }
  }
  const body = response.headers.get('content-type')?.includes('json') ? await response.json() : undefined;
  if (!response.ok) throw new Error(body?.message ?? `${method} ${path}: HTTP ${response.status}`);
  return body;
}

function say(text) {
  $('message').textContent = text;
}

const number = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '');

function renderPipelines() {
  const body = $('pipelines');
  body.replaceChildren();
  if (state.pipelines.size === 0) {
    body.append(element('tr')).append(element('td', 'No pipelines yet: create one with POST /api/v1/pipelines or dataflow pipelines create', { colspan: '7', class: 'muted' }));
    return;
  }
  for (const p of [...state.pipelines.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    const row = element('tr', undefined, { 'data-testid': `pipeline-${p.id}` });
    const name = element('td');
    const link = element('a', p.name === p.id ? p.id : `${p.id} (${p.name})`, { href: `#${encodeURIComponent(p.id)}`, class: 'pipeline' });
    link.addEventListener('click', (event) => {
      event.preventDefault();
      void select(p.id);
    });
    name.append(link);
    const status = element('td');
    status.append(element('span', p.status, { class: `status status-${p.status}`, 'data-testid': `status-${p.id}` }));
    const actions = element('td');
    for (const [action, allowed] of Object.entries(ACTIONS)) {
      const button = element('button', action, { type: 'button', 'data-testid': `${action}-${p.id}`, 'aria-label': `${action} pipeline ${p.id}` });
      button.disabled = !allowed.includes(p.status);
      button.addEventListener('click', () => void command(p.id, action));
      actions.append(button);
    }
    row.append(
      name,
      status,
      element('td', number(p.recordsProcessed), { class: 'num', 'data-testid': `records-${p.id}` }),
      element('td', number(p.recordsPerSec), { class: 'num', 'data-testid': `rate-${p.id}` }),
      element('td', number(p.recordsFailed), { class: 'num' }),
      element('td', number(p.recordsDeadLettered), { class: 'num' }),
      actions,
    );
    body.append(row);
  }
}

async function command(id, action) {
  say('');
  try {
    const updated = await api('POST', `/api/v1/pipelines/${encodeURIComponent(id)}/${action}`);
    const known = state.pipelines.get(id) ?? { id, name: updated.name };
    state.pipelines.set(id, { ...known, status: updated.status, recordsProcessed: updated.metrics?.recordsProcessed ?? known.recordsProcessed });
    renderPipelines();
  } catch (error) {
    say(`${action} ${id}: ${error.message}`);
  }
}

// The pipeline's dead-letter queue: the count, the oldest letters with their reasons, and a replay button.
async function loadDeadLetters(id) {
  const body = $('dead-letters');
  const button = $('dlq-replay');
  try {
    const page = await api('GET', `/api/v1/pipelines/${encodeURIComponent(id)}/dead-letters?limit=10`);
    $('dlq-count').textContent = number(page.total);
    button.hidden = page.total === 0;
    body.replaceChildren();
    for (const letter of page.letters) {
      const row = element('tr', undefined, { 'data-testid': `dead-letter-${letter.id}` });
      row.append(element('td', letter.id, { class: 'num' }), element('td', letter.stageName), element('td', letter.failedAt), element('td', letter.error.message));
      body.append(row);
    }
  } catch (error) {
    // 409: the letters are in a file or on Kafka (the message says where), or there is no target.
    $('dlq-count').textContent = '—';
    $('dlq-note').textContent = error.message;
    button.hidden = true;
    body.replaceChildren();
  }
}

async function replayDeadLetters() {
  const id = state.selected;
  if (id === undefined) return;
  try {
    const answer = await api('POST', `/api/v1/pipelines/${encodeURIComponent(id)}/dead-letters/replay`, { limit: 100 });
    const left = answer.skipped.map((s) => `#${s.id}: ${s.reason}`).join('; ');
    $('dlq-note').textContent = `replayed ${answer.replayed}${answer.duplicate ? ' (replayed before: only deleted)' : ''}${left === '' ? '' : `; left ${left}`}`;
  } catch (error) {
    $('dlq-note').textContent = `replay: ${error.message}`;
  }
  await loadDeadLetters(id);
}

async function select(id) {
  state.selected = id;
  $('detail').hidden = false;
  $('detail-id').textContent = id;
  $('dlq-note').textContent = '';
  void loadDeadLetters(id);
  try {
    const { events } = await api('GET', `/api/v1/pipelines/${encodeURIComponent(id)}/events?limit=500`);
    const body = $('events');
    body.replaceChildren();
    for (const e of events.slice(-20).reverse()) {
      const payload = element('td');
      payload.append(element('pre', JSON.stringify(e.payload)));
      const row = element('tr');
      row.append(element('td', e.sequenceNr, { class: 'num' }), element('td', e.eventType), element('td', e.timestamp), payload);
      body.append(row);
    }
  } catch (error) {
    say(`journal of ${id}: ${error.message}`);
  }
}

async function loadPipelines() {
  const { pipelines } = await api('GET', '/api/v1/pipelines');
  for (const p of pipelines) {
    const known = state.pipelines.get(p.id);
    state.pipelines.set(p.id, { recordsPerSec: 0, recordsDeadLettered: 0, ...known, id: p.id, name: p.name, status: p.status, recordsProcessed: known?.recordsProcessed ?? p.totalRecords, recordsFailed: known?.recordsFailed ?? p.failedRecords });
  }
  renderPipelines();
}

async function loadProjections() {
  const { projections } = await api('GET', '/api/v1/projections');
  const body = $('projections');
  body.replaceChildren();
  if (projections.length === 0) {
    body.append(element('tr')).append(element('td', 'No projections on this node (they need the embedded store or Postgres)', { colspan: '7', class: 'muted' }));
    return;
  }
  for (const p of projections) {
    const row = element('tr', undefined, { 'data-testid': `projection-${p.name}` });
    const rebuild = p.rebuild === null ? '' : `${p.rebuild.state} ${number(p.rebuild.done)} / ${number(p.rebuild.total)}${p.rebuild.error ? `: ${p.rebuild.error}` : ''}`;
    const actions = element('td');
    for (const action of ['pause', 'resume', 'rebuild']) {
      const button = element('button', action, { type: 'button', 'data-testid': `${action}-projection-${p.name}`, 'aria-label': `${action} projection ${p.name}` });
      button.disabled = (action === 'pause' && p.state === 'paused') || (action === 'resume' && p.state !== 'paused') || p.state === 'rebuilding';
      button.addEventListener('click', async () => {
        try {
          await api('POST', `/api/v1/projections/${encodeURIComponent(p.name)}/${action}`);
          await loadProjections();
        } catch (error) {
          say(`${action} ${p.name}: ${error.message}`);
        }
      });
      actions.append(button);
    }
    row.append(
      element('td', p.name),
      element('td', p.state),
      element('td', number(p.eventsApplied), { class: 'num' }),
      element('td', p.lag.kind === 'known' ? number(p.lag.events) : '?', { class: 'num', title: p.lag.reason ?? '' }),
      element('td', p.lag.kind === 'known' ? p.lag.seconds.toFixed(1) : '?', { class: 'num' }),
      element('td', rebuild),
      actions,
    );
    body.append(row);
  }
}

async function loadReady() {
  const badge = $('ready');
  try {
    const response = await fetch('/ready', { headers: headers() });
    const body = await response.json();
    badge.textContent = body.ready ? 'ready' : `not ready: ${body.dependencies.filter((d) => d.state !== 'ok').map((d) => `${d.name} ${d.state}`).join(', ')}`;
    badge.className = `badge ${body.ready ? 'ok' : 'bad'}`;
  } catch {
    badge.textContent = 'node unreachable';
    badge.className = 'badge bad';
  }
}

function follow() {
  // EventSource cannot send headers: off loopback the token goes through a fetch stream instead.
  const token = sessionStorage.getItem(TOKEN_KEY);
  const feed = $('feed');
  const onCounts = (data) => {
    for (const p of data.pipelines) {
      const known = state.pipelines.get(p.id) ?? {};
      state.pipelines.set(p.id, { ...known, ...p });
    }
    renderPipelines();
  };
  const onStatus = (data) => {
    const known = state.pipelines.get(data.id);
    if (known !== undefined) state.pipelines.set(data.id, { ...known, status: data.to });
    else void loadPipelines();
    renderPipelines();
    if (state.selected === data.id) void select(data.id);
  };
  if (token === null) {
    const source = new EventSource('/api/v1/feed');
    source.onopen = () => {
      feed.textContent = 'live';
      feed.className = 'badge ok';
    };
    source.onerror = () => {
      feed.textContent = 'reconnecting';
      feed.className = 'badge bad';
    };
    source.addEventListener('counts', (e) => onCounts(JSON.parse(e.data)));
    source.addEventListener('status', (e) => onStatus(JSON.parse(e.data)));
    source.addEventListener('batch-failed', (e) => {
      const data = JSON.parse(e.data);
      say(`${data.id}: a batch failed at ${data.stage}${data.retriable ? ' (will retry)' : ''}: ${data.message}`);
    });
    return;
  }
  void streamWithToken(token, { counts: onCounts, status: onStatus });
}

async function streamWithToken(token, handlers) {
  const feed = $('feed');
  for (;;) {
    try {
      const response = await fetch('/api/v1/feed', { headers: { authorization: `Bearer ${token}` } });
      feed.textContent = 'live';
      feed.className = 'badge ok';
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const blocks = buffer.split('\n\n');
        buffer = blocks.pop() ?? '';
        for (const block of blocks) {
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined && handlers[event] !== undefined) handlers[event](JSON.parse(data));
        }
      }
    } catch {
      // fall through to the reconnect below
    }
    feed.textContent = 'reconnecting';
    feed.className = 'badge bad';
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function main() {
  try {
    await loadPipelines();
  } catch (error) {
    say(error.message);
  }
  follow();
  $('dlq-replay').addEventListener('click', () => void replayDeadLetters());
  void loadReady();
  void loadProjections().catch((error) => say(error.message));
  setInterval(() => void loadReady(), 5000);
  setInterval(() => void loadProjections().catch(() => undefined), 2000);
  setInterval(() => void loadPipelines().catch(() => undefined), 10000);
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (fromHash !== '') void select(fromHash);
}

void main();

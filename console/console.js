// action-router console: fills the server's page shells from /console/api
// and keeps them live from /console/events. No framework, no build step;
// every text goes through textContent (never innerHTML).
'use strict';
(() => {
  const body = document.body;
  const page = body.dataset.page;
  if (!page) return;

  // ---- small helpers ----------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
    return node;
  }
  /** Replaces a node's children, leaving out the empty ones. */
  function fill(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }
  async function api(path) {
    const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (res.status === 401) {
      location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
      throw new Error('signed out');
    }
    const json = await res.json();
    if (!res.ok) throw Object.assign(new Error(json.message || res.statusText), { status: res.status });
    return json;
  }
  async function post(path, body) {
    const res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(json.message || res.statusText), { status: res.status, body: json });
    return json;
  }
  const pad = (n) => String(n).padStart(2, '0');
  function when(ms) {
    if (ms === null || ms === undefined) return '';
    const d = new Date(ms);
    const today = new Date().toDateString() === d.toDateString();
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return today ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }
  function duration(from, to) {
    if (!from) return '';
    const s = Math.max(0, Math.round(((to || Date.now()) - from) / 1000));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
    return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  }
  const STATUS_TEXT = { IN_PROGRESS: 'in progress', SUCCESS: 'success', FAILURE: 'failure', WAITING_FOR_APPROVAL: 'waiting for approval', DECLINED: 'declined' };
  const chip = (status) => el('span', { class: `chip s-${String(status).toLowerCase()}`, text: STATUS_TEXT[status] || status });
  function safeUrl(url) {
    try {
      const u = new URL(url, location.href);
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
    } catch {
      return null;
    }
  }
  function linkList(links) {
    return (links || []).map(String).map((l) => {
      const href = safeUrl(l);
      let label = l;
      try {
        label = new URL(l).hostname;
      } catch { /* shown as given */ }
      return href ? el('a', { href, rel: 'noopener noreferrer', target: '_blank', class: 'ext', text: label, title: l }) : el('span', { text: l });
    });
  }
  /** What a JSON value shows at most: a response or inputs can be megabytes (pretty printing multiplies them). */
  const SHOW_CHARS = 100000;
  /** `v` indented, cut at SHOW_CHARS characters: nothing past the cut is even built. */
  function boundedJson(v) {
    const out = [];
    let size = 0;
    let cut = false;
    const put = (s) => {
      if (cut) return;
      if (size + s.length > SHOW_CHARS) {
        out.push(s.slice(0, SHOW_CHARS - size));
        cut = true;
      } else {
        out.push(s);
        size += s.length;
      }
    };
    const walk = (x, indent) => {
      if (cut) return;
      if (x === null || typeof x !== 'object') return put(JSON.stringify(x) ?? 'null');
      const keys = Array.isArray(x) ? null : Object.keys(x);
      const n = keys ? keys.length : x.length;
      const [open, close] = keys ? ['{', '}'] : ['[', ']'];
      if (n === 0) return put(open + close);
      const inner = indent + '  ';
      put(open + '\n');
      for (let i = 0; i < n && !cut; i++) {
        put(inner);
        if (keys) put(JSON.stringify(keys[i]) + ': ');
        walk(keys ? x[keys[i]] : x[i], inner);
        put(i < n - 1 ? ',\n' : '\n');
      }
      put(indent + close);
    };
    try {
      walk(v, '');
    } catch {
      // Nested past what the browser can walk (stored before the depth limit).
      return { text: '(too deeply nested to show)', cut: true };
    }
    return { text: out.join(''), cut };
  }
  const pretty = (v) => {
    const { text, cut } = boundedJson(v);
    const pre = el('pre', { class: 'json', text });
    if (!cut) return pre;
    return el('div', {}, pre, el('p', { class: 'hint cut', text: `Cut at ${SHOW_CHARS.toLocaleString('en')} characters; the runs API returns the whole value.` }));
  };
  const announce = (text) => {
    const s = document.getElementById('live-status');
    if (s) s.textContent = text;
  };

  // ---- live feed -----------------------------------------------------------
  const handlers = {};
  function connect() {
    const source = new EventSource('/console/events');
    for (const name of ['runs', 'reload', 'dead-letters']) {
      source.addEventListener(name, (e) => handlers[name] && handlers[name](JSON.parse(e.data)));
    }
    source.addEventListener('hello', () => body.classList.add('live-on'));
    source.onerror = () => {
      body.classList.remove('live-on');
      // A stream refused for good (signed out): check, and go to the sign-in page.
      if (source.readyState === EventSource.CLOSED) api('/console/api/me').then(() => setTimeout(connect, 2000), () => undefined);
    };
  }

  // ---- overview strip ------------------------------------------------------
  let overviewAt = 0;
  async function overview(force) {
    const box = document.getElementById('overview');
    if (!box || (!force && Date.now() - overviewAt < 3000)) return;
    overviewAt = Date.now();
    const o = await api('/console/api/overview');
    const done = (o.ended.SUCCESS || 0) + (o.ended.FAILURE || 0);
    const rate = done ? `${Math.round(((o.ended.SUCCESS || 0) / done) * 100)}%` : '–';
    const max = Math.max(1, ...o.perMinute);
    const bars = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    bars.setAttribute('viewBox', `0 0 ${o.perMinute.length * 6} 24`);
    bars.setAttribute('class', 'spark');
    bars.setAttribute('aria-hidden', 'true');
    o.perMinute.forEach((n, i) => {
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      const h = n ? Math.max(1, (n / max) * 24) : 0;
      r.setAttribute('x', String(i * 6));
      r.setAttribute('y', String(24 - h));
      r.setAttribute('width', '5');
      r.setAttribute('height', String(h));
      bars.append(r);
    });
    const stat = (label, value, extra) => el('div', { class: `stat ${extra || ''}` }, el('span', { class: 'v', text: value }), el('span', { class: 'l', text: label }));
    const lag = o.lag.router === null && o.lag.store === null ? '–' : `${o.lag.router ?? '–'} / ${o.lag.store ?? '–'}`;
    fill(
      box,
      el('div', { class: 'stat spark-box' }, bars, el('span', { class: 'v', text: String(o.perMinute[o.perMinute.length - 1]) }), el('span', { class: 'l', text: `runs last minute (${o.minutes} min shown)` })),
      stat(`success rate, ${o.minutes} min`, rate),
      stat(`succeeded, ${o.minutes} min`, String(o.ended.SUCCESS || 0), 'ok'),
      stat(`failed, ${o.minutes} min`, String(o.ended.FAILURE || 0), o.ended.FAILURE ? 'bad' : ''),
      stat('in flight', String(o.inFlight)),
      o.waiting ? el('a', { class: 'stat wait', href: '/?status=WAITING_FOR_APPROVAL' }, el('span', { class: 'v', text: String(o.waiting) }), el('span', { class: 'l', text: 'waiting for approval' })) : null,
      stat('lag: router / store', lag),
    );
  }

  // ---- runs list -------------------------------------------------------------
  function runsPage() {
    const form = document.getElementById('filters');
    const tbody = document.querySelector('#runs tbody');
    const range = document.getElementById('range');
    const prev = document.getElementById('prev');
    const next = document.getElementById('next');
    const params = new URLSearchParams(location.search);
    const state = { offset: Number(params.get('offset')) || 0, limit: 50, total: 0, rows: [] };
    for (const field of form.elements) {
      if (!field.name || !params.has(field.name)) continue;
      if (field.type === 'checkbox') field.checked = params.get(field.name) === 'true';
      else field.value = params.get(field.name);
    }
    function filters() {
      const f = {};
      for (const field of form.elements) {
        if (!field.name) continue;
        const v = field.type === 'checkbox' ? (field.checked ? 'true' : '') : field.value.trim();
        if (v) f[field.name] = v;
      }
      return f;
    }
    function matches(r, f) {
      if (f.status && r.status !== f.status) return false;
      if (f.action && r.action !== f.action) return false;
      if (f.org && r.orgId !== f.org) return false;
      if (f.type && r.invocationType !== f.type) return false;
      if (f.active && r.endedAt) return false;
      if (f.q) {
        const q = f.q.toLowerCase();
        if (![r.id, r.entity, r.externalRunId].some((v) => v && v.toLowerCase().includes(q))) return false;
      }
      return true;
    }
    function row(r) {
      const label = r.statusLabel || r.summary || '';
      return el(
        'tr',
        { 'data-id': r.id, 'data-status': r.status },
        el('td', {}, chip(r.status)),
        el('td', { class: 'c-action' }, el('a', { href: `/runs/${encodeURIComponent(r.id)}`, text: r.action || '(no action)' }), el('span', { class: 'id', text: r.id })),
        el('td', { class: 'c-org', text: r.orgId || '' }),
        el('td', { class: 'c-type', text: r.invocationType || '' }),
        el('td', { class: 'c-entity', text: r.entityTitle || r.entity || '' }),
        el('td', { class: 'c-time' }, el('time', { datetime: new Date(r.createdAt).toISOString(), text: when(r.createdAt) })),
        el('td', { class: 'c-dur', 'data-start': r.createdAt, 'data-end': r.endedAt || '', text: duration(r.createdAt, r.endedAt) }),
        el('td', { class: 'c-label', text: label, title: label }),
        el('td', { class: 'c-links' }, linkList(r.links)),
      );
    }
    let frame = 0;
    function render() {
      frame = 0;
      tbody.replaceChildren(...(state.rows.length ? state.rows.map(row) : [el('tr', {}, el('td', { colspan: 9, class: 'empty', text: 'No runs match.' }))]));
      const first = state.total ? state.offset + 1 : 0;
      range.textContent = `${first}–${state.offset + state.rows.length} of ${state.total.toLocaleString()}${state.capped ? '+' : ''}`;
      prev.disabled = state.offset === 0;
      // Pages go as deep as the server's offset bound (10,000); a capped total may have more behind it.
      next.disabled = (state.offset + state.rows.length >= state.total && !state.capped) || state.rows.length < state.limit || state.offset + state.limit > 10_000;
    }
    const later = () => (frame ||= requestAnimationFrame(render));
    let seq = 0;
    async function load() {
      const mine = ++seq;
      const f = filters();
      const q = new URLSearchParams({ ...f, offset: String(state.offset), limit: String(state.limit) });
      const page = new URLSearchParams({ ...f, ...(state.offset ? { offset: String(state.offset) } : {}) });
      history.replaceState(null, '', page.toString() ? `/?${page}` : '/');
      const res = await api(`/console/api/runs?${q}`);
      if (mine !== seq) return;
      state.rows = res.runs;
      state.total = res.total;
      state.capped = Boolean(res.totalCapped);
      render();
      tbody.closest('table').setAttribute('aria-busy', 'false');
    }
    let typing = 0;
    form.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => ((state.offset = 0), load()), 250);
    });
    form.addEventListener('submit', (e) => e.preventDefault());
    prev.addEventListener('click', () => ((state.offset = Math.max(0, state.offset - state.limit)), load()));
    next.addEventListener('click', () => ((state.offset += state.limit), load()));
    handlers.runs = (runs) => {
      const f = filters();
      let added = 0;
      for (const r of runs) {
        const i = state.rows.findIndex((x) => x.id === r.id);
        if (i >= 0) state.rows[i] = r;
        else if (state.offset === 0 && matches(r, f)) {
          state.rows.unshift(r);
          state.total += 1;
          added += 1;
        }
      }
      if (added) announce(`${added} new run${added > 1 ? 's' : ''}`);
      state.rows.sort((a, b) => b.createdAt - a.createdAt);
      if (state.rows.length > state.limit) state.rows.length = state.limit;
      later();
      overview(false);
    };
    handlers.reload = () => load();
    setInterval(() => {
      for (const td of tbody.querySelectorAll('td.c-dur')) if (!td.dataset.end) td.textContent = duration(Number(td.dataset.start), null);
    }, 1000);
    setInterval(() => overview(true), 30_000);
    load();
    overview(true);
  }

  // ---- one run -----------------------------------------------------------------
  function runPage() {
    const id = body.dataset.runId;
    const root = document.getElementById('run');
    const state = { lastUpdate: 0, lastLog: 0 };
    let timeline;
    let logs;
    let head;
    function header(r) {
      const meta = [
        ['Action', r.action],
        ['Org', r.orgId],
        ['Invocation', r.invocationType],
        ['Entity', r.entity ? `${r.entityTitle || r.entity}${r.blueprint ? ` (${r.blueprint})` : ''}` : null],
        ['Started', when(r.createdAt)],
        ['Ended', r.endedAt ? when(r.endedAt) : null],
        ['Duration', duration(r.createdAt, r.endedAt)],
        ['Triggered by', r.createdBy],
        ['Trigger', r.actionTrigger],
        ['External id', r.externalRunId],
        ['Claimed by', r.claim ? `${r.claim.by}${r.claim.acked ? ' (acknowledged)' : ''}` : null],
        ['Runs again', r.repeats ? el('a', { href: `/runs/${encodeURIComponent(r.repeats)}`, text: r.repeats }) : null],
        ['Re-sent from', r.resentFrom ? el('a', { href: '/dead-letters', text: `dead letter ${r.resentFrom}` }) : null],
      ].filter(([, v]) => v);
      return el(
        'header',
        { class: 'run-head' },
        el('h1', {}, 'Run ', el('code', { text: r.id }), ' ', chip(r.status)),
        r.statusLabel ? el('p', { class: 'label', text: r.statusLabel }) : null,
        r.summary ? el('p', { class: 'summary', text: r.summary }) : null,
        el('dl', { class: 'meta' }, meta.map(([k, v]) => [el('dt', { text: k }), v instanceof Node ? el('dd', {}, v) : el('dd', { text: v })])),
        canAgain ? el('p', { class: 'again' }, el('a', { class: 'button', href: `/actions/${encodeURIComponent(r.action)}?again=${encodeURIComponent(r.id)}` }, 'Run again')) : null,
        r.links.length ? el('p', { class: 'links' }, 'Links: ', linkList(r.links)) : null,
      );
    }
    const updateRow = (u) =>
      el(
        'tr',
        { class: u.applied ? '' : 'ignored' },
        el('td', {}, el('time', { datetime: new Date(u.at).toISOString(), text: when(u.at) })),
        el('td', {}, chip(u.status)),
        el('td', { text: u.who }),
        el('td', { text: [u.statusLabel, u.summary, u.log && `log: ${u.log.length > 200 ? `${u.log.slice(0, 200)}…` : u.log}`].filter(Boolean).join(' — ') + (u.applied ? '' : ' [not applied: the run had ended]') }),
      );
    const logLine = (l) => el('li', {}, el('time', { text: when(l.at) }), el('span', { class: 'by', text: l.createdBy || '' }), el('span', { class: 'msg', text: l.message }));
    function invocationView(r) {
      const i = r.invocation || {};
      const target = i.url || (i.repo ? `${i.org || ''}/${i.repo} · ${i.workflow || ''}` : null) || (i.projectName ? `${i.groupName || ''}/${i.projectName}` : null);
      return [target ? el('p', {}, el('strong', { text: `${r.invocationType} ` }), el('code', { text: target })) : null, pretty(i)];
    }
    function section(title, ...content) {
      const hid = `h-${title.toLowerCase().replace(/\W+/g, '-')}`;
      return el('section', { 'aria-labelledby': hid }, el('h2', { id: hid, text: title }), ...content);
    }
    let canAgain = false;
    function apply(res, first) {
      const r = res.run;
      if ('again' in res) canAgain = res.again;
      const newHead = header(r);
      if (head) head.replaceWith(newHead);
      head = newHead;
      if (first) {
        timeline = el('tbody');
        logs = el('ol', { class: 'logs', 'aria-live': 'polite' });
        fill(
          root,
          head,
          section('Timeline', el('table', { class: 'timeline' }, el('thead', {}, el('tr', {}, ['When', 'Status', 'Who', 'What'].map((h) => el('th', { scope: 'col', text: h })))), timeline)),
          section('Logs', logs),
          section('Invocation', ...invocationView(r)),
          (responseBox = r.response !== null ? section('Response', pretty(r.response)) : null),
          (propsBox = propertiesSection(r)),
          r.entityJson ? section('Entity', pretty(r.entityJson)) : null,
        );
        root.setAttribute('aria-busy', 'false');
      }
      for (const u of res.updates) {
        timeline.append(updateRow(u));
        state.lastUpdate = Math.max(state.lastUpdate, u.seq);
      }
      for (const l of res.logs) {
        logs.append(logLine(l));
        state.lastLog = Math.max(state.lastLog, l.seq);
      }
      if (!logs.children.length) logs.replaceChildren(el('li', { class: 'empty', text: 'No logs yet.' }));
      else logs.querySelector('li.empty')?.remove();
      document.title = `Run ${r.id} (${STATUS_TEXT[r.status] || r.status}) · action-router`;
      if ('approval' in res) showApproval(res.approval);
      // A response can arrive after the page opened (a synchronized webhook's answer, PATCH …/response).
      const text = r.response === null ? null : JSON.stringify(r.response);
      if (!first && text !== responseText && r.response !== null) {
        const next = section('Response', pretty(r.response));
        if (responseBox) responseBox.replaceWith(next);
        else root.querySelector('section[aria-labelledby="h-invocation"]').after(next);
        responseBox = next;
      }
      responseText = text;
      // The inputs arrive with the router's first update, which can come after the page opened (a run just executed).
      const props = JSON.stringify(r.properties);
      if (!first && props !== propsText) {
        const next = propertiesSection(r);
        propsBox.replaceWith(next);
        propsBox = next;
      }
      propsText = props;
    }
    const propertiesSection = (r) => section('Properties', pretty(r.properties), el('p', { class: 'hint', text: 'Censored inputs are masked before they reach the store.' }));
    let propsBox = null;
    let propsText = null;
    let approvalBox = null;
    let responseBox = null;
    let responseText = null;
    function approvalSection(a) {
      if (!a) return null;
      const box = el('section', { class: `approval state-${String(a.state).toLowerCase()}`, 'aria-labelledby': 'h-approval' });
      const stateText = { WAITING: 'waiting for a decision', APPROVED: 'approved; routing', RELEASED: 'approved and routed', DECLINED: 'declined', CANCELLED: 'cancelled', TIMED_OUT: 'timed out' }[a.state] || a.state;
      const list = el('ul', { class: 'approvers' }, a.approvers.length
        ? a.approvers.map((p) => el('li', {}, el('span', { class: 'who', text: p.clientId }), ' ', el('span', { class: `chip d-${p.state.toLowerCase()}`, text: p.state.toLowerCase() }), p.description ? el('span', { class: 'said', text: ` “${p.description}”` }) : null))
        : el('li', { text: 'No approvers are listed: an org admin decides.' }));
      const parts = [
        el('h2', { id: 'h-approval', text: 'Approval' }),
        el('p', {}, `${a.type === 'ALL' ? 'Every approver must approve' : 'One approval is enough'} — `, el('strong', { text: stateText })),
        list,
      ];
      if (a.canDecide || a.canCancel) {
        const note = el('textarea', { id: 'decision-note', rows: 2, maxlength: 1024, placeholder: 'optional' });
        const status = el('p', { class: 'live', role: 'status' });
        const act = (path, body, label) => async () => {
          for (const b of box.querySelectorAll('button')) b.disabled = true;
          status.textContent = `${label}…`;
          try {
            await post(path, { ...body, ...(note.value.trim() ? { description: note.value.trim() } : {}) });
            status.textContent = `${label}: done`;
            refresh();
          } catch (err) {
            status.textContent = `${label} refused: ${err.message}`;
            for (const b of box.querySelectorAll('button')) b.disabled = false;
          }
        };
        const base = `/console/api/runs/${encodeURIComponent(id)}`;
        parts.push(
          el('label', { for: 'decision-note', text: 'Description' }),
          note,
          el('div', { class: 'decide' },
            a.canDecide ? el('button', { type: 'button', class: 'approve', onclick: act(`${base}/approval`, { status: 'APPROVE' }, 'Approve') }, 'Approve') : null,
            a.canDecide ? el('button', { type: 'button', class: 'decline', onclick: act(`${base}/approval`, { status: 'DECLINE' }, 'Decline') }, 'Decline') : null,
            a.canCancel ? el('button', { type: 'button', class: 'cancel', onclick: act(`${base}/cancel`, {}, 'Cancel run') }, 'Cancel run') : null),
          status,
        );
      }
      return fill(box, ...parts);
    }
    function showApproval(a) {
      const next = approvalSection(a);
      if (approvalBox && next) approvalBox.replaceWith(next);
      else if (approvalBox) approvalBox.remove();
      else if (next) head.after(next);
      approvalBox = next;
    }
    let busy = null;
    async function refresh() {
      if (busy) return (busy.again = true);
      busy = { again: false };
      try {
        apply(await api(`/console/api/runs/${encodeURIComponent(id)}/changes?updates=${state.lastUpdate}&logs=${state.lastLog}`), false);
      } finally {
        const again = busy.again;
        busy = null;
        if (again) refresh();
      }
    }
    handlers.runs = (runs) => runs.some((r) => r.id === id) && refresh();
    handlers.reload = () => refresh();
    api(`/console/api/runs/${encodeURIComponent(id)}`).then(
      (res) => apply(res, true),
      (err) => {
        root.setAttribute('aria-busy', 'false');
        root.append(el('p', { class: 'error', role: 'alert', text: err.status === 404 ? 'No such run (or not one of your org).' : err.message }));
      },
    );
  }

  // ---- dead letters ---------------------------------------------------------------
  const LETTER_COPY = {
    masked: 'Censored inputs and the invocation\u2019s headers and body are masked, as on a run page; the dead-letter topic has the original bytes.',
    withheld: 'Not shown: the message may hold secrets that cannot be masked. The dead-letter topic has the original bytes.',
  };
  function deadLettersPage() {
    const tbody = document.querySelector('#letters tbody');
    const reasons = document.getElementById('reasons');
    const more = document.getElementById('more');
    const state = { reason: new URLSearchParams(location.search).get('reason') || '', letters: [] };
    async function detail(letter, cell) {
      const { letter: d } = await api(`/console/api/dead-letters/${letter.seq}`);
      const view = el('pre', { class: 'payload', tabindex: '0' });
      const show = (mode) => {
        view.textContent = mode === 'text' ? d.text : d.hex;
        asText.setAttribute('aria-pressed', String(mode === 'text'));
        asHex.setAttribute('aria-pressed', String(mode === 'hex'));
      };
      const asText = el('button', { type: 'button', text: 'Text', disabled: d.text === null, onclick: () => show('text') });
      const asHex = el('button', { type: 'button', text: 'Hex', onclick: () => show('hex') });
      const headers = Object.entries(d.headers || {});
      fill(
        cell,
        el('div', { class: 'toolbar', role: 'group', 'aria-label': 'Show the message as' }, asText, asHex, d.trimmed ? el('span', { class: 'hint', text: ` first ${d.keptBytes} of ${d.size} bytes` }) : null),
        LETTER_COPY[d.copy] ? el('p', { class: 'hint', text: LETTER_COPY[d.copy] }) : null,
        d.copy === 'withheld' ? null : view,
        el('dl', { class: 'headers' }, d.key !== null ? [el('dt', { text: 'key' }), el('dd', { text: d.key })] : null, headers.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])),
      );
      show(d.text !== null ? 'text' : 'hex');
    }
    function row(d) {
      const tr = el(
        'tr',
        { 'data-seq': d.seq },
        el('td', {}, el('time', { datetime: new Date(d.at).toISOString(), text: when(d.at) })),
        el('td', {}, el('span', { class: 'reason', text: d.reason || 'UNKNOWN' })),
        el('td', { class: 'c-error' }, el('button', { type: 'button', class: 'link', 'aria-expanded': 'false', text: d.error || '(no message)' })),
        el('td', {}, d.runId ? (d.runKnown ? el('a', { href: `/runs/${encodeURIComponent(d.runId)}`, text: d.runId }) : el('span', { text: d.runId })) : '–'),
        el('td', { class: 'c-org', text: d.orgId || '–' }),
        el('td', { class: 'c-src', text: `${d.sourceTopic || '?'} [${d.sourcePartition ?? '?'}] @${d.sourceOffset ?? '?'}` }),
        el('td', { text: `${d.size.toLocaleString()} B` }),
        el('td', { class: 'c-resend' },
          d.resent ? el('span', { class: 'resent', text: `re-sent; run ${STATUS_TEXT[d.resent.runStatus] || d.resent.runStatus}` }) : null,
          d.resentFrom ? el('span', { class: 'resent', text: `came from letter ${d.resentFrom.split('/').slice(-2).join('/')}` }) : null,
          d.canResend && !(d.resent && d.resent.runStatus !== 'FAILURE')
            ? el('button', { type: 'button', class: 'resend', 'aria-label': `Re-send dead letter ${d.partition}/${d.offset}`, onclick: (e) => resend({ seq: d.seq }, e.currentTarget) }, 'Re-send')
            : null),
      );
      const button = tr.querySelector('button');
      button.addEventListener('click', () => {
        const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains('detail');
        if (open) {
          tr.nextElementSibling.remove();
          button.setAttribute('aria-expanded', 'false');
          return;
        }
        const cell = el('td', { colspan: 8, text: 'Loading…' });
        tr.after(el('tr', { class: 'detail' }, cell));
        button.setAttribute('aria-expanded', 'true');
        detail(d, cell).catch((err) => (cell.textContent = err.message));
      });
      return tr;
    }
    const bar = document.getElementById('resend-bar');
    /** Re-sends (one letter, or a reason's), says what each became, and reloads. */
    async function resend(body, button) {
      button.disabled = true;
      announce('Re-sending…');
      try {
        const res = await post('/console/api/dead-letters/resend', body);
        const parts = Object.entries(res.counts).map(([k, n]) => `${n} ${k}`);
        const notSent = res.results.filter((r) => r.outcome !== 'resent').slice(0, 3).map((r) => `${r.letter}: ${r.message}`);
        announce(`Re-send: ${parts.join(', ') || 'nothing to do'}${notSent.length ? ` (${notSent.join('; ')})` : ''}`);
        await load(false);
      } catch (err) {
        announce(`Re-send refused: ${err.message}`);
        button.disabled = false;
      }
    }
    function renderBar(res) {
      const count = state.reason ? (res.reasons.find((r) => r.reason === state.reason) || { count: 0 }).count : 0;
      fill(bar, state.reason && res.canResendAll && count
        ? el('button', { type: 'button', class: 'resend', onclick: (e) => resend({ reason: state.reason }, e.currentTarget) }, `Re-send all ${state.reason} letters`)
        : null);
    }
    function renderReasons(list) {
      const total = list.reduce((n, r) => n + r.count, 0);
      const button = (reason, label, count) =>
        el('button', { type: 'button', class: 'reason-chip', 'aria-pressed': String(state.reason === reason), onclick: () => ((state.reason = reason), load(false)) },
          el('span', { text: label }), el('span', { class: 'count', text: count.toLocaleString() }));
      reasons.replaceChildren(button('', 'all', total), ...list.map((r) => button(r.reason, r.reason, r.count)));
    }
    async function load(append) {
      const before = append && state.letters.length ? state.letters[state.letters.length - 1].seq : undefined;
      const q = new URLSearchParams({ ...(state.reason ? { reason: state.reason } : {}), ...(before ? { before: String(before) } : {}) });
      history.replaceState(null, '', state.reason ? `/dead-letters?reason=${encodeURIComponent(state.reason)}` : '/dead-letters');
      const res = await api(`/console/api/dead-letters?${q}`);
      state.letters = append ? state.letters.concat(res.letters) : res.letters;
      renderReasons(res.reasons);
      renderBar(res);
      tbody.replaceChildren(...(state.letters.length ? state.letters.map(row) : [el('tr', {}, el('td', { colspan: 8, class: 'empty', text: 'No dead letters.' }))]));
      more.disabled = res.letters.length < 50;
    }
    more.addEventListener('click', () => load(true));
    handlers['dead-letters'] = (e) => {
      announce(`${e.added} new dead letter${e.added > 1 ? 's' : ''}`);
      if (!tbody.querySelector('tr.detail')) load(false);
    };
    load(false);
  }

  // ---- self-service ------------------------------------------------------------
  const OPERATION_TEXT = { CREATE: 'create', 'DAY-2': 'day-2', DELETE: 'delete' };
  function actionsPage() {
    const list = document.getElementById('actions');
    api('/console/api/actions').then(
      (res) => {
        list.setAttribute('aria-busy', 'false');
        if (!res.actions.length) return fill(list, el('li', { class: 'empty', text: 'No actions you may run. The catalog (ACTIONS_PATH) scopes actions by org and permissions.execute.' }));
        fill(list, res.actions.map((a) => el('li', { class: 'action-card' },
          el('span', { class: 'icon', 'aria-hidden': 'true', text: (a.icon || a.title).slice(0, 2) }),
          el('div', { class: 'text' },
            el('h2', {}, el('a', { href: `/actions/${encodeURIComponent(a.identifier)}`, text: a.title })),
            a.description ? el('p', { text: a.description }) : null,
            el('p', { class: 'tags' },
              el('span', { class: `op op-${a.operation.toLowerCase()}`, text: OPERATION_TEXT[a.operation] || a.operation }),
              el('span', { class: 'tag', text: a.invocationType }),
              a.requiresApproval ? el('span', { class: 'tag', text: 'needs approval' }) : null)))));
      },
      (err) => list.replaceWith(el('p', { class: 'error', role: 'alert', text: err.message })),
    );
  }

  /** The page's own check of one input, the rules the server applies too; null when fine. */
  function inputProblem(input, value) {
    const empty = value === undefined || value === null || value === '' || (Array.isArray(value) && !value.length);
    if (empty) return input.required ? 'Required.' : null;
    if (input.type === 'number' || input.type === 'integer') {
      if (typeof value !== 'number' || !Number.isFinite(value)) return 'Enter a number.';
      if (input.type === 'integer' && !Number.isInteger(value)) return 'Enter a whole number.';
      if (input.minimum !== undefined && value < input.minimum) return `At least ${input.minimum}.`;
      if (input.maximum !== undefined && value > input.maximum) return `At most ${input.maximum}.`;
    }
    if (input.type === 'string' && typeof value === 'string') {
      const n = [...value].length;
      if (input.minLength !== undefined && n < input.minLength) return `At least ${input.minLength} characters.`;
      if (input.maxLength !== undefined && n > input.maxLength) return `At most ${input.maxLength} characters.`;
      if (input.format === 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) return 'Enter an email address.';
      if (input.format === 'url' && !safeUrl(value)) return 'Enter an http or https URL.';
      if (input.pattern !== undefined && !new RegExp(input.pattern, 'u').test(value)) return `Must match ${input.pattern}.`;
    }
    if (input.type === 'object' && value === INVALID_JSON) return 'Enter a JSON object.';
    if (Array.isArray(value)) {
      if (input.minItems !== undefined && value.length < input.minItems) return `At least ${input.minItems} items.`;
      if (input.maxItems !== undefined && value.length > input.maxItems) return `At most ${input.maxItems} items.`;
      if (value.some((v) => v === INVALID_JSON)) return 'Every item must be a number.';
    }
    return null;
  }
  const INVALID_JSON = Symbol('invalid');

  /** One input's control: its element(s), and how to read and set its value. */
  function control(input, fid) {
    const common = { id: fid, name: input.name, 'aria-describedby': `${fid}-help ${fid}-err` };
    if (input.enum) {
      const select = el('select', common, input.required ? null : el('option', { value: '', text: '—' }),
        input.enum.map((v, i) => el('option', { value: String(i), text: String(v) })));
      return {
        node: select,
        get: () => (select.value === '' ? undefined : input.enum[Number(select.value)]),
        set: (v) => { const i = input.enum.findIndex((e) => JSON.stringify(e) === JSON.stringify(v)); select.value = i < 0 ? '' : String(i); },
      };
    }
    if (input.type === 'boolean') {
      const box = el('input', { ...common, type: 'checkbox' });
      return { node: box, get: () => box.checked, set: (v) => (box.checked = v === true), check: true };
    }
    if (input.type === 'number' || input.type === 'integer') {
      const field = el('input', { ...common, type: 'number', inputmode: input.type === 'integer' ? 'numeric' : 'decimal', step: input.type === 'integer' ? '1' : 'any', min: input.minimum, max: input.maximum });
      return { node: field, get: () => (field.value === '' ? (field.validity.badInput ? NaN : undefined) : Number(field.value)), set: (v) => (field.value = v === undefined || v === null ? '' : String(v)) };
    }
    if (input.type === 'object') {
      const area = el('textarea', { ...common, rows: 5, class: 'json-edit', spellcheck: 'false', placeholder: '{ }' });
      return {
        node: area,
        get: () => {
          if (!area.value.trim()) return undefined;
          try {
            const v = JSON.parse(area.value);
            return v && typeof v === 'object' && !Array.isArray(v) ? v : INVALID_JSON;
          } catch {
            return INVALID_JSON;
          }
        },
        set: (v) => (area.value = v === undefined || v === null ? '' : JSON.stringify(v, null, 2)),
      };
    }
    if (input.type === 'array' && input.items && input.items.enum) {
      const select = el('select', { ...common, multiple: true, size: Math.min(6, input.items.enum.length) }, input.items.enum.map((v, i) => el('option', { value: String(i), text: String(v) })));
      return {
        node: select,
        get: () => [...select.selectedOptions].map((o) => input.items.enum[Number(o.value)]),
        set: (v) => { for (const o of select.options) o.selected = Array.isArray(v) && v.some((x) => JSON.stringify(x) === JSON.stringify(input.items.enum[Number(o.value)])); },
      };
    }
    if (input.type === 'array') {
      // A list editor: one field per item, added and removed with buttons (keyboard reachable).
      const numeric = input.items && (input.items.type === 'number' || input.items.type === 'integer');
      const rows = el('ol', { class: 'list-edit', id: fid, tabindex: '-1', 'aria-describedby': `${fid}-help ${fid}-err` });
      const addRow = (value, focus) => {
        const n = rows.children.length + 1;
        const item = el('input', { type: numeric ? 'number' : 'text', step: 'any', 'aria-label': `${input.title}, item ${n}`, value: value === undefined ? '' : String(value) });
        const li = el('li', {}, item, el('button', { type: 'button', class: 'remove', 'aria-label': `Remove item ${n} of ${input.title}`, onclick: () => { li.remove(); add.focus(); } }, 'Remove'));
        rows.append(li);
        if (focus) item.focus();
      };
      const add = el('button', { type: 'button', class: 'add', onclick: () => addRow(undefined, true) }, `Add item`);
      return {
        node: el('div', { class: 'list-box' }, rows, add),
        focusNode: rows,
        get: () => [...rows.querySelectorAll('input')].map((i) => i.value).filter((v) => v !== '').map((v) => (numeric ? (Number.isFinite(Number(v)) ? Number(v) : INVALID_JSON) : v)),
        set: (v) => { rows.replaceChildren(); for (const x of Array.isArray(v) ? v : []) addRow(x, false); },
      };
    }
    // Strings: the format picks the field.
    if (input.format === 'multi-line') {
      const area = el('textarea', { ...common, rows: 4, maxlength: input.maxLength });
      return { node: area, get: () => area.value || undefined, set: (v) => (area.value = v == null ? '' : String(v)) };
    }
    if (input.format === 'date-time') {
      const field = el('input', { ...common, type: 'datetime-local', step: '1' });
      const local = (iso) => { const d = new Date(iso); return Number.isFinite(d.getTime()) ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : ''; };
      return { node: field, get: () => (field.value ? new Date(field.value).toISOString() : undefined), set: (v) => (field.value = v ? local(v) : '') };
    }
    const type = input.secret ? 'password' : input.format === 'email' ? 'email' : input.format === 'url' ? 'url' : 'text';
    const field = el('input', { ...common, type, maxlength: input.maxLength, autocomplete: input.secret ? 'new-password' : 'off', inputmode: type === 'email' ? 'email' : type === 'url' ? 'url' : null });
    return { node: field, get: () => (field.value === '' ? undefined : field.value), set: (v) => (field.value = v == null ? '' : String(v)) };
  }

  function actionPage() {
    const id = body.dataset.actionId;
    const again = body.dataset.again || null;
    const root = document.getElementById('action');
    const failed = (err) => {
      root.setAttribute('aria-busy', 'false');
      root.append(el('p', { class: 'error', role: 'alert', text: err.status === 404 ? 'No such action, or not one you may run.' : err.message }));
    };
    Promise.all([api(`/console/api/actions/${encodeURIComponent(id)}`), again ? api(`/console/api/runs/${encodeURIComponent(again)}`) : null]).then(([res, earlier]) => {
      const a = res.action;
      const fields = [];
      const form = el('form', { class: 'run-form', novalidate: true, 'aria-labelledby': 'h-action' });
      const summary = el('div', { class: 'form-errors', role: 'alert', tabindex: '-1', hidden: true });
      const fieldBox = (input, fid, ctl, note) => {
        const label = el('label', { for: ctl.focusNode ? null : fid, id: `${fid}-label` }, input.title, input.required ? el('span', { class: 'req', 'aria-hidden': 'true', text: ' *' }) : null, input.required ? el('span', { class: 'visually-hidden', text: ' (required)' }) : null);
        if (ctl.focusNode) ctl.focusNode.setAttribute('aria-labelledby', `${fid}-label`);
        if (input.required && !ctl.focusNode) ctl.node.setAttribute('aria-required', 'true');
        const help = el('p', { class: 'help', id: `${fid}-help` }, [input.description, note].filter(Boolean).join(' '));
        const err = el('p', { class: 'field-error', id: `${fid}-err` });
        const box = el('div', { class: `form-field${ctl.check ? ' check' : ''}`, 'data-field': input.name }, ctl.check ? [ctl.node, label] : [label, ctl.node], help, err);
        fields.push({ input, ctl, err, box });
        return box;
      };
      const entityInput = { name: 'entity', title: `Entity${a.blueprint ? ` (${a.blueprint})` : ''}`, type: 'string', required: true, description: `The identifier of the entity this ${a.operation} action acts on.` };
      const censored = new Set(earlier ? earlier.run.censored || [] : []);
      const boxes = [];
      if (a.takesEntity) boxes.push(fieldBox(entityInput, 'in-entity', control(entityInput, 'in-entity')));
      a.inputs.forEach((input, i) => {
        const fid = `in-${i}`;
        const ctl = control(input, fid);
        const note = input.secret ? (earlier ? 'Secret: type it again (a run never shows it).' : 'Secret: masked on every run page.') : null;
        boxes.push(fieldBox(input, fid, ctl, note));
        if (input.default !== undefined) ctl.set(input.default);
      });
      if (earlier) {
        const props = earlier.run.properties || {};
        for (const f of fields) {
          if (f.input.name === 'entity' && f.input === entityInput) f.ctl.set(earlier.run.entity);
          else if (f.input.name in props && !censored.has(f.input.name) && !f.input.secret) f.ctl.set(props[f.input.name]);
        }
      }
      const submit = el('button', { type: 'submit', class: 'primary' }, again ? 'Run again' : 'Run');
      const status = el('p', { class: 'live', role: 'status' });
      const showErrors = (problems) => {
        for (const f of fields) {
          const p = problems.get(f.input === entityInput ? 'entity' : f.input.name);
          f.err.textContent = p || '';
          f.box.classList.toggle('invalid', Boolean(p));
          (f.ctl.focusNode || f.ctl.node).setAttribute('aria-invalid', p ? 'true' : 'false');
        }
        summary.hidden = problems.size === 0;
        fill(summary, problems.size ? [
          el('p', { text: problems.size === 1 ? 'One field needs attention.' : `${problems.size} fields need attention.` }),
          el('ul', {}, [...problems].map(([k, m]) => {
            const f = fields.find((x) => (x.input === entityInput ? 'entity' : x.input.name) === k);
            return el('li', {}, f ? el('a', { href: `#${(f.ctl.focusNode || f.ctl.node).id}`, text: `${f.input.title}: ${m}` }) : `${k}: ${m}`);
          })),
        ] : []);
        const first = fields.find((f) => problems.has(f.input === entityInput ? 'entity' : f.input.name));
        if (first) (first.ctl.focusNode || first.ctl.node).focus();
        else if (problems.size) summary.focus();
      };
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const problems = new Map();
        const properties = {};
        let entity = null;
        for (const f of fields) {
          const value = f.ctl.get();
          const p = inputProblem(f.input, value);
          if (p) problems.set(f.input === entityInput ? 'entity' : f.input.name, p);
          else if (f.input === entityInput) entity = value === undefined ? null : value;
          else if (value !== undefined && !(Array.isArray(value) && !value.length && !f.input.required)) properties[f.input.name] = value;
        }
        showErrors(problems);
        if (problems.size) return (status.textContent = 'Not sent: fix the fields above.');
        submit.disabled = true;
        status.textContent = 'Starting the run…';
        try {
          const res = await post(`/console/api/actions/${encodeURIComponent(a.identifier)}/runs`, { properties, ...(a.takesEntity ? { entity } : {}), ...(again ? { repeats: again } : {}) });
          status.textContent = `Run ${res.run.id} started.`;
          location.href = `/runs/${encodeURIComponent(res.run.id)}`;
        } catch (err) {
          submit.disabled = false;
          // The server's answer, per field where it names one.
          const details = (err.body && err.body.details) || [];
          if (details.length) showErrors(new Map(details.map((d) => [d.field, d.message])));
          status.textContent = `Refused: ${err.message}`;
        }
      });
      fill(form, summary, boxes, el('div', { class: 'form-actions' }, submit), status);
      fill(root,
        el('header', { class: 'action-head' },
          el('h1', { id: 'h-action', text: a.title }),
          el('p', { class: 'tags' }, el('span', { class: `op op-${a.operation.toLowerCase()}`, text: OPERATION_TEXT[a.operation] || a.operation }), el('span', { class: 'tag', text: a.invocationType }), a.requiresApproval ? el('span', { class: 'tag', text: 'needs approval' }) : null),
          a.description ? el('p', { text: a.description }) : null,
          again ? el('p', { class: 'hint' }, 'Running ', el('a', { href: `/runs/${encodeURIComponent(again)}`, text: again }), ' again with its inputs.') : null),
        form);
      root.setAttribute('aria-busy', 'false');
      document.title = `${a.title} · action-router`;
    }, failed);
  }

  if (page === 'runs') runsPage();
  else if (page === 'actions') actionsPage();
  else if (page === 'action') actionPage();
  else if (page === 'run') runPage();
  else if (page === 'dead-letters') deadLettersPage();
  connect();
})();

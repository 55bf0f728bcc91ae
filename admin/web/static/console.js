// flashgate console: a client of the admin API (contract §6, §8, §9, §11
// and the live view of docs/pages.md). The admin token lives in
// sessionStorage: this tab only, gone when it closes.
'use strict';
(function () {
  const KEY = 'flashgate.admin';
  const STATUSES = ['draft', 'scheduled', 'upcoming', 'live', 'ended', 'archived'];
  const view = document.getElementById('view');
  let timer = null; // the live view's refresh

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false) el.append(kid.nodeType ? kid : document.createTextNode(String(kid)));
    return el;
  }
  function toast(text, err) {
    const t = h('div', { class: 'toast' + (err ? ' err' : ''), text });
    const box = document.getElementById('toasts');
    box.append(t);
    while (box.children.length > 2) box.firstChild.remove();
    setTimeout(() => t.remove(), err ? 6000 : 3000);
  }
  const token = () => sessionStorage.getItem(KEY) || '';

  async function api(method, path, body) {
    let res;
    try {
      res = await fetch(path, {
        method, cache: 'no-store',
        headers: Object.assign({ Authorization: 'Bearer ' + token() }, body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (e) { return { status: 0, body: { code: 'unavailable', message: 'network error: ' + e.message } }; }
    let data = {};
    try { data = await res.json(); } catch (e) { data = { code: 'internal', message: 'HTTP ' + res.status }; }
    if (res.status === 401 && token()) { sessionStorage.removeItem(KEY); toast('The admin token was refused: sign in again.', true); route(); }
    return { status: res.status, body: data };
  }
  // act runs an admin call and tells the operator how it went.
  async function act(method, path, body, done) {
    const r = await api(method, path, body);
    if (r.status >= 200 && r.status < 300) { if (done) toast(done); return r; }
    if (r.status !== 401) toast((r.body.code || 'error') + ': ' + (r.body.message || 'HTTP ' + r.status), true);
    return null;
  }

  // ---- time ----
  const pad = (n) => String(n).padStart(2, '0');
  function local(t) { if (!t) return ''; const d = new Date(t); return d.toLocaleString(); }
  function toInput(t) { const d = new Date(t); return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  function fromInput(v) { return v ? new Date(v).toISOString() : ''; }
  function statusOf(a) {
    if (a.status) return a.status;
    const t = Date.now();
    if (!a.published) return a.publish_at ? 'scheduled' : 'draft';
    if (t < Date.parse(a.start_at)) return 'upcoming';
    if (t < Date.parse(a.end_at)) return 'live';
    return 'ended';
  }
  const chip = (s) => h('span', { class: 'chip ' + s, 'data-status': s, text: s });

  // ---- routing ----
  function route() {
    clearInterval(timer); timer = null; window.onresize = null;
    const signed = !!token();
    document.getElementById('tabs').hidden = !signed;
    document.getElementById('signout').hidden = !signed;
    view.textContent = '';
    if (!signed) return login();
    const p = location.hash.replace(/^#/, '') || '/';
    let m;
    document.querySelectorAll('#tabs a').forEach((a) => a.classList.toggle('on', p.startsWith('/' + a.dataset.tab) || (a.dataset.tab === 'sales' && (p === '/' || p.startsWith('/activities') || p.startsWith('/items')))));
    if ((m = p.match(/^\/activities\/(\d+)$/))) return activity(Number(m[1]));
    if ((m = p.match(/^\/items\/(\d+)\/live$/))) return live(Number(m[1]));
    if (p === '/bans') return bans();
    if (p === '/points') return points();
    return sales(new URLSearchParams(p.split('?')[1] || '').get('status') || '');
  }
  window.addEventListener('hashchange', route);
  document.getElementById('signout').addEventListener('click', () => { sessionStorage.removeItem(KEY); location.hash = '#/'; route(); });

  function login() {
    const input = h('input', { type: 'password', id: 'admin-token', autocomplete: 'off', placeholder: 'FLASHGATE_ADMIN_TOKEN', required: true });
    const form = h('form', { class: 'stack', onsubmit: async (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      const r = await api('GET', '/admin/v1/activities');
      if (r.status === 200) { toast('Signed in.'); route(); }
      else if (r.status !== 401) { toast('The admin API answered ' + r.status + ': ' + (r.body.message || ''), true); route(); }
    } }, h('label', {}, 'Admin token', input), h('button', { class: 'btn', type: 'submit', id: 'signin' }, 'Sign in'));
    view.append(h('div', { class: 'card login' }, h('h1', {}, 'Sign in'), h('p', {}, 'The token is kept for this tab only.'), form));
    input.focus();
  }

  // ---- sales ----
  async function sales(filter) {
    const list = h('div', { class: 'card' }, h('p', { class: 'empty' }, 'Loading…'));
    const chips = h('div', { class: 'chips' }, ['', ...STATUSES].map((s) =>
      h('button', { class: 'filter' + (s === filter ? ' on' : ''), 'data-filter': s || 'all', onclick: () => { location.hash = '#/' + (s ? '?status=' + s : ''); } }, s || 'all')));
    view.append(h('div', { class: 'head' }, h('h1', { class: 'grow' }, 'Sales'), chips), newActivityForm(), list);
    const r = await api('GET', '/admin/v1/activities' + (filter ? '?status=' + filter : ''));
    list.textContent = '';
    if (r.status !== 200) { list.append(h('p', { class: 'empty' }, 'Could not list sales: ' + (r.body.message || r.status))); return; }
    const acts = r.body.activities || [];
    if (!acts.length) { list.append(h('p', { class: 'empty' }, filter ? 'No ' + filter + ' sales.' : 'No sales yet: create one above.')); return; }
    list.append(h('table', { id: 'activities' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', { class: 'hide-s' }, 'Starts'), h('th', { class: 'hide-s' }, 'Ends'), h('th', { class: 'hide-s' }, 'Publishes'))),
      h('tbody', {}, acts.map((a) => h('tr', { class: 'click', 'data-activity': a.id, onclick: () => { location.hash = '#/activities/' + a.id; } },
        h('td', { class: 'mute' }, a.id), h('td', {}, h('b', {}, a.name)), h('td', {}, chip(statusOf(a))),
        h('td', { class: 'hide-s' }, local(a.start_at)), h('td', { class: 'hide-s' }, local(a.end_at)), h('td', { class: 'hide-s mute' }, a.publish_at ? local(a.publish_at) : '—'))))));
  }

  function newActivityForm() {
    const now = Date.now();
    const name = h('input', { id: 'new-name', placeholder: 'Singles Day', required: true });
    const start = h('input', { id: 'new-start', type: 'datetime-local', value: toInput(now + 60e3), required: true });
    const end = h('input', { id: 'new-end', type: 'datetime-local', value: toInput(now + 3600e3), required: true });
    return h('form', { class: 'card formrow', id: 'new-activity', onsubmit: async (e) => {
      e.preventDefault();
      const r = await act('POST', '/admin/v1/activities', { name: name.value, start_at: fromInput(start.value), end_at: fromInput(end.value) }, 'Sale created.');
      if (r) location.hash = '#/activities/' + r.body.id;
    } }, h('h2', { style: null }, 'New sale'), h('label', {}, 'Name', name), h('label', {}, 'Starts', start), h('label', {}, 'Ends', end), h('button', { class: 'btn', type: 'submit', id: 'create' }, 'Create'));
  }

  // ---- one activity ----
  async function activity(id) {
    const r = await api('GET', '/admin/v1/activities/' + id);
    if (r.status !== 200) { view.append(h('div', { class: 'card empty' }, 'Activity ' + id + ': ' + (r.body.message || r.status))); return; }
    const a = r.body.activity;
    let st = a.status;
    if (!st) { // older admin: the list knows the status
      const l = await api('GET', '/admin/v1/activities');
      const me = (l.body.activities || []).find((x) => x.id === id);
      st = me ? statusOf(me) : statusOf(a);
      if (me) a.publish_at = me.publish_at;
    }
    const reload = () => route();
    const draft = st === 'draft' || st === 'scheduled';
    const open = st === 'upcoming' || st === 'live';

    const at = h('input', { type: 'datetime-local', id: 'publish-at', value: toInput(Date.now() + 5 * 60e3) });
    const actions = h('div', { class: 'acts' });
    if (draft) {
      actions.append(
        h('button', { class: 'btn', id: 'publish', onclick: async () => { if (await act('POST', '/admin/v1/activities/' + id + '/publish', undefined, 'Published: stock is in Redis.')) reload(); } }, 'Publish now'),
        at, h('button', { class: 'btn ghost', id: 'schedule', onclick: async () => { if (await act('POST', '/admin/v1/activities/' + id + '/publish', { at: fromInput(at.value) }, 'Scheduled.')) reload(); } }, 'Publish at'));
      if (st === 'scheduled') actions.append(h('button', { class: 'btn ghost', id: 'unschedule', onclick: async () => { if (await act('DELETE', '/admin/v1/activities/' + id + '/publish', undefined, 'Schedule cancelled.')) reload(); } }, 'Cancel schedule'));
      actions.append(h('button', { class: 'btn danger', id: 'delete', onclick: async () => { if (confirm('Delete this sale and its items?') && await act('DELETE', '/admin/v1/activities/' + id, undefined, 'Deleted.')) location.hash = '#/'; } }, 'Delete'));
    }
    if (open) actions.append(h('button', { class: 'btn danger', id: 'close', onclick: async () => { if (confirm('End this sale now?') && await act('POST', '/admin/v1/activities/' + id + '/close', undefined, 'Closed: every gateway answers ended within a second.')) reload(); } }, 'Close now'));

    const name = h('input', { id: 'edit-name', value: a.name });
    const start = h('input', { id: 'edit-start', type: 'datetime-local', value: toInput(a.start_at) });
    const end = h('input', { id: 'edit-end', type: 'datetime-local', value: toInput(a.end_at) });
    const edit = h('form', { class: 'formrow', onsubmit: async (e) => {
      e.preventDefault();
      const body = {};
      if (name.value !== a.name) body.name = name.value;
      if (fromInput(start.value) !== new Date(toInput(a.start_at)).toISOString()) body.start_at = fromInput(start.value);
      if (fromInput(end.value) !== new Date(toInput(a.end_at)).toISOString()) body.end_at = fromInput(end.value);
      if (!Object.keys(body).length) { toast('Nothing changed.'); return; }
      if (await act('PATCH', '/admin/v1/activities/' + id, body, 'Saved.')) reload();
    } }, h('label', {}, 'Name', name), h('label', {}, 'Starts', start), h('label', {}, 'Ends', end), h('button', { class: 'btn ghost', type: 'submit', id: 'save' }, 'Save'));

    view.append(
      h('div', { class: 'head' }, h('a', { href: '#/' }, '‹ Sales'), h('h1', {}, a.name), chip(st), h('span', { class: 'grow' }), actions),
      h('div', { class: 'card' }, h('h2', {}, 'Window'), h('p', { class: 'mute' }, local(a.start_at) + ' → ' + local(a.end_at) + (a.publish_at ? ' · publishes ' + local(a.publish_at) : '') + (a.published_at ? ' · published ' + local(a.published_at) : '')), edit),
      h('div', { class: 'card' }, h('h2', {}, 'Items'), itemsTable(a, draft, open, reload)),
      draft ? newItemForm(id, reload) : '');
  }

  function itemsTable(a, draft, open, reload) {
    const items = a.items || [];
    if (!items.length) return h('p', { class: 'empty' }, 'No items yet: add one below.');
    return h('table', { id: 'items' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Item'), h('th', { class: 'num' }, 'Price'), h('th', { class: 'num hide-s' }, 'Points'), h('th', { class: 'num' }, 'Stock'), h('th', { class: 'num hide-s' }, 'Shards'), h('th', { class: 'hide-s' }, 'Guards'), h('th', {}, ''))),
      h('tbody', {}, items.map((it) => {
        const delta = h('input', { class: 'num', type: 'number', step: 1, placeholder: '±units', 'data-stock': it.id });
        const acts = h('div', { class: 'acts' });
        if (draft) acts.append(h('button', { class: 'btn ghost small', onclick: () => editItem(it, reload) }, 'Edit'));
        if (draft || open) acts.append(delta, h('button', { class: 'btn ghost small', 'data-stock-go': it.id, onclick: async () => {
          const n = Number(delta.value);
          if (!Number.isInteger(n) || n === 0) { toast('Type a whole number of units, not 0.', true); return; }
          const r = await act('POST', '/admin/v1/items/' + it.id + '/stock', { delta: n });
          if (r) { toast('Stock ' + r.body.stock + ', remaining ' + r.body.remaining + '.'); reload(); }
        } }, 'Adjust'));
        if (!draft) acts.append(
          h('button', { class: 'btn ghost small', onclick: async () => {
            const r = await act('GET', '/admin/v1/items/' + it.id + '/reconcile');
            if (r) { const x = r.body.reconcile; toast('stock ' + x.stock + ' = remaining ' + x.remaining + ' + reserved ' + x.reserved + ' + live orders ' + x.live_orders + (x.drift ? ' · DRIFT ' + x.drift : ' · no drift'), !!x.drift); }
          } }, 'Reconcile'),
          h('a', { class: 'btn small', href: '#/items/' + it.id + '/live', 'data-live': it.id }, 'Live view'));
        return h('tr', { 'data-item': it.id }, h('td', {}, h('b', {}, it.name), h('div', { class: 'mute' }, '#' + it.id)), h('td', { class: 'num' }, '¥' + it.price), h('td', { class: 'num hide-s' }, it.points),
          h('td', { class: 'num' }, it.stock), h('td', { class: 'num hide-s' }, it.shards),
          h('td', { class: 'hide-s mute' }, [it.require_path ? 'path' : '', it.require_captcha ? 'captcha' : ''].filter(Boolean).join(' · ') || '—'), h('td', {}, acts));
      })));
  }

  function itemFields(it) {
    const f = {
      name: h('input', { name: 'name', value: it ? it.name : '', placeholder: 'Phone', required: true }),
      price: h('input', { name: 'price', class: 'num', value: it ? it.price : '', placeholder: '19.90', inputmode: 'decimal', required: true }),
      points: h('input', { name: 'points', class: 'num', type: 'number', min: 0, value: it ? it.points : '', placeholder: 'cents' }),
      stock: h('input', { name: 'stock', class: 'num', type: 'number', min: 1, value: it ? it.stock : 100, required: !it, disabled: !!it }),
      shards: h('input', { name: 'shards', class: 'num', type: 'number', min: 1, max: 256, value: it ? it.shards : 8 }),
      require_path: h('input', { name: 'require_path', type: 'checkbox', checked: it && it.require_path }),
      require_captcha: h('input', { name: 'require_captcha', type: 'checkbox', checked: it && it.require_captcha }),
    };
    f.row = [h('label', {}, 'Name', f.name), h('label', {}, 'Price ¥', f.price), h('label', {}, 'Points', f.points), h('label', {}, 'Stock', f.stock), h('label', {}, 'Shards', f.shards),
      h('label', { class: 'check' }, f.require_path, 'Hidden path'), h('label', { class: 'check', title: 'the buy needs the path token, handed out only against a solved captcha' }, f.require_captcha, 'Captcha')];
    f.body = () => {
      const b = { name: f.name.value, price: f.price.value.trim(), shards: Number(f.shards.value), require_path: f.require_path.checked, require_captcha: f.require_captcha.checked };
      if (f.points.value !== '') b.points = Number(f.points.value);
      return b;
    };
    return f;
  }

  function newItemForm(activityID, reload) {
    const f = itemFields(null);
    return h('form', { class: 'card formrow', id: 'new-item', onsubmit: async (e) => {
      e.preventDefault();
      const b = f.body(); b.stock = Number(f.stock.value);
      if (await act('POST', '/admin/v1/activities/' + activityID + '/items', b, 'Item added.')) reload();
    } }, h('h2', {}, 'Add an item'), f.row, h('button', { class: 'btn', type: 'submit', id: 'add-item' }, 'Add item'));
  }

  function editItem(it, reload) {
    const f = itemFields(it);
    const form = h('form', { class: 'card formrow', onsubmit: async (e) => {
      e.preventDefault();
      const b = f.body(), changed = {};
      for (const k of Object.keys(b)) if (String(b[k]) !== String(it[k])) changed[k] = b[k];
      if (!Object.keys(changed).length) { toast('Nothing changed.'); return; }
      if (await act('PATCH', '/admin/v1/items/' + it.id, changed, 'Item saved.')) reload();
    } }, h('h2', {}, 'Edit ' + it.name), f.row, h('button', { class: 'btn', type: 'submit' }, 'Save item'), h('button', { class: 'btn ghost', type: 'button', onclick: () => form.remove() }, 'Cancel'));
    view.append(form);
    form.scrollIntoView({ behavior: 'smooth' });
  }

  // ---- the live view ----
  const CODES = [['ok', '202 ok', '#16a34a'], ['duplicate', '409 duplicate', '#7c3aed'], ['sold_out', '410 sold out', '#64748b'], ['rate_limited', '429 rate limited', '#d97706'], ['unavailable', '503 unavailable', '#dc2626']];
  const ORDER_COLORS = { unpaid: '#f59e0b', paid: '#16a34a', cancelled: '#94a3b8', refunded: '#60a5fa' };

  function live(id) {
    const title = h('h1', {}, 'Item ' + id);
    const updated = h('span', { class: 'updated', id: 'updated' }, 'loading…');
    const kv = h('div', { class: 'kv' });
    const shards = h('div', { id: 'shards' });
    const canvas = h('canvas', { class: 'chart', id: 'answers-chart', width: 800, height: 240 });
    const legend = h('div', { class: 'legend', id: 'answers-legend' });
    const orders = h('div', { id: 'orders' });
    view.append(
      h('div', { class: 'head' }, h('a', { href: '#/', onclick: (e) => { e.preventDefault(); history.back(); } }, '‹ Back'), title, h('span', { class: 'grow' }), updated),
      h('div', { class: 'card' }, kv),
      h('div', { class: 'livegrid' },
        h('div', { class: 'card wide' }, h('h2', {}, 'Answers per second, whole fleet (last 60 s)'), canvas, legend),
        h('div', { class: 'card' }, h('h2', {}, 'Remaining per shard'), shards),
        h('div', { class: 'card' }, h('h2', {}, 'Orders by status'), orders)));
    let inflight = false, last = null;
    // A new size (a phone turned, a window resized) redraws at once.
    window.onresize = () => { if (last) drawAnswers(canvas, legend, last.answers); };
    async function tick() {
      if (inflight) return;
      inflight = true;
      const r = await api('GET', '/admin/v1/items/' + id + '/live');
      inflight = false;
      if (r.status !== 200) { updated.textContent = 'error: ' + (r.body.message || r.status); return; }
      const l = r.body.live;
      last = l;
      title.textContent = l.name + ' · live';
      const sold = l.stock - l.remaining;
      const rate = (c) => { const s = l.answers.codes[c] || []; return s.length ? s[s.length - 1] : 0; };
      kv.textContent = '';
      kv.append(
        h('div', {}, h('span', {}, 'Remaining'), h('b', { id: 'live-remaining' }, l.remaining)),
        h('div', {}, h('span', {}, 'Stock'), h('b', { id: 'live-stock' }, l.stock)),
        h('div', {}, h('span', {}, 'Taken'), h('b', { id: 'live-sold' }, sold)),
        h('div', {}, h('span', {}, 'Buys ok / s'), h('b', {}, rate('ok'))),
        h('div', {}, h('span', {}, 'Answers / s'), h('b', {}, Object.keys(l.answers.codes).reduce((n, c) => n + rate(c), 0))),
        h('div', {}, h('span', {}, 'Window'), h('b', { style: null, class: 'mute' }, Date.now() < Date.parse(l.start_at) ? 'upcoming' : Date.now() < Date.parse(l.end_at) ? 'live' : 'ended')));
      drawShards(shards, l.shards);
      drawAnswers(canvas, legend, l.answers);
      drawOrders(orders, l.orders);
      updated.textContent = 'updated ' + new Date(l.at).toLocaleTimeString();
    }
    tick();
    timer = setInterval(tick, 1000);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; }

  function drawShards(box, shards) {
    const W = 560, H = 220, top = 18, bottom = 24, max = Math.max(1, ...shards.map((s) => s.remaining + s.in_transfer));
    const bw = W / shards.length;
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'chart', role: 'img', 'aria-label': 'remaining units per shard' });
    shards.forEach((sh, i) => {
      const v = sh.remaining, hgt = (H - top - bottom) * v / max, x = i * bw + bw * 0.15, w = bw * 0.7;
      const th = (H - top - bottom) * sh.in_transfer / max;
      s.append(svg('rect', { x, y: top, width: w, height: H - top - bottom, rx: 4, fill: '#f1f5f9' }));
      s.append(svg('rect', { x, y: H - bottom - hgt, width: w, height: hgt, rx: 4, fill: v === 0 ? '#cbd5e1' : '#4f46e5', 'data-shard': i, 'data-remaining': v }));
      if (th > 0) s.append(svg('rect', { x, y: H - bottom - hgt - th, width: w, height: th, fill: '#f59e0b' }));
      if (shards.length <= 64) {
        s.append(svg('text', { x: x + w / 2, y: H - bottom - hgt - th - 4, 'text-anchor': 'middle', 'font-size': 11, fill: '#334155' }, v));
        s.append(svg('text', { x: x + w / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 10, fill: '#94a3b8' }, i));
      }
    });
    box.textContent = '';
    box.append(s);
  }

  function drawAnswers(canvas, legend, a) {
    const dpr = window.devicePixelRatio || 1, cssW = canvas.clientWidth || 800, cssH = canvas.clientHeight || 240;
    if (canvas.width !== Math.round(cssW * dpr)) { canvas.width = Math.round(cssW * dpr); canvas.height = Math.round(cssH * dpr); }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssW, cssH);
    const L = 44, R = 10, T = 10, B = 22, w = cssW - L - R, hh = cssH - T - B;
    const n = a.to - a.from + 1;
    let max = 1;
    for (const [c] of CODES) for (const v of a.codes[c] || []) max = Math.max(max, v);
    // Four grid steps of 1, 2 or 5 times a power of ten.
    const raw = Math.max(1, max / 4), p10 = Math.pow(10, Math.floor(Math.log10(raw)));
    max = 4 * [1, 2, 5, 10].map((m) => m * p10).find((x) => x >= raw);
    g.font = '11px system-ui, sans-serif'; g.fillStyle = '#94a3b8'; g.strokeStyle = '#e2e8f0'; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = T + hh - hh * i / 4;
      g.beginPath(); g.moveTo(L, y); g.lineTo(L + w, y); g.stroke();
      g.textAlign = 'right'; g.fillText(String(Math.round(max * i / 4)), L - 6, y + 4);
    }
    g.textAlign = 'center';
    for (let s = 0; s < n; s += 15) g.fillText('-' + (n - s) + 's', L + w * s / (n - 1 || 1), cssH - 6);
    g.fillText('now', L + w, cssH - 6);
    for (const [c, , color] of CODES) {
      const v = a.codes[c] || [];
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      v.forEach((y, i) => { const px = L + w * i / (n - 1 || 1), py = T + hh - hh * y / max; if (i) g.lineTo(px, py); else g.moveTo(px, py); });
      g.stroke();
    }
    legend.textContent = '';
    for (const [c, label, color] of CODES) {
      const v = a.codes[c] || [], last = v.length ? v[v.length - 1] : 0, total = v.reduce((x, y) => x + y, 0);
      const i = h('i'); i.style.background = color;
      legend.append(h('span', { 'data-code': c, 'data-total': total, title: total + ' in the last ' + n + ' s' }, i, label + ' ', h('b', {}, last + '/s')));
    }
    const others = Object.keys(a.codes).filter((c) => !CODES.some(([k]) => k === c));
    if (others.length) legend.append(h('span', { class: 'mute' }, 'other: ' + others.map((c) => c + ' ' + a.codes[c][a.codes[c].length - 1] + '/s').join(', ')));
  }

  function drawOrders(box, o) {
    const total = o.unpaid + o.paid + o.cancelled + o.refunded;
    const bar = h('div', { class: 'ordersbar' });
    const rows = h('div', { class: 'kv' });
    for (const k of ['unpaid', 'paid', 'cancelled', 'refunded']) {
      const seg = h('div', { title: k + ' ' + o[k] });
      seg.style.width = (total ? 100 * o[k] / total : 0) + '%'; seg.style.background = ORDER_COLORS[k];
      bar.append(seg);
      const dot = h('i'); dot.style.cssText = 'display:inline-block;width:9px;height:9px;border-radius:3px;margin-right:5px;background:' + ORDER_COLORS[k];
      rows.append(h('div', {}, h('span', {}, dot, k), h('b', { id: 'orders-' + k }, o[k])));
    }
    box.textContent = '';
    box.append(h('p', { class: 'mute' }, total + ' order rows'), bar, rows);
  }

  // ---- bans and points ----
  function bans() {
    const user = h('input', { id: 'ban-user', type: 'number', min: 1, placeholder: 'user id' });
    const ip = h('input', { id: 'ban-ip', placeholder: '203.0.113.7 or 2001:db8::1' });
    const ttl = h('input', { id: 'ban-ttl', placeholder: '10m (empty: until lifted)' });
    const body = () => {
      const b = {};
      if (user.value) b.user_id = Number(user.value);
      if (ip.value.trim()) b.ip = ip.value.trim();
      if (ttl.value.trim()) b.ttl = ttl.value.trim();
      return b;
    };
    view.append(h('div', { class: 'head' }, h('h1', {}, 'Bans')),
      h('div', { class: 'card' }, h('p', { class: 'mute' }, 'A banned shopper or address is answered 403 forbidden on every buy, by every gateway.'),
        h('div', { class: 'formrow' }, h('label', {}, 'User id', user), h('label', {}, 'or IP', ip), h('label', {}, 'For', ttl),
          h('button', { class: 'btn danger', id: 'ban', onclick: () => act('POST', '/admin/v1/blacklist', body(), 'Banned.') }, 'Ban'),
          h('button', { class: 'btn ghost', id: 'unban', onclick: () => act('DELETE', '/admin/v1/blacklist', body(), 'Ban lifted.') }, 'Lift ban'))));
  }

  function points() {
    const user = h('input', { id: 'points-user', type: 'number', min: 1, placeholder: 'user id' });
    const delta = h('input', { id: 'points-delta', type: 'number', step: 1, placeholder: '+500 or -100' });
    const out = h('p', { class: 'big', id: 'points-balance' }, '—');
    const show = (r) => { if (r) out.textContent = r.body.balance + ' pts'; };
    view.append(h('div', { class: 'head' }, h('h1', {}, 'Points')),
      h('div', { class: 'card' }, h('p', { class: 'mute' }, 'Shoppers pay with points at the item\'s points price; a refund gives them back.'),
        h('div', { class: 'formrow' }, h('label', {}, 'User id', user), h('label', {}, 'Grant (negative takes)', delta),
          h('button', { class: 'btn', id: 'grant', onclick: async () => show(await act('POST', '/admin/v1/points/' + Number(user.value), { delta: Number(delta.value) }, 'Balance changed.')) }, 'Grant'),
          h('button', { class: 'btn ghost', id: 'balance', onclick: async () => show(await act('GET', '/admin/v1/points/' + Number(user.value))) }, 'Balance')),
        out));
  }

  route();
})();

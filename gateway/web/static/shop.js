// flashgate storefront: one small script for both pages. It is a client of
// the public JSON API (contract §5, §8, §9, §12) and nothing else.
'use strict';
(function () {
  const TOKEN_KEY = 'flashgate.token';
  const $ = (id) => document.getElementById(id);
  let skew = 0; // server clock minus ours, from the Date header

  function now() { return Date.now() + skew; }

  async function api(method, path, body, auth) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const tok = token();
    if (auth && tok) headers['Authorization'] = 'Bearer ' + tok;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      return { status: 0, body: { code: 'unavailable', message: 'network error: ' + e.message } };
    }
    const d = Date.parse(res.headers.get('Date') || '');
    if (!isNaN(d)) skew = skew * 0.8 + (d + 500 - Date.now()) * 0.2;
    let data = {};
    try { data = await res.json(); } catch (e) { data = { code: 'internal', message: 'bad answer' }; }
    return { status: res.status, body: data, headers: res.headers };
  }

  // ---- the shopper's token ----
  function token() { return localStorage.getItem(TOKEN_KEY) || ''; }
  function claims(tok) {
    try {
      const p = tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(p + '==='.slice((p.length + 3) % 4)));
    } catch (e) { return null; }
  }
  function user() {
    const c = claims(token());
    if (!c || !c.sub || (c.exp && c.exp * 1000 < Date.now())) return 0;
    return Number(c.sub);
  }
  function signOut() { localStorage.removeItem(TOKEN_KEY); renderWho(); if (window.onSignChange) window.onSignChange(); }
  function renderWho() {
    const who = $('who');
    if (!who) return;
    const u = user();
    who.textContent = '';
    if (u) {
      const s = document.createElement('span');
      s.innerHTML = '<span class="long">Signed in as </span><b>user ' + u + '</b>';
      const b = document.createElement('button');
      b.className = 'linkbtn'; b.textContent = 'Sign out'; b.id = 'signout';
      b.onclick = signOut;
      who.append(s, b);
    } else {
      who.textContent = 'Not signed in';
    }
  }
  window.addEventListener('storage', (e) => { if (e.key === TOKEN_KEY) { renderWho(); if (window.onSignChange) window.onSignChange(); } });

  // ---- formatting ----
  const pad = (n) => String(n).padStart(2, '0');
  function duration(ms) {
    if (ms < 0) ms = 0;
    const s = Math.floor(ms / 1000), d = Math.floor(s / 86400);
    const hms = pad(Math.floor(s % 86400 / 3600)) + ':' + pad(Math.floor(s % 3600 / 60)) + ':' + pad(s % 60);
    return d > 0 ? d + 'd ' + hms : hms;
  }
  function money(s) { return '<small>¥</small>' + esc(s); }
  function esc(s) { return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c])); }
  function art(id, name) {
    const h = (Number(id) * 47) % 360;
    return { bg: 'radial-gradient(circle at 30% 25%,rgba(255,255,255,.45),transparent 45%),radial-gradient(circle at 80% 90%,rgba(0,0,0,.18),transparent 50%),linear-gradient(135deg,hsl(' + h + ' 85% 62%),hsl(' + ((h + 40) % 360) + ' 80% 48%))', letter: (name || '?').trim().charAt(0).toUpperCase() };
  }
  // state is the item's state now, from its window and the server's last word.
  function stateNow(it) {
    const t = now(), start = Date.parse(it.start_at), end = Date.parse(it.end_at);
    if (t >= end) return 'ended';
    if (t < start) return 'upcoming';
    if (it.state === 'sold_out' || it.remaining === 0) return 'sold_out';
    return 'active';
  }
  const stateLabel = { active: 'Live', upcoming: 'Upcoming', sold_out: 'Sold out', ended: 'Ended' };
  function countdownText(it) {
    const t = now(), start = Date.parse(it.start_at), end = Date.parse(it.end_at);
    if (t < start) return 'Starts in <b>' + duration(start - t) + '</b>';
    if (t < end) return 'Ends in <b>' + duration(end - t) + '</b>';
    return 'Ended ' + new Date(end).toLocaleString();
  }
  function claimed(it) { return it.stock > 0 ? Math.round(100 * (it.stock - it.remaining) / it.stock) : 100; }

  // ---- the list of sales ----
  function indexPage() {
    let acts = [];
    async function load() {
      const r = await api('GET', '/api/v1/activities');
      const box = $('activities');
      box.removeAttribute('aria-busy');
      if (r.status !== 200) {
        box.innerHTML = '<p class="empty">Sales are unavailable right now (' + esc(r.body.message || r.status) + '). Retrying…</p>';
        return;
      }
      acts = r.body.activities || [];
      render();
    }
    function render() {
      const box = $('activities');
      if (!acts.length) { box.innerHTML = '<p class="empty">No sales right now. Come back soon.</p>'; return; }
      box.innerHTML = acts.map((a) => {
        const live = now() >= Date.parse(a.start_at);
        return '<section class="activity" data-activity="' + a.id + '">' +
          '<div class="act-head"><h2>' + esc(a.name) + '</h2><span class="chip ' + (live ? 'live' : 'upcoming') + '">' + (live ? 'Live now' : 'Upcoming') + '</span>' +
          '<span class="countdown" data-cd="' + a.id + '">' + countdownText(a) + '</span></div>' +
          '<div class="grid">' + a.items.map(card).join('') + '</div></section>';
      }).join('');
    }
    function card(it) {
      const st = stateNow(it), p = art(it.id, it.name);
      const label = { active: 'Buy now', upcoming: 'Coming soon', sold_out: 'Sold out', ended: 'Ended' }[st];
      return '<a class="card" href="/items/' + it.id + '" data-item="' + it.id + '">' +
        '<div class="pic" style="background:' + p.bg + '">' + esc(p.letter) + '<span class="tag">' + (stateLabel[st]) + '</span></div>' +
        '<div class="card-body"><div class="card-name">' + esc(it.name) + '</div>' +
        '<div><span class="price">' + money(it.price) + '</span><span class="points">or ' + it.points + ' pts</span></div>' +
        '<div class="stockbar"><div class="stockbar-fill" style="width:' + claimed(it) + '%"></div></div>' +
        '<p class="left"><span class="remaining">' + it.remaining + '</span>/' + it.stock + ' left · ' + claimed(it) + '% claimed</p>' +
        '<p class="left countdown">' + countdownText(it) + '</p>' +
        '<span class="btn' + (st === 'active' ? ' buy' : ' ghost') + '">' + label + '</span></div></a>';
    }
    function tick() {
      const c = $('clock');
      if (c) c.textContent = new Date(now()).toLocaleTimeString();
      if (acts.length) render();
    }
    load();
    setInterval(load, 3000);
    setInterval(tick, 1000);
    tick();
  }

  // ---- one item: sign in, captcha, path, buy, order, pay, refund ----
  function itemPage() {
    const id = Number(location.pathname.split('/')[2]);
    let item = null, order = null, ws = null, wsTry = 0, captchaID = '', busy = false;
    const orderKey = () => 'flashgate.order.' + id + '.' + user();

    function msg(text, kind) { const m = $('msg'); m.textContent = text || ''; m.className = 'msg' + (kind ? ' ' + kind : ''); }
    function notice(text) { const n = $('notice'); n.hidden = !text; n.textContent = text || ''; }

    async function load() {
      const r = await api('GET', '/api/v1/items/' + id);
      if (r.status === 404) { notice('There is no such item. It may not be on sale yet.'); $('product').hidden = true; return; }
      if (r.status !== 200) { notice('The shop is busy (' + (r.body.message || r.status) + '). Retrying…'); return; }
      notice('');
      const first = !item;
      item = r.body.item;
      if (first) {
        const p = art(item.id, item.name);
        $('shot').style.background = p.bg; $('shot').textContent = p.letter;
        document.title = item.name + ' · flashgate';
        $('product').hidden = false;
        $('name').textContent = item.name;
        $('price').innerHTML = money(item.price);
        $('points').textContent = 'or ' + item.points + ' points';
        restoreOrder();
      }
      render();
    }

    function render() {
      if (!item) return;
      const st = stateNow(item);
      $('state').className = 'chip ' + st; $('state').textContent = stateLabel[st];
      $('countdown').innerHTML = countdownText(item);
      $('stockfill').style.width = claimed(item) + '%';
      $('left').innerHTML = '<b id="remaining">' + item.remaining + '</b> of ' + item.stock + ' left · ' + claimed(item) + '% claimed';
      const u = user(), live = order && (order.status === 'pending' || order.status === 'unpaid' || order.status === 'paid');
      $('signin').hidden = !!u;
      const needCaptcha = item.require_captcha && u && !live && (st === 'active' || st === 'upcoming');
      if (needCaptcha && $('captcha').hidden) newCaptcha();
      $('captcha').hidden = !needCaptcha;
      const b = $('buy');
      b.hidden = !!live;
      b.disabled = busy || !u || st !== 'active';
      b.textContent = !u ? 'Sign in to buy' : st === 'upcoming' ? 'Starts in ' + duration(Date.parse(item.start_at) - now()) : st === 'sold_out' ? 'Sold out' : st === 'ended' ? 'Sale ended' : busy ? 'Buying…' : 'Buy now';
    }

    async function newCaptcha() {
      const r = await api('GET', '/api/v1/captcha');
      if (r.status !== 200) { msg('Could not load a captcha: ' + (r.body.message || r.status), 'err'); return; }
      captchaID = r.body.captcha_id;
      $('captcha-img').src = r.body.image;
      $('captcha-answer').value = '';
    }

    async function signIn(e) {
      e.preventDefault();
      const uid = Number($('user-id').value);
      if (!(uid > 0)) { msg('Type a positive user id.', 'err'); return; }
      const r = await api('POST', '/dev/token', { user_id: uid });
      if (r.status === 404) { msg('Demo sign-in runs only in dev mode: paste a token instead.', 'err'); return; }
      if (r.status !== 200) { msg(r.body.message || 'Sign-in failed.', 'err'); return; }
      localStorage.setItem(TOKEN_KEY, r.body.token);
      msg('Signed in as user ' + uid + '.', 'ok');
      signChanged();
    }
    function useToken(e) {
      e.preventDefault();
      const t = $('token-input').value.trim();
      const c = claims(t);
      if (!c || !c.sub) { msg('That is not a shopper token.', 'err'); return; }
      localStorage.setItem(TOKEN_KEY, t);
      signChanged();
    }
    function signChanged() { renderWho(); closeWS(); order = null; $('order').hidden = true; restoreOrder(); render(); }
    window.onSignChange = signChanged;

    const sayCode = {
      sold_out: 'Sold out. Every unit is taken.', not_started: 'The sale has not started yet.', ended: 'The sale has ended.',
      rate_limited: 'Too many tries: wait a moment.', unavailable: 'The shop is busy: try again.', not_found: 'This item is not on sale.',
    };

    async function buy() {
      if (busy) return;
      const u = user();
      if (!u) { render(); return; }
      busy = true; render(); msg('');
      try {
        let q = '';
        if (item.require_captcha) {
          const ans = $('captcha-answer').value.trim();
          if (!ans) { msg('Type the digits in the image first.', 'err'); return; }
          q = '?captcha_id=' + encodeURIComponent(captchaID) + '&captcha=' + encodeURIComponent(ans);
        }
        const p = await api('GET', '/api/v1/seckill/' + id + '/path' + q, undefined, true);
        if (p.status === 401) { signOut(); msg('Your sign-in expired: sign in again.', 'err'); return; }
        if (p.status !== 200) {
          msg(p.body.code === 'forbidden' && item.require_captcha ? 'Wrong digits: here is a new image.' : (sayCode[p.body.code] || p.body.message), 'err');
          if (item.require_captcha) newCaptcha();
          return;
        }
        const r = await api('POST', '/api/v1/seckill/' + id + '?path=' + encodeURIComponent(p.body.path), undefined, true);
        if (item.require_captcha) newCaptcha();
        if (r.status === 202 || r.body.code === 'duplicate') {
          msg(r.status === 202 ? 'Got one! Your unit is reserved.' : 'You already hold an order for this item.', 'ok');
          setOrder({ order_id: r.body.order_id, status: r.body.status || 'pending' });
          load();
          return;
        }
        if (r.status === 401) { signOut(); msg('Your sign-in expired: sign in again.', 'err'); return; }
        let text = sayCode[r.body.code] || r.body.message || ('Error ' + r.status);
        if (r.status === 429) text += ' (retry in ' + (r.headers.get('Retry-After') || '1') + ' s)';
        msg(text, 'err');
        load();
      } finally { busy = false; render(); }
    }

    async function restoreOrder() {
      const oid = user() && localStorage.getItem(orderKey());
      if (!oid) return;
      const r = await api('GET', '/api/v1/orders/' + encodeURIComponent(oid), undefined, true);
      if (r.status === 200) setOrder(r.body.order);
      else if (r.status === 404) localStorage.removeItem(orderKey());
    }

    function setOrder(o) {
      const first = !order || order.order_id !== o.order_id;
      order = o;
      localStorage.setItem(orderKey(), o.order_id);
      $('order').hidden = false;
      $('order-id').textContent = o.order_id;
      status(o.status);
      if (first) { closeWS(); watch(); }
    }

    function status(s) {
      order.status = s;
      const chip = $('order-status');
      chip.className = 'chip ' + s; chip.textContent = s; chip.dataset.status = s;
      const rank = { pending: 0, unpaid: 1, paid: 2 }[s];
      document.querySelectorAll('#timeline li').forEach((li, i) => li.classList.toggle('done', rank !== undefined && i <= rank));
      $('pay-actions').hidden = s !== 'unpaid';
      $('refund-actions').hidden = s !== 'paid';
      $('order-hint').textContent = {
        pending: 'Your unit is reserved; the order is being written…',
        unpaid: 'Pay before the order expires, or the unit goes back on sale.',
        paid: 'Paid. Thank you! You can still ask for a refund.',
        cancelled: 'This order was cancelled (not paid in time). You may buy again.',
        refunded: 'Refunded: the money is on its way back. You may buy again.',
      }[s] || '';
      if (s === 'paid' && /Alipay tab/.test($('msg').textContent)) msg('Payment received. Thank you!', 'ok');
      if (s === 'cancelled' || s === 'refunded') { localStorage.removeItem(orderKey()); closeWS(); }
      render();
    }

    function watch() {
      if (!order) return;
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const sock = new WebSocket(proto + '//' + location.host + '/api/v1/orders/' + encodeURIComponent(order.order_id) + '/ws?token=' + encodeURIComponent(token()));
      ws = sock;
      sock.onopen = () => { wsTry = 0; $('order').dataset.ws = 'open'; };
      sock.onmessage = (e) => {
        try { const m = JSON.parse(e.data); if (order && m.order_id === order.order_id) status(m.status); } catch (err) { /* not ours */ }
      };
      sock.onclose = () => {
        if (ws !== sock) return;
        ws = null; $('order').dataset.ws = 'closed';
        if (order && order.status !== 'cancelled' && order.status !== 'refunded') setTimeout(() => { if (!ws && order) watch(); }, Math.min(10000, 500 * 2 ** wsTry++));
      };
    }
    function closeWS() { const s = ws; ws = null; if (s) s.close(); }

    const phone = () => matchMedia('(max-width: 720px)').matches || /Mobi|Android|iPhone/i.test(navigator.userAgent);

    async function payAlipay() {
      // A phone pays in the same tab with alipay.trade.wap.pay and comes
      // back through the return page; a desktop opens the cashier
      // (alipay.trade.page.pay) in a new tab and keeps this one, whose
      // WebSocket shows the payment land. The tab is opened before the
      // request, while the click still allows it.
      const wap = phone();
      const tab = wap ? null : window.open('', '_blank');
      const r = await api('POST', '/api/v1/orders/' + encodeURIComponent(order.order_id) + '/pay', { channel: 'alipay', mode: wap ? 'wap' : 'page' }, true);
      if (r.status !== 200) { if (tab) tab.close(); msg(r.body.message || 'Payment failed.', 'err'); return; }
      if (tab) { tab.location = r.body.pay_url; msg('Finish paying in the Alipay tab; this page updates by itself.', 'ok'); } else location.href = r.body.pay_url;
    }
    async function payPoints() {
      const r = await api('POST', '/api/v1/orders/' + encodeURIComponent(order.order_id) + '/pay', { channel: 'points' }, true);
      if (r.status === 200) { msg('Paid with points.', 'ok'); status(r.body.order.status); return; }
      msg(r.body.code === 'conflict' ? r.body.message : (r.body.message || 'Payment failed.'), 'err');
    }
    async function refund() {
      $('refund').disabled = true;
      const r = await api('POST', '/api/v1/orders/' + encodeURIComponent(order.order_id) + '/refund', undefined, true);
      $('refund').disabled = false;
      if (r.status === 200) { msg('Refunded.', 'ok'); status(r.body.order.status); load(); return; }
      msg(r.body.message || 'Refund failed.', 'err');
    }

    $('signin-form').addEventListener('submit', signIn);
    $('token-form').addEventListener('submit', useToken);
    $('captcha-new').addEventListener('click', newCaptcha);
    $('captcha-answer').addEventListener('keydown', (e) => { if (e.key === 'Enter') buy(); });
    $('buy').addEventListener('click', buy);
    $('pay-alipay').addEventListener('click', payAlipay);
    $('pay-points').addEventListener('click', payPoints);
    $('refund').addEventListener('click', refund);
    load();
    setInterval(load, 2000);
    setInterval(render, 1000);
  }

  renderWho();
  if (document.body.dataset.page === 'index') indexPage();
  if (document.body.dataset.page === 'item') itemPage();
})();

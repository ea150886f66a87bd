// The agent widget page: signs the agent in (Genesys implicit grant, when
// the server asks for it), opens the call's feed over Server-Sent Events,
// shows suggestions newest first, acknowledges what it showed and sends the
// agent's feedback. Article HTML arrives sanitized by the server; every
// other field is set as text, never as markup.
'use strict';
(() => {
  const cfg = document.body.dataset; // auth, clientId, loginBase
  const $ = (id) => document.getElementById(id);
  const statusEl = $('status');
  const list = $('list');
  const empty = $('empty');
  const notice = $('notice');
  const cards = new Map(); // suggestion_id -> <li>
  const pendingAcks = new Set();
  let conversationId = null;
  let genesysToken = null;
  let session = null;
  let sessionExpires = 0;
  let lastEventId = '';
  let es = null;
  let ended = false;
  let ackTimer = null;

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text || state;
  }

  function refuse(message) {
    setStatus('refused', 'refused');
    const text = String(message).trim();
    notice.textContent = text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? '' : '.');
    notice.hidden = false;
    document.body.classList.add('refused');
    if (es) { es.close(); es = null; }
  }

  function randomHex(bytes) {
    const a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function readJson(key) {
    try { return JSON.parse(sessionStorage.getItem(key) || 'null'); } catch (_) { return null; }
  }

  // Implicit grant: off to the Genesys login page, back with a token in the
  // fragment. The redirect URI is the page without its query, so it matches
  // the OAuth client's registered URI exactly; the query waits in storage.
  function signIn() {
    const now = Date.now();
    const tries = (readJson('aa-login-tries') || []).filter((t) => now - t < 60000);
    if (tries.length >= 3) {
      refuse('Signing in with Genesys Cloud keeps failing. Reload the widget to try again.');
      return;
    }
    tries.push(now);
    sessionStorage.setItem('aa-login-tries', JSON.stringify(tries));
    const nonce = randomHex(16);
    sessionStorage.setItem('aa-login', JSON.stringify({ nonce, search: location.search }));
    const q = new URLSearchParams({
      client_id: cfg.clientId, response_type: 'token',
      redirect_uri: location.origin + location.pathname, state: nonce,
    });
    setStatus('signing-in', 'signing in…');
    location.assign(cfg.loginBase + '/oauth/authorize?' + q.toString());
  }

  // The token of a sign-in that just came back (null: none; undefined:
  // refused). The token leaves the address bar at once.
  function takeToken() {
    if (location.hash.length < 2) return null;
    const h = new URLSearchParams(location.hash.slice(1));
    if (!h.has('access_token') && !h.has('error')) return null;
    const saved = readJson('aa-login');
    sessionStorage.removeItem('aa-login');
    history.replaceState(null, '', location.pathname + (saved ? saved.search : location.search));
    if (h.get('error')) {
      refuse('Genesys Cloud refused the sign-in: ' + (h.get('error_description') || h.get('error')));
      return undefined;
    }
    if (!saved || saved.nonce !== h.get('state')) {
      refuse('That sign-in was not started by this page. Reload the widget.');
      return undefined;
    }
    return h.get('access_token');
  }

  function start() {
    if (cfg.auth === 'genesys' && !genesysToken) { signIn(); return; }
    openSession();
  }

  async function openSession() {
    const headers = { 'content-type': 'application/json' };
    if (genesysToken) headers.authorization = 'Bearer ' + genesysToken;
    let r;
    try {
      r = await fetch('agent/session', {
        method: 'POST', headers, body: JSON.stringify({ conversation_id: conversationId }),
      });
    } catch (_) {
      setStatus('reconnecting', 'cannot reach agent-assist, retrying…');
      setTimeout(openSession, 3000);
      return;
    }
    const body = await r.json().catch(() => ({}));
    if (r.status === 401 && cfg.auth === 'genesys') {
      // Expired or wrong Genesys token: sign in again (a few times at most).
      genesysToken = null;
      start();
      return;
    }
    if (!r.ok) { refuse(body.message || ('Refused (HTTP ' + r.status + ').')); return; }
    session = body.session;
    sessionExpires = Date.now() + body.expires_in_s * 1000;
    sessionStorage.removeItem('aa-login-tries');
    connect();
  }

  function connect() {
    if (es) es.close();
    const q = new URLSearchParams({ conversationId, session });
    if (lastEventId) q.set('lastEventId', lastEventId);
    es = new EventSource('agent/events?' + q.toString());
    es.onopen = () => { if (!ended) setStatus('live', 'live'); };
    es.addEventListener('suggestion', handler(upsert));
    es.addEventListener('update', handler(update));
    es.addEventListener('reset', handler(reset));
    es.addEventListener('ended', handler(end));
    es.onerror = () => {
      if (ended || !es) return;
      if (es.readyState !== EventSource.CLOSED) { setStatus('reconnecting', 'reconnecting…'); return; }
      // The server refused the stream: the session expired, or this server
      // does not know it (it restarted, or it is another worker of a floor
      // behind the same address). Sign in again; the feed resumes from
      // lastEventId, which every worker of a floor understands.
      es = null;
      setStatus('reconnecting', 'reconnecting…');
      setTimeout(start, Date.now() >= sessionExpires - 2000 ? 0 : 2000);
    };
  }

  function handler(fn) {
    return (e) => {
      if (e.lastEventId) lastEventId = e.lastEventId;
      let data;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      fn(data);
    };
  }

  function upsert(s) {
    let li = cards.get(s.suggestion_id);
    if (!li) {
      li = $('card').content.firstElementChild.cloneNode(true);
      li.dataset.id = s.suggestion_id;
      wire(li);
      cards.set(s.suggestion_id, li);
      list.prepend(li);
      li.classList.add('fresh');
      setTimeout(() => li.classList.remove('fresh'), 4000);
    }
    fill(li, s);
    empty.hidden = true;
    queueAck(s.suggestion_id);
  }

  function fill(li, s) {
    const title = li.querySelector('.title');
    title.textContent = '';
    if (typeof s.url === 'string' && /^https?:\/\//i.test(s.url)) {
      const a = document.createElement('a');
      a.href = s.url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = s.title;
      title.append(a);
    } else {
      title.textContent = s.title;
    }
    setState(li, s.state);
    const p = typeof s.probability === 'number' ? s.probability : null;
    const score = Number(s.score) || 0;
    const v = Math.max(0, Math.min(1, p !== null ? p : score));
    li.querySelector('.fill').style.width = Math.round(v * 100) + '%';
    const label = p !== null ? Math.round(p * 100) + '% likely' : 'score ' + score.toFixed(2);
    li.querySelector('.likely').textContent = label;
    li.querySelector('.bar').setAttribute('aria-label', label);
    li.querySelector('.passage').innerHTML = s.html || ''; // sanitized by the server
  }

  function setState(li, state) {
    li.dataset.state = state || '';
    li.querySelector('.state').textContent = state || '';
  }

  function update(u) {
    const li = cards.get(u.suggestion_id);
    if (li) setState(li, u.state);
  }

  function reset() {
    cards.clear();
    list.textContent = '';
    empty.hidden = false;
  }

  function end() {
    ended = true;
    if (es) { es.close(); es = null; }
    setStatus('ended', 'call ended');
  }

  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + session },
      body: JSON.stringify(body),
    });
  }

  function queueAck(id) {
    pendingAcks.add(id);
    if (!ackTimer) ackTimer = setTimeout(flushAcks, 100);
  }

  async function flushAcks() {
    ackTimer = null;
    const ids = [...pendingAcks];
    pendingAcks.clear();
    if (!ids.length) return;
    let retry = false;
    try {
      const r = await post('agent/ack', { conversation_id: conversationId, suggestion_ids: ids });
      retry = r.status === 401 || r.status >= 500;
    } catch (_) { retry = true; }
    if (retry) {
      ids.forEach((i) => pendingAcks.add(i));
      ackTimer = setTimeout(flushAcks, 2000);
    }
  }

  async function feedback(li, kind) {
    let ok = false;
    try {
      const r = await post('agent/feedback', { conversation_id: conversationId, suggestion_id: li.dataset.id, kind });
      ok = r.ok;
    } catch (_) { ok = false; }
    if (!ok) { setStatus('reconnecting', 'feedback not sent, try again'); return false; }
    if (kind !== 'copied') {
      li.querySelector('.useful').setAttribute('aria-pressed', String(kind === 'useful'));
      li.querySelector('.not-useful').setAttribute('aria-pressed', String(kind === 'not_useful'));
    }
    return true;
  }

  function legacyCopy(text) {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'offscreen';
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    ta.remove();
    return ok;
  }

  async function copy(li, button) {
    const text = li.querySelector('.passage').innerText.trim();
    let ok = false;
    try { await navigator.clipboard.writeText(text); ok = true; } catch (_) { ok = legacyCopy(text); }
    button.textContent = ok ? 'Copied' : 'Copy failed';
    button.classList.toggle('done', ok);
    setTimeout(() => { button.textContent = 'Copy'; button.classList.remove('done'); }, 2000);
    if (ok) await feedback(li, 'copied');
  }

  function wire(li) {
    li.querySelector('.useful').addEventListener('click', () => feedback(li, 'useful'));
    li.querySelector('.not-useful').addEventListener('click', () => feedback(li, 'not_useful'));
    const c = li.querySelector('.copy');
    c.addEventListener('click', () => copy(li, c));
  }

  // Keys act on the card that has focus (or holds it): j/k or arrows move,
  // u useful, n not useful, c copy, o open the article.
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const li = e.target && e.target.closest ? e.target.closest('.card') : null;
    const all = [...list.children];
    const move = (d) => {
      if (!all.length) return false;
      const i = li ? all.indexOf(li) + d : 0;
      all[Math.max(0, Math.min(all.length - 1, i))].focus();
      return true;
    };
    const press = (sel) => {
      const el = li && li.querySelector(sel);
      if (!el) return false;
      el.click();
      return true;
    };
    let done = false;
    switch (e.key) {
      case 'j': case 'ArrowDown': done = move(1); break;
      case 'k': case 'ArrowUp': done = move(-1); break;
      case 'u': done = press('.useful'); break;
      case 'n': done = press('.not-useful'); break;
      case 'c': done = press('.copy'); break;
      case 'o': done = press('.title a'); break;
      default: break;
    }
    if (done) e.preventDefault();
  });

  const token = takeToken();
  if (token === undefined) return;
  genesysToken = token;
  const q = new URLSearchParams(location.search);
  conversationId = q.get('conversationId') || q.get('conversationid') || q.get('pcConversationId');
  if (!conversationId) {
    refuse('No call given: open this page from the agent desktop (its address needs ?conversationId=…).');
    return;
  }
  start();
})();

// The console list: fetched once, then kept live from the server-sent event
// stream (GET /api/v1/events). An event changes what it can at once (a
// state) and marks its console for a refetch, so the row ends up exactly as
// the server has it (clients, detail such as "SOL held elsewhere"); many
// marked consoles at once, an `overflow`, or a reconnected stream refetch
// the whole list. Only the first ROW_LIMIT matching rows are drawn, so a
// fleet of 10,000 stays quick to filter as you type.
/* global document, URLSearchParams, EventSource, setTimeout, clearTimeout, setInterval, clearInterval, requestAnimationFrame */
import { api, ApiError } from './api.js';
import { ago, consoleApi, consolePath, el, when } from './util.js';

export const STATES = ['up', 'connecting', 'backoff', 'down'];
const ROW_LIMIT = 500;
/** more consoles than this waiting for a refetch: refetch the list instead */
const REFETCH_ONE_MAX = 25;
/** the whole list is fetched again at most this often for events */
const FULL_EVERY_MS = 5000;
const EVENT_LOG_MAX = 100;

const byName = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' }).compare;

export class ConsoleList {
  /**
   * `onOpen(name)`: the user chose a console. `onConsole(name, info|null)`:
   * a console's record changed (null: it was removed). `onEvent(ev)`: every
   * event of the stream, for open terminals.
   */
  constructor({ onOpen, onConsole, onEvent, onUnauthorized, onQuery }) {
    this.hooks = { onOpen, onConsole, onEvent, onUnauthorized, onQuery };
    /** name → console record as the API gives it */
    this.consoles = new Map();
    this.sorted = [];
    this.stateFilter = new Set();
    this.filterText = '';
    this.matcher = () => true;
    this.pending = new Set();
    this.refetchTimer = null;
    this.renderQueued = false;
    this.es = null;
    this.retryTimer = null;
    this.retryMs = 1000;
    this.loaded = false;
    this.lastFull = 0;

    this.rows = document.getElementById('console-rows');
    this.countsBox = document.getElementById('counts');
    this.filterInput = document.getElementById('filter');
    this.filterNote = document.getElementById('filter-note');
    this.more = document.getElementById('list-more');
    this.live = document.getElementById('live');
    this.eventLog = document.getElementById('event-log');

    this.filterInput.addEventListener('input', () => this.setFilter(this.filterInput.value));
    this.filterInput.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const shown = this.visible();
      if (shown.length === 1) this.hooks.onOpen(shown[0].name);
    });
    this.rows.addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-name]');
      if (!tr) return;
      // a plain click opens a tab here; ctrl/middle click follows the link to a new browser tab
      if (e.target.closest('a') && (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0)) return;
      e.preventDefault();
      this.hooks.onOpen(tr.dataset.name);
    });
    this.rows.addEventListener('keydown', (e) => {
      const tr = e.target.closest('tr[data-name]');
      if (tr && e.key === 'Enter' && !e.target.closest('a')) this.hooks.onOpen(tr.dataset.name);
    });
  }

  /** Begin: the event stream first, then the list (on the stream's open), so no change falls between. */
  start(query = {}) {
    if (query.filter) {
      this.filterInput.value = query.filter;
      this.setFilter(query.filter, false);
    }
    if (query.state) for (const s of query.state.split(',')) if (STATES.includes(s)) this.stateFilter.add(s);
    this.connect();
    // relative times ("3 min") age without events
    this.clock = setInterval(() => this.queueRender(), 10_000);
  }

  stop() {
    this.es?.close();
    this.es = null;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refetchTimer);
    this.refetchTimer = null;
    this.pending.clear();
    clearInterval(this.clock);
    this.consoles.clear();
    this.sorted = [];
    this.loaded = false;
    this.rows.replaceChildren();
    this.eventLog.replaceChildren();
  }

  get(name) {
    return this.consoles.get(name) ?? null;
  }

  // ---- data -------------------------------------------------------------------

  async refresh() {
    this.lastFull = Date.now();
    try {
      const r = await api('GET', '/api/v1/consoles');
      this.consoles = new Map(r.consoles.map((c) => [c.name, c]));
      this.sorted = [...this.consoles.keys()].sort(byName);
      this.loaded = true;
      for (const c of this.consoles.values()) this.hooks.onConsole(c.name, c);
      this.queueRender();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      this.setLive('error', `cannot load the consoles: ${e.message}`);
    }
  }

  async refetch(names) {
    await Promise.all(
      names.map(async (name) => {
        try {
          const r = await api('GET', consoleApi(name));
          this.put(r.console ?? r);
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) this.remove(name);
        }
      }),
    );
    this.queueRender();
  }

  put(c) {
    if (!this.consoles.has(c.name)) {
      this.sorted.push(c.name);
      this.sorted.sort(byName);
    }
    this.consoles.set(c.name, c);
    this.hooks.onConsole(c.name, c);
  }

  remove(name) {
    if (!this.consoles.delete(name)) return;
    this.sorted = this.sorted.filter((n) => n !== name);
    this.hooks.onConsole(name, null);
  }

  /** Refetch `name` soon (coalesced with others; a busy fleet costs a whole list at most every FULL_EVERY_MS). */
  mark(name) {
    this.pending.add(name);
    if (!this.refetchTimer) this.refetchTimer = setTimeout(() => this.flush(), 250);
  }

  flush() {
    this.refetchTimer = null;
    if (this.pending.size <= REFETCH_ONE_MAX) {
      const names = [...this.pending];
      this.pending.clear();
      void this.refetch(names);
      return;
    }
    const wait = this.lastFull + FULL_EVERY_MS - Date.now();
    if (wait > 0) {
      this.refetchTimer = setTimeout(() => this.flush(), wait);
      return;
    }
    this.pending.clear();
    void this.refresh();
  }

  // ---- the event stream -------------------------------------------------------

  connect() {
    this.es?.close();
    const es = new EventSource('/api/v1/events');
    this.es = es;
    this.setLive('connecting', 'connecting to the event stream…');
    es.addEventListener('open', () => {
      this.retryMs = 1000;
      this.setLive('live', 'live: changes show as they happen');
      // anything missed while the stream was down (or before it was up)
      void this.refresh();
    });
    es.addEventListener('error', () => {
      if (this.es !== es) return;
      if (es.readyState === EventSource.CONNECTING) {
        this.setLive('connecting', 'event stream lost; reconnecting…');
        return;
      }
      // refused (a login that expired, a daemon that stopped): try again ourselves
      es.close();
      this.setLive('error', 'no event stream; retrying…');
      this.hooks.onUnauthorized?.();
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.es === es && this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 30_000);
    });
    for (const type of ['state', 'notice', 'client', 'console']) {
      es.addEventListener(type, (m) => {
        let ev;
        try {
          ev = JSON.parse(m.data);
        } catch {
          return;
        }
        this.onEvent({ type, ...ev });
      });
    }
    // the server dropped events for us: start again from a fresh list
    es.addEventListener('overflow', () => {
      this.logEvent({ type: 'overflow' }, 'too many events at once: reloading the list');
      this.connect();
    });
  }

  onEvent(ev) {
    const name = ev.console;
    const c = this.consoles.get(name);
    switch (ev.type) {
      case 'state':
        if (c) {
          Object.assign(c, { state: ev.state, since: ev.since, lastError: ev.error ?? c.lastError });
          this.hooks.onConsole(name, c);
        }
        this.logEvent(ev, `${ev.state}${ev.error && ev.state !== 'up' ? `: ${ev.error}` : ''}`);
        this.mark(name);
        break;
      case 'notice':
        this.logEvent(ev, ev.text);
        this.mark(name);
        break;
      case 'client': {
        const who = ev.client ? `${ev.client.user} (${ev.client.transport}, ${ev.client.mode})` : 'a client';
        this.logEvent(ev, ev.action === 'attach' ? `${who} attached` : ev.action === 'detach' ? `${who} left` : `${who} changed mode`);
        this.mark(name);
        break;
      }
      case 'console':
        this.logEvent(ev, ev.action === 'removed' ? 'removed from the configuration' : 'added to the configuration');
        if (ev.action === 'removed') this.remove(name);
        else this.mark(name);
        break;
    }
    this.hooks.onEvent?.(ev);
    this.queueRender();
  }

  logEvent(ev, text) {
    const li = el('li', { class: `ev ev-${ev.type}` }, el('time', { datetime: new Date().toISOString() }, new Date().toLocaleTimeString()), ' ', ev.console ? el('b', {}, ev.console) : '', ' ', text);
    this.eventLog.prepend(li);
    while (this.eventLog.childElementCount > EVENT_LOG_MAX) this.eventLog.lastElementChild.remove();
  }

  setLive(kind, title) {
    this.live.className = `live ${kind}`;
    this.live.textContent = kind === 'live' ? 'live' : kind === 'connecting' ? 'reconnecting…' : 'offline';
    this.live.title = title;
  }

  // ---- filtering and drawing --------------------------------------------------

  setFilter(text, report = true) {
    this.filterText = text.trim();
    this.filterNote.hidden = true;
    if (!this.filterText) this.matcher = () => true;
    else {
      try {
        const re = new RegExp(this.filterText, 'i');
        this.matcher = (n) => re.test(n);
      } catch {
        const sub = this.filterText.toLowerCase();
        this.matcher = (n) => n.toLowerCase().includes(sub);
        this.filterNote.textContent = 'Not a valid regular expression: matching it as plain text.';
        this.filterNote.hidden = false;
      }
    }
    if (report) this.reportQuery();
    this.queueRender();
  }

  /** Show only consoles in state `s` too (or no longer); `null`: every state. */
  toggleState(s) {
    if (s === null) this.stateFilter.clear();
    else if (this.stateFilter.has(s)) this.stateFilter.delete(s);
    else this.stateFilter.add(s);
    this.reportQuery();
    this.queueRender();
  }

  /** the filter as URL parameters, so that a filtered list can be linked to */
  query() {
    const q = new URLSearchParams();
    if (this.filterText) q.set('filter', this.filterText);
    if (this.stateFilter.size) q.set('state', [...this.stateFilter].join(','));
    return q.toString();
  }

  reportQuery() {
    this.hooks.onQuery?.(this.query());
  }

  /** consoles matching the name filter (before the state filter), in name order */
  named() {
    return this.sorted.map((n) => this.consoles.get(n)).filter((c) => c && this.matcher(c.name));
  }

  visible() {
    const named = this.named();
    return this.stateFilter.size ? named.filter((c) => this.stateFilter.has(c.state)) : named;
  }

  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    const named = this.named();
    const counts = { total: named.length, up: 0, connecting: 0, backoff: 0, down: 0 };
    for (const c of named) counts[c.state] = (counts[c.state] ?? 0) + 1;
    this.renderCounts(counts);
    const shown = this.stateFilter.size ? named.filter((c) => this.stateFilter.has(c.state)) : named;
    const now = Date.now();
    const frag = document.createDocumentFragment();
    for (const c of shown.slice(0, ROW_LIMIT)) frag.append(this.row(c, now));
    if (this.loaded && shown.length === 0) {
      frag.append(el('tr', { class: 'empty' }, el('td', { colspan: 4 }, this.consoles.size === 0 ? 'No consoles are configured.' : 'No console matches the filter.')));
    }
    this.rows.replaceChildren(frag);
    this.more.hidden = shown.length <= ROW_LIMIT;
    this.more.textContent = `Showing ${ROW_LIMIT} of ${shown.length} consoles: narrow the filter to see the others.`;
  }

  renderCounts(counts) {
    const chip = (key, label, n) =>
      el(
        'button',
        {
          type: 'button',
          class: `chip chip-${key}${key === 'total' ? (this.stateFilter.size === 0 ? ' on' : '') : this.stateFilter.has(key) ? ' on' : ''}`,
          'aria-pressed': String(key === 'total' ? this.stateFilter.size === 0 : this.stateFilter.has(key)),
          dataset: { state: key, count: String(n) },
          title: key === 'total' ? 'Show every state' : `Show only consoles that are ${key} (click again to undo)`,
          onclick: () => this.toggleState(key === 'total' ? null : key),
        },
        el('span', { class: 'chip-label' }, label),
        el('span', { class: 'chip-count' }, String(n)),
      );
    this.countsBox.replaceChildren(chip('total', 'all', counts.total), ...STATES.map((s) => chip(s, s, counts[s])));
  }

  row(c, now) {
    const clients = (c.clients ?? []).map((k) =>
      el('span', { class: `client client-${k.mode}`, title: `${k.user}@${k.host ?? '?'} over ${k.transport}, ${k.mode} since ${when(k.since)}${k.idleMs !== undefined ? `, idle ${Math.round(k.idleMs / 1000)} s` : ''}` }, k.user, el('small', {}, ` ${k.mode === 'monitor' ? 'ro' : k.mode === 'broadcast' ? 'bc' : 'rw'}`)),
    );
    let detail = c.detail ?? '';
    if (!detail && c.state !== 'up' && c.lastError) detail = c.lastError;
    let retry = '';
    if (c.state === 'backoff' && c.retryAt) {
      const s = Math.max(0, Math.round((new Date(c.retryAt).getTime() - now) / 1000));
      retry = ` · retry in ${s} s`;
    }
    return el(
      'tr',
      { dataset: { name: c.name, state: c.state }, class: c.detail ? 'has-detail' : '', tabindex: 0 },
      el('td', { class: 'c-name' }, el('a', { href: consolePath(c.name) }, c.name), el('span', { class: 'type' }, c.type ?? '')),
      el(
        'td',
        { class: 'c-state' },
        el('span', { class: `state state-${c.state}` }, c.state),
        el('span', { class: 'since', title: `since ${when(c.since)}` }, ` ${ago(c.since, now)}${retry}`),
      ),
      el('td', { class: 'c-clients' }, clients.length ? clients : el('span', { class: 'muted' }, '—')),
      el('td', { class: 'c-detail', title: c.label ?? '' }, detail ? el('span', { class: c.detail ? 'detail' : 'error-text' }, detail) : el('span', { class: 'muted' }, c.label ?? '')),
    );
  }
}

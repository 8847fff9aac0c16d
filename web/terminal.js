// One console in an xterm.js terminal, over the console's WebSocket
// (/api/v1/consoles/{name}/stream). Binary frames are console bytes both
// ways; text frames are JSON control messages (hello, mode, closed, error
// from the server; mode, break, resize from us). Opened as `conman NAME`
// does: attached with write access when nobody writes, else watching
// read-only with a banner offering to join or force. Closes are explained
// from their code (4409 busy, 4403 denied, 4001 stolen, 4002 removed), and
// a lost connection is retried with growing pauses.
/* global location, navigator, window, WebSocket, ResizeObserver, TextEncoder, setTimeout, clearTimeout */
import { Terminal } from '/assets/xterm/xterm.mjs';
import { FitAddon } from '/assets/xterm/addon-fit.mjs';
import { api } from './api.js';
import { confirmDialog, toast } from './dialogs.js';
import { consoleApi, el, when } from './util.js';

export const CLOSE = { denied: 4403, busy: 4409, notFound: 4404, stolen: 4001, removed: 4002, moved: 4003, bad: 4400 };

/** SysRq keys offered after a break (Linux's magic SysRq; the console host decides what they do) */
const SYSRQ = [
  ['', 'no SysRq key'],
  ['h', 'h: help'],
  ['w', 'w: show blocked tasks'],
  ['t', 't: show task states'],
  ['m', 'm: show memory'],
  ['s', 's: emergency sync'],
  ['u', 'u: remount read-only'],
  ['c', 'c: crash (kdump)'],
  ['b', 'b: reboot at once'],
];

const RETRY_MAX_MS = 30_000;
const encoder = new TextEncoder();
const narrow = () => window.matchMedia('(max-width: 700px)').matches;

export class TerminalTab {
  /** `info()`: the console's record from the list (or null) */
  constructor(name, { info }) {
    this.name = name;
    this.info = info;
    this.ws = null;
    this.newSocket(null);
    /** the banner of a busy or denied attach stays up while we watch instead */
    this.keepBanner = false;
    /** a monitor typing was told once that its keys go nowhere */
    this.toldReadOnly = false;
    this.retryMs = 1000;
    this.retryTimer = null;
    this.disposed = false;

    this.build();
    this.term = new Terminal({
      scrollback: 10_000,
      cursorBlink: true,
      fontFamily: '"DejaVu Sans Mono", "Cascadia Mono", "SF Mono", Menlo, Consolas, "Liberation Mono", monospace',
      fontSize: narrow() ? 12 : 14,
      macOptionIsMeta: true,
      rightClickSelectsWord: true,
      theme: { background: '#101418', foreground: '#d9dee4', cursor: '#f2f2f2', cursorAccent: '#101418', selectionBackground: '#3d5a80aa' },
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.screen);
    this.term.onData((d) => this.typed(encoder.encode(d)));
    this.term.onBinary((d) => this.typed(Uint8Array.from(d, (ch) => ch.charCodeAt(0) & 0xff)));
    this.term.onResize(({ cols, rows }) => this.control({ type: 'resize', cols, rows }));
    this.term.attachCustomKeyEventHandler((e) => this.key(e));
    this.resizer = new ResizeObserver(() => this.refit());
    this.resizer.observe(this.screen);
    this.update();
  }

  // ---- the view -------------------------------------------------------------------

  build() {
    const btn = (label, title, onclick, extra = {}) => el('button', { type: 'button', class: 'btn', title, onclick, ...extra }, label);
    this.modeButtons = {
      monitor: btn('Monitor', 'Watch read-only (others may write)', () => this.changeMode('monitor'), { dataset: { action: 'monitor' } }),
      join: btn('Join', 'Write, sharing the console with others who write', () => this.changeMode('join'), { dataset: { action: 'join' } }),
      force: btn('Force', 'Write, taking the console from whoever writes now', () => this.changeMode('force'), { dataset: { action: 'force' } }),
    };
    this.breakBtn = btn('Break…', 'Send a serial break (and a SysRq key)', () => void this.sendBreak(), { dataset: { action: 'break' } });
    this.resetBtn = btn('Reset…', "Run the console's reset command", () => void this.reset(), { dataset: { action: 'reset' } });
    this.solBtn = btn('Take SOL back…', 'Take the IPMI SOL session back from the other holder', () => void this.takeSol(), { dataset: { action: 'sol' }, hidden: true });
    this.stateDot = el('span', { class: 'state state-unknown' }, '…');
    this.modeBadge = el('span', { class: 'mode-badge', dataset: { mode: 'none' } }, 'connecting…');
    this.detail = el('span', { class: 'term-detail' });
    this.banner = el('div', { class: 'term-banner', role: 'status', hidden: true });
    this.screen = el('div', { class: 'term-screen' });
    const keys = [
      ['Esc', '\x1b'],
      ['Tab', '\t'],
      ['^C', '\x03'],
      ['^D', '\x04'],
      ['↑', '\x1b[A'],
      ['↓', '\x1b[B'],
      ['←', '\x1b[D'],
      ['→', '\x1b[C'],
      ['⏎', '\r'],
    ];
    this.root = el(
      'section',
      { class: 'term-view view', dataset: { console: this.name }, hidden: true },
      el(
        'div',
        { class: 'term-bar' },
        el('div', { class: 'term-title' }, this.stateDot, el('b', { class: 'term-name' }, this.name), this.modeBadge, this.detail),
        el(
          'div',
          { class: 'term-actions' },
          el('div', { class: 'seg', role: 'group', 'aria-label': 'Access' }, Object.values(this.modeButtons)),
          el('div', { class: 'seg' }, this.breakBtn, this.resetBtn, this.solBtn),
          el(
            'div',
            { class: 'seg' },
            btn('Copy', 'Copy the selected text (or Ctrl+Shift+C)', () => void this.copy()),
            btn('Paste', 'Paste into the console (or Ctrl+Shift+V)', () => void this.pasteClipboard()),
            el('a', { class: 'btn', href: consoleApi(this.name, '/log?download=1'), download: `${this.name}.log`, title: "Download the console's log" }, 'Log'),
          ),
        ),
      ),
      this.banner,
      el('div', { class: 'term-box' }, this.screen),
      el(
        'div',
        { class: 'keybar', 'aria-label': 'Keys' },
        keys.map(([label, seq]) => el('button', { type: 'button', class: 'key', onclick: () => (this.typed(encoder.encode(seq)), this.term.focus()) }, label)),
      ),
    );
  }

  show(on) {
    this.root.hidden = !on;
    if (on) {
      this.refit();
      this.term.focus();
    }
  }

  refit() {
    if (this.disposed || this.root.hidden || this.screen.clientWidth === 0) return;
    try {
      this.fit.fit();
    } catch {
      /* not laid out yet */
    }
  }

  /** The console's record changed (state, clients, detail): redraw the bar. */
  update() {
    const c = this.info();
    const state = c?.state ?? 'unknown';
    this.stateDot.className = `state state-${state}`;
    this.stateDot.textContent = state;
    this.stateDot.title = c?.since ? `${state} since ${when(c.since)}` : state;
    const detail = c?.detail ?? (c && c.state !== 'up' ? c.lastError : null) ?? '';
    this.detail.textContent = detail;
    this.detail.title = detail;
    this.solBtn.hidden = !/held elsewhere/i.test(c?.detail ?? '');
    this.tabDot?.setAttribute('data-state', state);
    const live = this.ws?.readyState === WebSocket.OPEN && this.hello;
    this.modeBadge.dataset.mode = live ? this.mode : 'none';
    this.modeBadge.textContent = live ? (this.mode === 'write' ? 'read-write' : 'read-only') : this.ws && !this.hello && this.ws.readyState <= WebSocket.OPEN ? 'connecting…' : 'closed';
    this.modeButtons.monitor.classList.toggle('on', live && this.mode === 'monitor');
    this.modeButtons.join.classList.toggle('on', live && this.mode === 'write');
    this.breakBtn.disabled = !(live && this.mode === 'write');
    this.breakBtn.title = this.breakBtn.disabled ? 'A break needs write access: join or force first' : 'Send a serial break (and a SysRq key)';
  }

  showBanner(text, actions = []) {
    this.banner.replaceChildren(el('span', { class: 'banner-text' }, text), ...actions.map(([label, fn, cls]) => el('button', { type: 'button', class: `btn small ${cls ?? ''}`, onclick: fn }, label)));
    this.banner.hidden = false;
  }

  hideBanner() {
    this.banner.hidden = true;
  }

  // ---- the socket ------------------------------------------------------------------

  /** Open the console's socket in `mode` (attach, monitor, join, force). */
  connect(mode) {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      old.close(1000, 'reconnecting');
    }
    const url = new URL(consoleApi(this.name, '/stream'), location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('mode', mode);
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.newSocket(mode);
    let fresh = true;
    ws.addEventListener('message', (m) => {
      if (this.ws !== ws) return;
      if (fresh) {
        // the server replays recent output first: it refills the scrollback
        fresh = false;
        this.term.reset();
      }
      if (typeof m.data === 'string') this.controlMessage(m.data);
      else this.term.write(new Uint8Array(m.data));
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed(e.code, e.reason);
      this.update();
    });
    this.update();
  }

  /** What is known of a socket asked for in `mode`, before it says anything. */
  newSocket(mode) {
    /** the mode asked for */
    this.asked = mode;
    /** the server said hello: attached */
    this.hello = false;
    /** monitor | write, from the hello and mode messages */
    this.mode = null;
    /** the server's last error message (a refusal's reason comes this way) */
    this.lastError = null;
  }

  controlMessage(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    switch (m.type) {
      case 'hello':
        this.hello = true;
        this.mode = m.mode;
        this.retryMs = 1000;
        if (this.asked !== 'monitor' || !this.keepBanner) this.hideBanner();
        this.keepBanner = false;
        this.refit();
        this.control({ type: 'resize', cols: this.term.cols, rows: this.term.rows });
        break;
      case 'mode':
        this.mode = m.mode;
        if (m.mode === 'write') this.hideBanner();
        break;
      case 'error':
        this.lastError = m.message;
        // after a hello it is about a request of ours (a break without write access …)
        if (this.hello) toast(m.message, 'error');
        break;
    }
    this.update();
  }

  /** Why a socket closed, said in the banner, and what can be done next. */
  closed(code, reason) {
    const why = this.lastError ?? reason;
    const reopen = [
      ['Monitor', () => this.connect('monitor')],
      ['Join', () => this.connect('join')],
      ['Force', () => this.connect('force'), 'danger'],
    ];
    const was = this.mode;
    this.mode = null;
    if (this.disposed) return;
    switch (code) {
      case CLOSE.busy:
        // `conman NAME` on a console in use: watch instead, and say so
        this.keepBanner = true;
        this.showBanner(`${why || 'The console is in use'}. Watching read-only.`, reopen.slice(1));
        this.connect('monitor');
        return;
      case CLOSE.denied:
        if (this.asked !== 'monitor' && !this.hello) {
          this.keepBanner = true;
          this.showBanner(`${why || 'No write access'}. Watching read-only.`);
          this.connect('monitor');
        } else this.showBanner(why || 'Permission denied.');
        return;
      case CLOSE.stolen:
        this.showBanner('This console was taken over by another client (force): you are disconnected.', reopen);
        return;
      case CLOSE.removed:
        this.showBanner('This console was removed from the configuration.');
        return;
      case CLOSE.moved:
        // a cluster: another node runs it (a handover just moved it, or it ran there all along)
        this.showBanner(why || 'This console is run by another node of the cluster.', reopen.slice(0, 1));
        return;
      case CLOSE.notFound:
        this.showBanner(why || `No console named ${this.name}.`);
        return;
      case 1000:
        return;
    }
    void this.lost(code, why, was);
  }

  /** The connection dropped (or never opened): find out why, then retry with growing pauses. */
  async lost(code, why, was) {
    let msg = `Connection lost (${why || `code ${code}`}).`;
    try {
      await api('GET', consoleApi(this.name));
    } catch (e) {
      if (e.status === 404) return this.showBanner(`No console named ${this.name}.`);
      if (e.status === 401) return this.showBanner('Log in again to reconnect.');
      msg = `conchd cannot be reached (${e.message}).`;
    }
    if (this.disposed || this.ws) return;
    // as `conman NAME` again when we wrote (falling back to watching if someone else writes by now)
    const again = was === 'write' || this.asked !== 'monitor' ? 'attach' : 'monitor';
    const secs = Math.round(this.retryMs / 1000);
    this.showBanner(`${msg} Reconnecting in ${secs} s…`, [['Reconnect now', () => this.connect(again)]]);
    this.retryTimer = setTimeout(() => this.connect(again), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  control(m) {
    if (this.ws?.readyState === WebSocket.OPEN && this.hello) this.ws.send(JSON.stringify(m));
  }

  typed(bytes) {
    if (this.ws?.readyState !== WebSocket.OPEN || !this.hello) return;
    if (this.mode !== 'write') {
      // the server drops a monitor's keys; say why nothing happens
      if (!this.toldReadOnly) toast('Read-only: Join or Force to type.', 'info', 2500);
      this.toldReadOnly = true;
      return;
    }
    this.toldReadOnly = false;
    this.ws.send(bytes);
  }

  // ---- actions ------------------------------------------------------------------------

  async changeMode(mode) {
    const live = this.ws?.readyState === WebSocket.OPEN && this.hello;
    if (mode === 'force') {
      const others = (this.info()?.clients ?? []).filter((k) => k.mode !== 'monitor').length - (this.mode === 'write' ? 1 : 0);
      if (others > 0) {
        const ok = await confirmDialog({ title: `Force ${this.name}?`, text: 'Whoever writes to this console now loses it.', confirm: 'Force', danger: true });
        if (!ok) return;
      }
    }
    if (!live) return this.connect(mode);
    this.hideBanner();
    // a writer that forces wants to be the only one: the server forces only from read-only, so step down first
    if (mode === 'force' && this.mode === 'write') this.control({ type: 'mode', mode: 'monitor' });
    this.control({ type: 'mode', mode });
  }

  async sendBreak() {
    if (this.mode !== 'write') return toast('A break needs write access: join or force first.', 'error');
    const select = el('select', { name: 'sysrq', id: 'sysrq-key' }, SYSRQ.map(([k, label]) => el('option', { value: k }, label)));
    const v = await confirmDialog({
      title: `Send a break to ${this.name}?`,
      text: ['A serial break. On Linux the next key is a magic SysRq command, which can be sent with it.'],
      confirm: 'Send break',
      fields: [el('label', { class: 'field' }, 'SysRq key ', select)],
    });
    if (!v) return;
    this.control({ type: 'break' });
    if (v.sysrq) this.ws?.send(encoder.encode(v.sysrq));
    toast(v.sysrq ? `Break and SysRq ${v.sysrq} sent to ${this.name}.` : `Break sent to ${this.name}.`, 'ok');
    this.term.focus();
  }

  reset() {
    return this.confirmedAction('/reset', {
      title: `Reset ${this.name}?`,
      text: ["Runs the console's reset command (typically a power cycle of the server)."],
      confirm: 'Reset',
      done: `Reset of ${this.name} started.`,
    });
  }

  takeSol() {
    return this.confirmedAction('/force', {
      title: `Take ${this.name}'s SOL back?`,
      text: ['Someone else holds the IPMI Serial-over-LAN session of this server. Taking it back cuts them off.'],
      confirm: 'Take it back',
      done: `Taking ${this.name}'s SOL back.`,
    });
  }

  /** Ask, then POST the console's action (`/reset`, `/force`); the outcome in a toast. */
  async confirmedAction(path, { done, ...dialog }) {
    if (!(await confirmDialog({ ...dialog, danger: true }))) return;
    try {
      await api('POST', consoleApi(this.name, path), {});
      toast(done, 'ok');
    } catch (e) {
      toast(`${this.name}: ${e.message}`, 'error', 8000);
    }
  }

  async copy() {
    const text = this.term.getSelection();
    if (!text) return toast('Select text in the terminal first.', 'info', 2500);
    try {
      await navigator.clipboard.writeText(text);
      toast('Copied.', 'ok', 1500);
    } catch (e) {
      toast(`Cannot copy: ${e.message}`, 'error');
    }
  }

  async pasteClipboard() {
    try {
      const text = await navigator.clipboard.readText();
      // through xterm, so bracketed paste mode is honoured; it comes back as onData
      if (text) this.term.paste(text);
      this.term.focus();
    } catch (e) {
      toast(`Cannot read the clipboard (${e.message}): use Ctrl+Shift+V or the browser's paste.`, 'error');
    }
  }

  /** Ctrl+Shift+C copies; Ctrl+Shift+V is left to the browser, whose paste event xterm takes. */
  key(e) {
    if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
    if (e.code === 'KeyC') {
      void this.copy();
      e.preventDefault();
      return false;
    }
    if (e.code === 'KeyV') return false;
    return true;
  }

  /** What the terminal shows, scrollback included (for tests and for copying all). */
  text() {
    const b = this.term.buffer.active;
    const lines = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    this.resizer.disconnect();
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'tab closed');
    this.term.dispose();
    this.root.remove();
  }
}

// Small DOM and formatting helpers shared by the UI modules.
/* global document */

/**
 * An element: `el('button', {class: 'btn', onclick: fn}, 'text', child…)`.
 * Attributes starting with `on` become listeners; `dataset`, `hidden`,
 * `disabled` and `title` are set as properties; children may be strings.
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else if (k === 'hidden' || k === 'disabled' || k === 'title' || k === 'value') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
  return e;
}

/** "5 s", "3 min", "2 h", "4 d": how long ago `t` (a Date or ISO string) was. */
export function ago(t, now = Date.now()) {
  if (!t) return '';
  const ms = now - new Date(t).getTime();
  return Number.isFinite(ms) ? duration(Math.max(0, ms)) : '';
}

/** A duration in ms, short and rounded down. */
export function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** A time as the browser's local date and time, for tooltips. */
export function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** The path of a console's own page. */
export const consolePath = (name) => `/consoles/${encodeURIComponent(name)}`;

/** The API path of a console, with an optional sub-resource. */
export const consoleApi = (name, rest = '') => `/api/v1/consoles/${encodeURIComponent(name)}${rest}`;

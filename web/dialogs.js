// Modal confirmations (<dialog>) and short-lived messages (toasts).
/* global document, setTimeout, FormData */
import { el } from './util.js';

/**
 * Ask before doing something: resolves with the dialog's form values
 * (an object) when confirmed, null when cancelled. `fields` are extra
 * form elements shown under the text.
 */
export function confirmDialog({ title, text, confirm, danger = false, fields = [] }) {
  return new Promise((resolve) => {
    const form = el(
      'form',
      { method: 'dialog', class: 'dialog-form' },
      el('h2', {}, title),
      ...[].concat(text).map((t) => el('p', {}, t)),
      ...fields,
      el(
        'div',
        { class: 'dialog-buttons' },
        el('button', { type: 'submit', value: 'cancel', class: 'btn', formnovalidate: true }, 'Cancel'),
        el('button', { type: 'submit', value: 'ok', class: danger ? 'btn danger' : 'btn primary', dataset: { confirm: '' } }, confirm),
      ),
    );
    const dlg = el('dialog', { class: 'dialog' }, form);
    document.body.append(dlg);
    dlg.addEventListener('close', () => {
      const ok = dlg.returnValue === 'ok';
      const values = ok ? Object.fromEntries(new FormData(form).entries()) : null;
      dlg.remove();
      resolve(values);
    });
    dlg.showModal();
    form.querySelector('[data-confirm]').focus();
  });
}

/** A message in the corner for a few seconds (`kind`: info, ok, error). */
export function toast(text, kind = 'info', ms = 5000) {
  const box = document.getElementById('toasts');
  const t = el('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(t);
  setTimeout(() => t.remove(), ms);
}

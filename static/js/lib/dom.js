// Small DOM helpers. Text always goes in through textContent: nothing a customer, an agent or
// an LLM wrote is ever parsed as HTML on these pages.

/** Build an element: h('p', {class: 'x', 'aria-label': 'y'}, 'text', childNode, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el` (text children are set as text, never as HTML). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el;
}

export function show(el, visible = true) {
  el.hidden = !visible;
  return el;
}

/** "3:07" or "1:02:09" for a number of seconds. */
export function clock(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** Local wall-clock time of an ISO timestamp, e.g. "14:03:27". */
export function timeOfDay(iso) {
  const d = iso ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/**
 * A ticking clock shown in `el`, counting from `startIso` (or now). One interval per timer;
 * `stop()` clears it. The element's dateTime-like data attribute lets tests read the start.
 */
export class Ticker {
  constructor(el) {
    this.el = el;
    this.start = null;
    this.handle = null;
  }

  run(startIso) {
    const start = startIso ? new Date(startIso).getTime() : Date.now();
    if (this.start === start && this.handle) return;
    this.stop();
    this.start = Number.isNaN(start) ? Date.now() : start;
    this.el.dataset.since = new Date(this.start).toISOString();
    const tick = () => { this.el.textContent = clock((Date.now() - this.start) / 1000); };
    tick();
    this.handle = setInterval(tick, 1000);
  }

  stop() {
    if (this.handle) clearInterval(this.handle);
    this.handle = null;
    this.start = null;
    this.el.textContent = '0:00';
    delete this.el.dataset.since;
  }
}

/**
 * Enable or disable a control as the page's state says. A control that is busy (see `busy`)
 * stays disabled until its work ends, then takes this state.
 */
export function setDisabled(el, disabled) {
  el.dataset.disabled = disabled ? '1' : '0';
  if (el.dataset.busy !== '1') el.disabled = disabled;
}

/** Disable a button while `work` runs, so a double click cannot send a request twice. */
export async function busy(button, work) {
  if (button.disabled) return undefined;
  button.dataset.busy = '1';
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    delete button.dataset.busy;
    button.disabled = button.dataset.disabled === '1';
    button.removeAttribute('aria-busy');
  }
}

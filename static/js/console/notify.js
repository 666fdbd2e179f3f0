// The console's messages to the agent: the alert banner, the "Recent activity" list and the
// page error (with its Retry). Only these DOM nodes are touched here.

import { byId, fill, show } from '../lib/dom.js';
import { noticeItem } from './render.js';

const MAX_NOTICES = 12;
const ALERT_FADE_MS = 15000;

export class Notifier {
  constructor() {
    this.alertTimer = null;
    this.retry = null;
    byId('alert-dismiss').addEventListener('click', () => this.hideAlert());
    byId('page-error-retry').addEventListener('click', () => { this.hidePageError(); this.retry?.(); });
  }

  /** The banner: the latest thing the agent must not miss. Failures stay until dismissed;
   * good news (a new call, an accepted or completed transfer) steps aside after a while. */
  alert(text, { sticky = false } = {}) {
    clearTimeout(this.alertTimer);
    byId('alert-text').textContent = text;
    show(byId('alert'));
    if (!sticky) this.alertTimer = setTimeout(() => this.hideAlert(), ALERT_FADE_MS);
    this.notice(text, 'alert');
  }

  hideAlert() {
    show(byId('alert'), false);
  }

  notice(text, level = 'info') {
    const list = byId('notices');
    list.prepend(noticeItem(text, level));
    while (list.children.length > MAX_NOTICES) list.lastElementChild.remove();
  }

  /** A failure that blocks the page, with what "Retry" does. */
  pageError(text, retry) {
    this.retry = retry;
    byId('page-error-text').textContent = text;
    show(byId('page-error'));
  }

  hidePageError() {
    show(byId('page-error'), false);
  }

  /** Reset (Agent B dashboard): nothing shown any more. */
  clear() {
    fill(byId('notices'));
    this.hideAlert();
    this.hidePageError();
  }
}

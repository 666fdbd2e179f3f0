// A web customer's call status: pushed over Server-Sent Events (GET /api/calls/<id>/events,
// authenticated by the HttpOnly cookie create-call set for this call, so the key never goes in a
// URL), with polling (`poll`, GET /api/calls/<id>/status every 3 s) whenever the stream fails or
// stays silent, and back to the stream when it recovers.
//
// Every status event carries the whole status, so nothing needs replaying: whichever channel
// answers last is the truth, and the page just shows it.

import { CALL_FINAL_STATUSES, CUSTOMER_STATUS_EVENT, CUSTOMER_STREAM_REPLACED_EVENT } from './protocol.js';

const POLL_INTERVAL_MS = 3000;
const SSE_READY_TIMEOUT_MS = 4000;
const SSE_RETRY_MS = 30000;
const FINAL = new Set(CALL_FINAL_STATUSES);

export class StatusFeed {
  /**
   * @param {object} opts
   * @param {string} opts.sessionId
   * @param {(status: object) => void} opts.onStatus   a status the stream pushed
   * @param {() => Promise<void>} opts.poll            read the status once (and show it)
   * @param {(mode: string) => void} opts.onMode        'connecting' | 'sse' | 'polling'
   */
  constructor({ sessionId, onStatus, poll, onMode }) {
    Object.assign(this, { sessionId, onStatus, poll, onMode });
    this.mode = 'connecting';
    this.source = null;
    this.polling = false;
    this.pollTimer = null;
    this.readyTimer = null;
    this.retryTimer = null;
    this.stopped = false;
  }

  start() {
    this.onMode(this.mode);
    this._open();
  }

  stop() {
    this.stopped = true;
    this._close();
    this._stopPolling();
    clearTimeout(this.retryTimer);
  }

  _setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.onMode(mode);
  }

  _open() {
    if (this.stopped) return;
    this._close();
    const source = new EventSource(`/api/calls/${encodeURIComponent(this.sessionId)}/events`);
    this.source = source;
    // Connected but silent (a buffering proxy, a stalled server): poll meanwhile.
    this.readyTimer = setTimeout(() => this._startPolling(), SSE_READY_TIMEOUT_MS);
    source.addEventListener(CUSTOMER_STATUS_EVENT, (e) => {
      if (this.source !== source) return;
      let status;
      try {
        status = JSON.parse(e.data);
      } catch (err) {
        console.warn('unreadable status event', e.data, err);
        return;
      }
      clearTimeout(this.readyTimer);
      this._stopPolling();
      this._setMode('sse');
      // The server closes the stream after an ended call's status: do not let the browser reconnect.
      if (FINAL.has(status.status)) this._close();
      this.onStatus(status);
    });
    // Another page of this call holds its streams now: reconnecting would close that one in turn.
    source.addEventListener(CUSTOMER_STREAM_REPLACED_EVENT, () => {
      if (this.source !== source) return;
      this._close();
      this._startPolling();
    });
    source.onerror = () => {
      if (this.source !== source) return;
      clearTimeout(this.readyTimer);
      // Poll while the browser reconnects by itself (readyState CONNECTING); a CLOSED stream (an
      // HTTP error: no cookie, 503 streams_full) is not retried by the browser, so try later.
      this._startPolling();
      if (source.readyState === EventSource.CLOSED) {
        this._close();
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this._open(), SSE_RETRY_MS);
      }
    };
  }

  _close() {
    clearTimeout(this.readyTimer);
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  _startPolling() {
    if (this.stopped || this.polling) return;
    this.polling = true;
    this._setMode('polling');
    const loop = async () => {
      if (!this.polling) return;
      await this.poll();
      if (this.polling) this.pollTimer = setTimeout(loop, POLL_INTERVAL_MS);
    };
    loop();
  }

  _stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }
}

// An agent's events: Server-Sent Events (/api/events) when they work, polling
// (/api/notifications/<agent>?since=) when they do not, and back to SSE when it recovers.
//
// Events are delivered to `onEvent(type, data, id)` once each, in id order per channel: both
// channels may overlap while switching, so ids already delivered are skipped. Events written
// before the feed started are *not* replayed; the page loads that state from the API after
// `onSynced` (called when a channel is first live, and again after every gap), so nothing falls
// between "state loaded" and "events flowing".

export const EVENT_TYPES = [
  'call_assigned', 'call_queued', 'call_active', 'call_ended', 'context_added', 'summary_ready',
  'transfer_requested', 'transfer_ringing', 'transfer_accepted', 'transfer_declined',
  'transfer_completed', 'transfer_cancelled', 'transfer_failed', 'agent_left',
];

const POLL_INTERVAL_MS = 2000;
const SSE_READY_TIMEOUT_MS = 4000;
const SSE_RETRY_MS = 30000;
const SEEN_LIMIT = 2000;

export class EventFeed {
  /**
   * @param {object} opts
   * @param {import('./api.js').Api} opts.api
   * @param {string} opts.agentId
   * @param {(type: string, data: object, id: number) => void} opts.onEvent
   * @param {() => void} opts.onSynced     resync state from the API (a gap may have happened)
   * @param {(mode: string) => void} opts.onMode  'connecting' | 'sse' | 'polling'
   * @param {(err: Error) => void} opts.onAuthLost  the session ended (401 / session_ended)
   */
  constructor({ api, agentId, onEvent, onSynced, onMode, onAuthLost }) {
    Object.assign(this, { api, agentId, onEvent, onSynced, onMode, onAuthLost });
    this.mode = 'connecting';
    this.cursor = null; // highest event id seen on any channel
    this.seen = new Set();
    this.source = null;
    this.pollTimer = null;
    this.polling = false;
    this.baselineDone = false;
    this.readyTimer = null;
    this.sseRetryTimer = null;
    this.stopped = false;
  }

  start() {
    this._openSse();
  }

  stop() {
    this.stopped = true;
    this._closeSse();
    this._stopPolling();
    clearTimeout(this.sseRetryTimer);
  }

  _setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.onMode(mode);
  }

  _deliver(type, data, id) {
    if (!Number.isFinite(id)) return;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value);
    if (this.cursor === null || id > this.cursor) this.cursor = id;
    this.onEvent(type, data, id);
  }

  // -- SSE ----------------------------------------------------------------------------------
  _openSse() {
    if (this.stopped) return;
    this._closeSse();
    const url = this.cursor === null ? '/api/events' : `/api/events?since=${this.cursor}`;
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    let live = false;
    this.readyTimer = setTimeout(() => {
      // Connected but silent (a buffering proxy, a stalled server): poll instead.
      if (!live) this._startPolling();
    }, SSE_READY_TIMEOUT_MS);

    source.addEventListener('ready', (e) => {
      if (this.source !== source) return;
      clearTimeout(this.readyTimer);
      const id = Number(e.lastEventId);
      if (this.cursor === null && Number.isFinite(id) && e.lastEventId !== '') this.cursor = id;
      live = true;
      const wasPolling = this.polling;
      this._setMode('sse');
      if (wasPolling) {
        // One last poll covers anything between the poll cursor and the stream's start.
        this._pollOnce().finally(() => this._stopPolling());
      }
      this.onSynced();
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (e) => {
        if (this.source !== source) return;
        let data;
        try {
          data = JSON.parse(e.data);
        } catch (err) {
          console.warn(`unreadable ${type} event`, e.data, err);
          return;
        }
        this._deliver(type, data, Number(e.lastEventId || data.event_id));
      });
    }
    source.addEventListener('session_ended', () => {
      this.stop();
      this.onAuthLost(new Error('Your session has ended. Sign in again.'));
    });
    source.onerror = () => {
      if (this.source !== source) return;
      clearTimeout(this.readyTimer);
      // The browser retries by itself while readyState is CONNECTING; meanwhile poll so nothing
      // waits on it. A CLOSED stream (HTTP error, wrong content type) is not retried by the
      // browser: try again later ourselves.
      this._startPolling();
      if (source.readyState === EventSource.CLOSED) {
        this._closeSse();
        clearTimeout(this.sseRetryTimer);
        this.sseRetryTimer = setTimeout(() => this._openSse(), SSE_RETRY_MS);
      } else {
        live = false;
        this.readyTimer = setTimeout(() => { if (!live) this._startPolling(); }, SSE_READY_TIMEOUT_MS);
      }
    };
  }

  _closeSse() {
    clearTimeout(this.readyTimer);
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  // -- polling ------------------------------------------------------------------------------
  _startPolling() {
    if (this.stopped || this.polling) return;
    this.polling = true;
    this._setMode('polling');
    const loop = async () => {
      if (!this.polling) return;
      await this._pollOnce();
      if (this.polling) this.pollTimer = setTimeout(loop, POLL_INTERVAL_MS);
    };
    loop();
  }

  _stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  async _pollOnce() {
    // Without a cursor the server answers "everything since you signed in": the first such
    // answer is the baseline (already reflected in the state the page loads), not news.
    const baseline = this.cursor === null && !this.baselineDone;
    try {
      for (;;) {
        const query = this.cursor === null ? '' : `?since=${this.cursor}`;
        const { notifications } = await this.api.get(`/api/notifications/${encodeURIComponent(this.agentId)}${query}`);
        const items = [...notifications].sort((a, b) => a.id - b.id);
        for (const n of items) {
          if (baseline) {
            this.seen.add(n.id);
            if (this.cursor === null || n.id > this.cursor) this.cursor = n.id;
          } else {
            this._deliver(n.type, { ...n.payload, event_id: n.id, created_at: n.created_at }, n.id);
          }
        }
        if (items.length === 0 || this.cursor === null) break;
        if (items.length < 200) break; // the server's page size: a full page means more waiting
      }
      if (baseline) {
        this.baselineDone = true;
        this.onSynced();
      }
    } catch (err) {
      if (err.status === 401) {
        this.stop();
        this.onAuthLost(err);
        return;
      }
      console.warn('polling notifications failed', err);
    }
  }
}

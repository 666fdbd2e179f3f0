// An agent's events: Server-Sent Events (/api/events) when they work, polling
// (/api/notifications/<agent>?since=) when they do not, and back to SSE when it recovers
// (the switching is stream_or_poll.js's).
//
// Events are delivered to `onEvent(type, data, id)` once each, in id order per channel: both
// channels may overlap while switching, so ids already delivered are skipped. The feed starts
// from `since`, the `last_event_id` of the /api/me answer the page was built from: events
// written after that answer are delivered (a refresh misses nothing and replays nothing older).
// `onSynced` is called when a channel is first live, and again after every gap, so the page
// reloads its state from the API and nothing falls between "state loaded" and "events flowing".
//
// The event types come from the generated wire contract (protocol.js, from app/protocol.py): a
// hand-kept list here once lacked `transfer_bridged`, and EventSource drops events nobody listens to.

import { EVENT_TYPES, SESSION_EVENT_TYPES, STREAM_READY_EVENT } from './protocol.js';
import { StreamOrPoll } from './stream_or_poll.js';

// What the page is handed; the session's own events (session_ended, stream_replaced) are acted on
// here, by the listeners of their own below.
export const CALL_EVENT_TYPES = Object.freeze(EVENT_TYPES.filter((type) => !SESSION_EVENT_TYPES.includes(type)));

const POLL_INTERVAL_MS = 2000;
const SEEN_LIMIT = 2000;

export class EventFeed extends StreamOrPoll {
  /**
   * @param {object} opts
   * @param {import('./api.js').Api} opts.api
   * @param {string} opts.agentId
   * @param {number} opts.since          the last event id already reflected in the page (/api/me)
   * @param {(type: string, data: object, id: number) => void} opts.onEvent
   * @param {() => void} opts.onSynced     resync state from the API (a gap may have happened)
   * @param {(mode: string) => void} opts.onMode  'connecting' | 'sse' | 'polling'
   * @param {(reason: string) => void} opts.onAuthLost  this session ended: 'logged_out' (here or
   *        in another tab), 'expired', or 'unauthorized' (the server no longer knows it)
   */
  constructor({ api, agentId, since, onEvent, onSynced, onMode, onAuthLost }) {
    if (!Number.isInteger(since) || since < 0) throw new TypeError(`EventFeed needs the last event id to start from, got ${since}`);
    super({ pollIntervalMs: POLL_INTERVAL_MS, onMode });
    Object.assign(this, { api, agentId, onEvent, onSynced, onAuthLost });
    this.cursor = since; // highest event id seen on any channel
    this.seen = new Set();
  }

  /** Record an id as handled; false when it already was (the other channel delivered it). */
  _advance(id) {
    if (!Number.isFinite(id) || this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value);
    if (id > this.cursor) this.cursor = id;
    return true;
  }

  _deliver(type, data, id) {
    if (this._advance(id)) this.onEvent(type, data, id);
  }

  _authLost(reason) {
    if (this.stopped) return;
    this.stop();
    this.onAuthLost(reason);
  }

  // -- SSE ----------------------------------------------------------------------------------
  _url() {
    // After an automatic reconnect the browser also sends Last-Event-ID, which the server
    // prefers to `since`: either way the stream resumes after the last event seen.
    return `/api/events?since=${this.cursor}`;
  }

  _listen(source) {
    this._on(source, STREAM_READY_EVENT, () => {
      const wasPolling = this.polling;
      this._live();
      if (wasPolling) {
        // One last poll covers anything between the poll cursor and the stream's start.
        this._pollOnce().finally(() => this._stopPolling());
      }
      this.onSynced();
    });
    for (const type of CALL_EVENT_TYPES) {
      this._on(source, type, (e) => {
        const data = StreamOrPoll.parse(type, e);
        if (data !== null) this._deliver(type, data, Number(e.lastEventId || data.event_id));
      });
    }
    // The server sends this only for this very session (signed out here or in another tab of
    // this browser), when it expired, or when every session of the agent ended (password
    // changed, account disabled or sessions revoked by an operator); then it closes the stream.
    this._on(source, 'session_ended', (e) => {
      this._authLost(StreamOrPoll.parse('session_ended', e)?.reason ?? 'logged_out');
    });
    // Too many streams for this agent (other tabs, other browsers): the server closed this,
    // the oldest, one. This tab keeps working by polling until it is reloaded.
    this._on(source, 'stream_replaced', () => this._replaced());
  }

  // -- polling ------------------------------------------------------------------------------
  async _pollOnce() {
    try {
      for (;;) {
        const path = `/api/notifications/${encodeURIComponent(this.agentId)}?since=${this.cursor}`;
        const { notifications } = await this.api.get(path);
        const items = [...notifications].sort((a, b) => a.id - b.id);
        for (const n of items) {
          if (SESSION_EVENT_TYPES.includes(n.type)) {
            // Listed for every session of this agent: here it is always another one (another
            // browser signing out), since once ours has ended this route answers 401; and
            // stream closures concern streams, which a polling tab does not have.
            this._advance(n.id);
          } else {
            this._deliver(n.type, { ...n.payload, event_id: n.id, created_at: n.created_at }, n.id);
          }
        }
        if (items.length < 200) break; // the server's page size: a full page means more waiting
      }
    } catch (err) {
      if (err.status === 401) {
        this._authLost('unauthorized');
        return;
      }
      console.warn('polling notifications failed', err);
    }
  }
}

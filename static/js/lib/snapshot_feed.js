// A view the server pushes whole (stream_or_poll.js): a web customer's call status
// (status_feed.js) and a supervisor's floor (supervisor/main.js). Every frame carries the whole
// view, so nothing needs replaying: whichever channel answers last is the truth, and the page
// just shows it.

import { StreamOrPoll } from './stream_or_poll.js';

const POLL_INTERVAL_MS = 3000;

export class SnapshotFeed extends StreamOrPoll {
  /**
   * @param {object} opts
   * @param {string | (() => string)} opts.url      the stream (GET, same origin, cookies sent); a
   *        function is asked again at every (re)connection, for a URL that changes with time
   * @param {string} opts.event                     the SSE event name of a view
   * @param {(view: object) => void} opts.onView    a view the stream pushed
   * @param {() => Promise<void>} opts.poll         read the view once (and show it)
   * @param {(mode: string) => void} opts.onMode    'connecting' | 'sse' | 'polling'
   * @param {(view: object) => boolean} [opts.isFinal]  after this view the server ends the stream
   * @param {string[]} [opts.replacedEvents]        "another page holds the streams now"
   * @param {Object<string, (data: object) => void>} [opts.endEvents]  events that end the feed
   *        (e.g. the login ended), each with its handler
   */
  constructor({ url, event, onView, poll, onMode, isFinal = () => false, replacedEvents = [], endEvents = {} }) {
    super({ pollIntervalMs: POLL_INTERVAL_MS, onMode });
    Object.assign(this, { url, event, onView, poll, isFinal, replacedEvents, endEvents });
  }

  start() {
    this.onMode(this.mode);
    super.start();
  }

  _url() {
    return typeof this.url === 'function' ? this.url() : this.url;
  }

  _pollOnce() {
    return this.poll();
  }

  _listen(source) {
    this._on(source, this.event, (e) => {
      const view = StreamOrPoll.parse(this.event, e);
      if (view === null) return;
      this._stopPolling();
      this._live();
      // The server closes the stream after a final view: do not let the browser reconnect.
      if (this.isFinal(view)) this._close();
      this.onView(view);
    });
    for (const name of this.replacedEvents) this._on(source, name, () => this._replaced());
    for (const [name, handler] of Object.entries(this.endEvents)) {
      this._on(source, name, (e) => {
        const data = StreamOrPoll.parse(name, e) ?? {};
        this.stop();
        handler(data);
      });
    }
  }
}

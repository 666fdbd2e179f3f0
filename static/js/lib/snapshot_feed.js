// A view the server pushes whole: over Server-Sent Events when they work, by polling whenever the
// stream fails or stays silent, and back to the stream when it recovers. A web customer's call
// status (status_feed.js) and a supervisor's floor (supervisor/main.js) are such views.
//
// Every frame carries the whole view, so nothing needs replaying: whichever channel answers last
// is the truth, and the page just shows it.

const POLL_INTERVAL_MS = 3000;
const SSE_READY_TIMEOUT_MS = 4000;
const SSE_RETRY_MS = 30000;

export class SnapshotFeed {
  /**
   * @param {object} opts
   * @param {string | (() => string)} opts.url      the stream (GET, same origin, cookies sent); a
   *        function is asked again at every (re)connection, for a URL that changes with time
   * @param {string} opts.event                     the SSE event name of a view
   * @param {(view: object) => void} opts.onView    a view the stream pushed
   * @param {() => Promise<void>} opts.poll         read the view once (and show it)
   * @param {(mode: string) => void} opts.onMode    'connecting' | 'sse' | 'polling'
   * @param {(view: object) => boolean} [opts.isFinal]  after this view the server ends the stream
   * @param {string[]} [opts.replacedEvents]        "another page holds the streams now": poll,
   *        never reconnect (that would close the other page's stream in turn)
   * @param {Object<string, (data: object) => void>} [opts.endEvents]  events that end the feed
   *        (e.g. the login ended), each with its handler
   */
  constructor({ url, event, onView, poll, onMode, isFinal = () => false, replacedEvents = [], endEvents = {} }) {
    Object.assign(this, { url, event, onView, poll, onMode, isFinal, replacedEvents, endEvents });
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
    const source = new EventSource(typeof this.url === 'function' ? this.url() : this.url);
    this.source = source;
    // Connected but silent (a buffering proxy, a stalled server): poll meanwhile.
    this.readyTimer = setTimeout(() => this._startPolling(), SSE_READY_TIMEOUT_MS);
    source.addEventListener(this.event, (e) => {
      if (this.source !== source) return;
      let view;
      try {
        view = JSON.parse(e.data);
      } catch (err) {
        console.warn(`unreadable ${this.event} event`, e.data, err);
        return;
      }
      clearTimeout(this.readyTimer);
      this._stopPolling();
      this._setMode('sse');
      // The server closes the stream after a final view: do not let the browser reconnect.
      if (this.isFinal(view)) this._close();
      this.onView(view);
    });
    for (const name of this.replacedEvents) {
      source.addEventListener(name, () => {
        if (this.source !== source) return;
        this._close();
        this._startPolling();
      });
    }
    for (const [name, handler] of Object.entries(this.endEvents)) {
      source.addEventListener(name, (e) => {
        if (this.source !== source) return;
        let data = {};
        try {
          data = JSON.parse(e.data);
        } catch (err) {
          console.warn(`unreadable ${name} event`, e.data, err);
        }
        this.stop();
        handler(data);
      });
    }
    source.onerror = () => {
      if (this.source !== source) return;
      clearTimeout(this.readyTimer);
      // Poll while the browser reconnects by itself (readyState CONNECTING); a CLOSED stream (an
      // HTTP error: 401, 503 streams_full) is not retried by the browser, so try later.
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

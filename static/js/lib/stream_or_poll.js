// What every live feed of these pages shares: a Server-Sent Events stream when it works, polling
// whenever it fails or stays silent, and back to the stream when it recovers.
//
// A subclass says where the stream is (`_url`), what it listens to on it (`_listen`, calling
// `_live()` once the stream is known to work), and how to poll once (`_pollOnce`). This class
// keeps the rest: the mode shown to the user, the silent-stream timer, polling while the browser
// reconnects by itself, trying again later when it gives up, and polling for good when another
// page took the stream's place.

const SSE_READY_TIMEOUT_MS = 4000;
const SSE_RETRY_MS = 30000;

export class StreamOrPoll {
  /**
   * @param {object} opts
   * @param {number} opts.pollIntervalMs
   * @param {(mode: string) => void} opts.onMode  'connecting' | 'sse' | 'polling'
   */
  constructor({ pollIntervalMs, onMode }) {
    this.pollIntervalMs = pollIntervalMs;
    this.onMode = onMode;
    this.mode = 'connecting';
    this.source = null;
    this.polling = false;
    this.pollTimer = null;
    this.readyTimer = null;
    this.retryTimer = null;
    this.stopped = false;
  }

  start() {
    this._open();
  }

  stop() {
    this.stopped = true;
    this._close();
    this._stopPolling();
    clearTimeout(this.retryTimer);
  }

  /** The stream's URL, asked at every (re)connection. */
  _url() {
    throw new Error('a StreamOrPoll needs _url()');
  }

  /** Add the listeners of the stream's events (with `_on`). */
  _listen() {
    throw new Error('a StreamOrPoll needs _listen(source)');
  }

  /** Read once by polling (and hand on what was read). */
  async _pollOnce() {
    throw new Error('a StreamOrPoll needs _pollOnce()');
  }

  _setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.onMode(mode);
  }

  _open() {
    if (this.stopped) return;
    this._close();
    const source = new EventSource(this._url(), { withCredentials: true });
    this.source = source;
    // Connected but silent (a buffering proxy, a stalled server): poll meanwhile.
    this.readyTimer = setTimeout(() => this._startPolling(), SSE_READY_TIMEOUT_MS);
    this._listen(source);
    source.onerror = () => {
      if (this.source !== source) return;
      clearTimeout(this.readyTimer);
      // The browser retries by itself while readyState is CONNECTING; meanwhile poll so nothing
      // waits on it. A CLOSED stream (an HTTP error: 401, 503 streams_full; a wrong content
      // type) is not retried by the browser: try again later ourselves.
      this._startPolling();
      if (source.readyState === EventSource.CLOSED) {
        this._close();
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this._open(), SSE_RETRY_MS);
      }
    };
  }

  /** `handler(event)` for the stream's `name` events, while `source` is still the current stream. */
  _on(source, name, handler) {
    source.addEventListener(name, (e) => {
      if (this.source === source) handler(e);
    });
  }

  /** An event's JSON data, or null (logged) when it cannot be read. */
  static parse(name, e) {
    try {
      return JSON.parse(e.data);
    } catch (err) {
      console.warn(`unreadable ${name} event`, e.data, err);
      return null;
    }
  }

  /** The stream works: no more waiting for it to speak. */
  _live() {
    clearTimeout(this.readyTimer);
    this._setMode('sse');
  }

  /** Another page holds the stream now: reconnecting would close that one in turn, so poll. */
  _replaced() {
    this._close();
    clearTimeout(this.retryTimer);
    this._startPolling();
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
      await this._pollOnce();
      if (this.polling) this.pollTimer = setTimeout(loop, this.pollIntervalMs);
    };
    loop();
  }

  _stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }
}

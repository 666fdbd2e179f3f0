// A web customer's call status: pushed over Server-Sent Events (GET /api/calls/<id>/events,
// authenticated by the HttpOnly cookie create-call set for this call, so the key never goes in a
// URL), with polling (`poll`, GET /api/calls/<id>/status every 3 s) whenever the stream fails or
// stays silent, and back to the stream when it recovers (snapshot_feed.js).

import { CALL_FINAL_STATUSES, CUSTOMER_STATUS_EVENT, CUSTOMER_STREAM_REPLACED_EVENT } from './protocol.js';
import { SnapshotFeed } from './snapshot_feed.js';

const FINAL = new Set(CALL_FINAL_STATUSES);

export class StatusFeed extends SnapshotFeed {
  /**
   * @param {object} opts
   * @param {string} opts.sessionId
   * @param {(status: object) => void} opts.onStatus   a status the stream pushed
   * @param {() => Promise<void>} opts.poll            read the status once (and show it)
   * @param {(mode: string) => void} opts.onMode        'connecting' | 'sse' | 'polling'
   */
  constructor({ sessionId, onStatus, poll, onMode }) {
    super({
      url: `/api/calls/${encodeURIComponent(sessionId)}/events`,
      event: CUSTOMER_STATUS_EVENT,
      onView: onStatus,
      poll,
      onMode,
      isFinal: (status) => FINAL.has(status.status),
      replacedEvents: [CUSTOMER_STREAM_REPLACED_EVENT],
    });
    this.sessionId = sessionId;
  }
}

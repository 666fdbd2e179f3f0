// One LiveKit room at a time, with the microphone, remote audio playback, a level meter and
// WebRTC statistics. Pages decide *which* room (from the API); this module only gets them there
// and says clearly what went wrong when it cannot (microphone denied, no device, LiveKit down).

import {
  ConnectionError,
  ConnectionErrorReason,
  DisconnectReason,
  MediaDeviceFailure,
  Room,
  RoomEvent,
  Track,
  createAudioAnalyser,
  setLogLevel,
} from '../../vendor/livekit-client/livekit-client.esm.js';
import { ATTR, ROLE, roleOfIdentity } from './protocol.js';

setLogLevel('warn');

// livekit-client's connect() and publish can wait indefinitely when the room is deleted while
// they run (a transfer cancelled as Agent B joins). Pages serialise room changes, so one stuck
// promise would freeze them: every LiveKit step is bounded.
const CONNECT_TIMEOUT_MS = 15000;
const PUBLISH_TIMEOUT_MS = 10000;
const LEAVE_TIMEOUT_MS = 5000;
// Getting the microphone can wait on a permission prompt; see _acquireMic.
const MIC_START_TIMEOUT_MS = 10000;

/** The browser could not capture the microphone (getUserMedia failed), as opposed to a LiveKit
 * step around it failing. Keeps the cause's name, which MediaDeviceFailure reads. */
class DeviceFailure extends Error {
  constructor(cause) {
    super(cause?.message || String(cause), { cause });
    this.name = cause?.name || 'Error';
  }
}

/**
 * A promise that rejects when `room` disconnects (after `graceMs`), to race a step against;
 * `cancel()` removes the listener once the step is over (mute toggles must not pile them up).
 */
function untilGone(room, graceMs = 0) {
  let onGone;
  const promise = new Promise((_, reject) => {
    onGone = () => setTimeout(() => reject(new DOMException('the room disconnected', 'RoomGone')), graceMs);
    room.once(RoomEvent.Disconnected, onGone);
  });
  promise.catch(() => undefined); // only ever raced: losing the race is not an error
  return { promise, cancel: () => room.off(RoomEvent.Disconnected, onGone) };
}

/** Resolve with `promise`'s outcome, or reject with a TimeoutError after `ms`. */
function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new DOMException(`${what} took longer than ${ms / 1000} s`, 'TimeoutError')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * What a participant is in our rooms, from the attributes the app sets (wt_role, protocol.js):
 * 'customer', 'hold' (the worker playing hold music, `hold-<call id>`: never someone to talk
 * to), 'supervisor' (`supervisor-<agent id>`, whispering or barging in: never the customer's
 * agent) or 'agent' (a browser agent, or Agent B's phone leg).
 */
export function roleOf(participant) {
  const role = participant.attributes?.[ATTR.role];
  if (role === ROLE.customer || role === ROLE.hold || role === ROLE.supervisor) return role;
  if (role) return 'agent';
  const minted = roleOfIdentity(participant.identity);
  return minted === 'customer' || minted === 'hold' || minted === 'supervisor' ? minted : 'agent';
}

function describeConnectError(err, url) {
  if (err?.name === 'RoomGone') {
    return { kind: 'dropped', message: 'The audio room closed while joining it.' };
  }
  if (err instanceof ConnectionError) {
    if (err.reason === ConnectionErrorReason.NotAllowed) {
      return { kind: 'rejected', message: 'The audio server refused this session (the access token was not accepted). Retry to get a fresh one.' };
    }
    if (err.reason === ConnectionErrorReason.Cancelled) {
      return { kind: 'cancelled', message: 'Connecting to the audio server was cancelled.' };
    }
  }
  return {
    kind: 'unreachable',
    message: `The audio server (${url}) cannot be reached, so there is no audio. Check the network; retrying.`,
  };
}

/**
 * {kind, message, reason, device} for a microphone that did not start. `reason` is a short
 * phrase for other sentences; `device` says the browser refused or could not open the
 * microphone itself (permission, no device, device busy), as opposed to a publishing step that
 * failed for network reasons.
 */
function describeMicError(err, { device }) {
  switch (MediaDeviceFailure.getFailure(err)) {
    case MediaDeviceFailure.PermissionDenied:
      return { kind: 'mic-denied', device, reason: 'access to it is blocked in this browser', message: 'Microphone access is blocked. Allow the microphone for this site (the icon in the address bar), then press Retry microphone. You can still hear the call.' };
    case MediaDeviceFailure.NotFound:
      return { kind: 'mic-missing', device, reason: 'no microphone was found', message: 'No microphone was found. Connect a headset or microphone, then press Retry microphone.' };
    case MediaDeviceFailure.DeviceInUse:
      return { kind: 'mic-busy', device, reason: 'it is in use by another application', message: 'The microphone is in use by another application. Close it, then press Retry microphone.' };
    default: {
      const why = err?.message || String(err);
      return { kind: 'mic-other', device, reason: `it could not be started (${why})`, message: `The microphone could not be started (${why}). Press Retry microphone.` };
    }
  }
}

export class CallAudio extends EventTarget {
  /** @param {HTMLElement} container  where the <audio> elements for remote tracks are put */
  constructor(container) {
    super();
    this.container = container;
    this.room = null;
    this.roomName = null;
    this.state = 'idle'; // idle | connecting | connected | reconnecting | failed | disconnected
    this.problem = null; // {kind, message} when the room connection failed
    this.micProblem = null; // {kind, message} when the microphone failed
    this.muted = false;
    this.canPlay = true;
    this.lastDisconnect = null; // DisconnectReason name of the last unexpected disconnect
    this._queue = Promise.resolve();
    this._leaving = new WeakSet();
    this.policy = { microphone: 'publish', heardBy: null };
  }

  _changed() {
    this.dispatchEvent(new Event('change'));
  }

  /** Run room operations one after another: a join never races a leave. */
  _serial(fn) {
    const run = this._queue.then(fn, fn);
    // The chain only orders operations; each caller still gets its own result or error.
    this._queue = run.then(() => undefined, () => undefined);
    return run;
  }

  get connected() {
    return this.state === 'connected' || this.state === 'reconnecting';
  }

  /**
   * Connect to `roomName` (no-op when already there). Resolves true when connected.
   * `microphone`: 'publish' (agents, a barging supervisor), or 'none' (a monitoring supervisor,
   * whose token cannot publish anyway). `heardBy`: when set, only these identities may subscribe
   * to our tracks (a whisper); set before the microphone is published, so no one else ever
   * receives a packet of it (livekit-server enforces it: the supervisor's token and
   * app/services/supervision.py say which rules apply).
   */
  join(url, token, roomName, { microphone = 'publish', heardBy = null } = {}) {
    return this._serial(() => this._join(url, token, roomName, { microphone, heardBy }));
  }

  leave() {
    return this._serial(() => this._leave());
  }

  async _join(url, token, roomName, policy) {
    if (this.room && this.roomName === roomName && this.connected) return true;
    this.policy = policy;
    // The last failure stays on screen while we try again; success clears it.
    await this._leave({ keepProblem: true });
    const room = new Room({
      adaptiveStream: false,
      dynacast: false,
      disconnectOnPageLeave: true,
      audioCaptureDefaults: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.room = room;
    this.roomName = roomName;
    this.state = 'connecting';
    this.lastDisconnect = null;
    this._wire(room);
    this._changed();
    // A failing connect() also disconnects, then rejects with the real cause: give it a moment
    // to do so; if it never settles (the room was deleted under it), `gone` wins.
    const gone = untilGone(room, 1000);
    try {
      await bounded(Promise.race([room.connect(url, token, { autoSubscribe: true }), gone.promise]), CONNECT_TIMEOUT_MS, 'Connecting to the audio server');
    } catch (err) {
      console.warn('LiveKit connect failed', err);
      if (this.room === room) {
        this.room = null;
        this.state = 'failed';
        this.problem = describeConnectError(err, url);
        this._leaving.add(room);
        room.disconnect().catch((e) => console.warn('disconnect after a failed connect', e));
        this._changed();
      }
      return false;
    } finally {
      gone.cancel();
    }
    if (this.room !== room) return false;
    this.state = 'connected';
    this.problem = null;
    this.canPlay = room.canPlaybackAudio;
    if (policy.heardBy) {
      room.localParticipant.setTrackSubscriptionPermissions(false, policy.heardBy.map((identity) => ({ participantIdentity: identity, allowAll: true })));
    }
    await this._publishMic();
    this._changed();
    return this.room === room;
  }

  async _leave({ keepProblem = false } = {}) {
    const room = this.room;
    this.room = null;
    this.roomName = null;
    this.micProblem = null;
    if (!keepProblem) this.problem = null;
    this.state = 'idle';
    if (room) {
      this._leaving.add(room);
      await bounded(room.disconnect(), LEAVE_TIMEOUT_MS, 'Leaving the audio room').catch((err) => console.warn('leaving the room', err));
    }
    this.container.replaceChildren();
    this._changed();
  }

  /**
   * Get our microphone track published in the room, muted or not as the user chose. It is
   * published even while muted: LiveKit SIP answers a phone caller only once someone in the
   * room publishes audio, and the hold music stops when an agent does; a muted publication does
   * both without being heard. Muting keeps the publication (stopMicTrackOnMute is off): the
   * track is disabled, and LiveKit is told it is muted.
   */
  async _publishMic() {
    const room = this.room;
    if (!room || this.policy?.microphone === 'none') return;
    const gone = untilGone(room);
    try {
      const pub = room.localParticipant.getTrackPublication(Track.Source.Microphone);
      if (pub?.track) {
        // Unmuting re-acquires a track that ended (a headset unplugged): when that fails the way
        // getUserMedia does, the device is at fault.
        const step = this.muted ? pub.mute() : pub.unmute().catch((err) => {
          throw MediaDeviceFailure.getFailure(err) === MediaDeviceFailure.Other ? err : new DeviceFailure(err);
        });
        await bounded(Promise.race([step, gone.promise]), PUBLISH_TIMEOUT_MS, 'Starting the microphone');
      } else {
        const track = await this._acquireMic(room, gone);
        // Muted before it is published: the first frame the sender ever gets is already silence,
        // and the publication is announced muted (AddTrackRequest carries track.isMuted).
        if (this.muted) await track.mute();
        try {
          await bounded(Promise.race([room.localParticipant.publishTrack(track), gone.promise]), PUBLISH_TIMEOUT_MS, 'Publishing the microphone');
        } catch (err) {
          track.stop(); // not left capturing for nobody
          throw err;
        }
      }
      this.micProblem = null;
    } catch (err) {
      console.warn('microphone failed', err);
      if (this.room !== room) return; // the room went away meanwhile: not a microphone problem
      this._micFailed(err);
    } finally {
      gone.cancel();
    }
    this._changed();
  }

  /**
   * A microphone track from the browser for `room` (it may ask the user first). A refusal is a
   * device error. A prompt left unanswered must not hold up the room changes queued behind this
   * step: after MIC_START_TIMEOUT_MS we stop waiting, and whatever the browser answers later is
   * still acted on: a track is released and the microphone retried (permission is there now),
   * a refusal is reported.
   */
  async _acquireMic(room, gone) {
    const acquiring = room.localParticipant.createTracks({ audio: true })
      .catch((err) => { throw new DeviceFailure(err); });
    try {
      const [track] = await bounded(Promise.race([acquiring, gone.promise]), MIC_START_TIMEOUT_MS, 'Starting the microphone');
      return track;
    } catch (err) {
      if (err instanceof DeviceFailure) throw err;
      acquiring.then((late) => {
        for (const t of late) t.stop();
        if (this.room === room) this.retryMicrophone();
      }, (late) => {
        if (this.room !== room) return;
        this._micFailed(late);
        this._changed();
      });
      if (err.name === 'TimeoutError') {
        throw new DOMException('the browser has not given access to the microphone yet; if it asks for permission, allow it', 'TimeoutError');
      }
      throw err; // the room went away
    }
  }

  /** Show why the microphone is not working; a failure of the device itself is also announced
   * (event `microphonefailed`, detail {roomName, problem}) so a page can act on it. */
  _micFailed(err) {
    this.micProblem = describeMicError(err, { device: err instanceof DeviceFailure });
    if (this.micProblem.device) {
      this.dispatchEvent(new CustomEvent('microphonefailed', { detail: { roomName: this.roomName, problem: this.micProblem } }));
    }
  }

  retryMicrophone() {
    return this._serial(() => this._publishMic());
  }

  setMuted(muted) {
    this.muted = muted;
    return this._serial(() => this._publishMic());
  }

  async startAudio() {
    if (!this.room) return;
    await this.room.startAudio();
    this.canPlay = this.room.canPlaybackAudio;
    this._changed();
  }

  _wire(room) {
    const mine = (fn) => (...args) => { if (this.room === room) fn(...args); };
    room.on(RoomEvent.TrackSubscribed, mine((track, _pub, participant) => {
      if (track.kind !== Track.Kind.Audio) return;
      const el = track.attach();
      el.dataset.identity = participant.identity;
      this.container.append(el);
      this._changed();
    }));
    room.on(RoomEvent.TrackUnsubscribed, mine((track) => {
      for (const el of track.detach()) el.remove();
      this._changed();
    }));
    for (const name of [RoomEvent.ParticipantConnected, RoomEvent.ParticipantDisconnected,
      RoomEvent.ParticipantAttributesChanged, RoomEvent.TrackMuted, RoomEvent.TrackUnmuted]) {
      room.on(name, mine(() => this._changed()));
    }
    room.on(RoomEvent.Reconnecting, mine(() => { this.state = 'reconnecting'; this._changed(); }));
    room.on(RoomEvent.Reconnected, mine(() => { this.state = 'connected'; this._changed(); }));
    room.on(RoomEvent.AudioPlaybackStatusChanged, mine(() => { this.canPlay = room.canPlaybackAudio; this._changed(); }));
    room.on(RoomEvent.Disconnected, (reason) => {
      // While connecting, _join reports the failure (with its cause) instead.
      if (this._leaving.has(room) || this.room !== room || this.state === 'connecting') return;
      this.room = null;
      this.state = 'disconnected';
      this.lastDisconnect = DisconnectReason[reason] ?? 'UNKNOWN_REASON';
      this.container.replaceChildren();
      this._changed();
      this.dispatchEvent(new CustomEvent('disconnected', { detail: { reason: this.lastDisconnect, roomName: this.roomName } }));
    });
  }

  /** Remote participants as plain data: [{identity, name, role, audio}] */
  remotes() {
    if (!this.room) return [];
    return [...this.room.remoteParticipants.values()].map((p) => ({
      identity: p.identity,
      name: p.name || p.identity,
      role: roleOf(p),
      audio: [...p.audioTrackPublications.values()].some((pub) => pub.isSubscribed && !pub.isMuted),
      // A track its publisher does not let us have (a supervisor's whisper to someone else).
      refused: [...p.audioTrackPublications.values()].some((pub) => pub.permissionStatus === 'not_allowed'),
    }));
  }

  /** The subscribed audio track of the first remote participant with this role, if any. */
  remoteAudioTrack(role) {
    if (!this.room) return null;
    for (const p of this.room.remoteParticipants.values()) {
      if (roleOf(p) !== role) continue;
      for (const pub of p.audioTrackPublications.values()) {
        if (pub.track) return pub.track;
      }
    }
    return null;
  }

  /**
   * WebRTC statistics of this session, for diagnostics and the browser tests:
   * {room, state, sent: {bytesSent}, received: [{identity, trackSid, role, muted, bytesReceived, packetsReceived, totalAudioEnergy}]}
   */
  async stats() {
    const room = this.room;
    const out = { room: this.roomName, state: this.state, sent: null, received: [] };
    if (!room) return out;
    for (const pub of room.localParticipant.audioTrackPublications.values()) {
      const sender = pub.track?.sender;
      if (!sender) continue;
      const report = await sender.getStats();
      let bytesSent = 0;
      report.forEach((s) => { if (s.type === 'outbound-rtp') bytesSent += s.bytesSent || 0; });
      out.sent = { bytesSent, muted: pub.isMuted };
    }
    for (const p of room.remoteParticipants.values()) {
      for (const pub of p.audioTrackPublications.values()) {
        if (!pub.track) continue;
        const s = await pub.track.getReceiverStats();
        out.received.push({
          identity: p.identity,
          trackSid: pub.trackSid,
          role: roleOf(p),
          muted: pub.isMuted,
          bytesReceived: s?.bytesReceived ?? 0,
          packetsReceived: s?.packetsReceived ?? 0,
          totalAudioEnergy: s?.totalAudioEnergy ?? 0,
        });
      }
    }
    return out;
  }
}

/** A <meter> that follows the live level of one remote role's audio (e.g. the customer). */
export class LevelMeter {
  constructor(meterEl, audio, role) {
    this.meterEl = meterEl;
    this.audio = audio;
    this.role = role;
    this.track = null;
    this.analyser = null;
    this.handle = setInterval(() => this._tick(), 120);
  }

  _tick() {
    const track = this.audio.remoteAudioTrack(this.role);
    if (track !== this.track) {
      this._release();
      this.track = track;
      if (track) this.analyser = createAudioAnalyser(track, { smoothingTimeConstant: 0.5 });
    }
    const level = this.analyser ? this.analyser.calculateVolume() : 0;
    this.meterEl.value = Math.min(1, level);
    this.meterEl.dataset.level = level.toFixed(3);
  }

  _release() {
    if (this.analyser) {
      this.analyser.cleanup().catch((err) => console.warn('audio analyser cleanup failed', err));
    }
    this.analyser = null;
    this.track = null;
  }

  /** Browsers start audio contexts suspended until a click; call from a click handler. */
  resume() {
    const ctx = this.analyser?.analyser?.context;
    if (ctx && ctx.state === 'suspended') return ctx.resume();
    return Promise.resolve();
  }
}

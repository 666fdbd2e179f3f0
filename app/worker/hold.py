"""Hold audio: while a customer waits for an agent, a participant `hold-<call_id>` plays music into
their LiveKit room (the `livekit` real-time SDK), and leaves the moment an agent is back.

Which calls want it is read from the database, so every worker agrees:
- `consult`: the call is on hold (Agent A is consulting Agent B in the private transfer room);
- `waiting`: a web customer waiting in the queue; or, for any customer, queued or ringing again
  after an agent stopped talking to them without handing over (a missed assignment, the owner
  leaving): `calls.requeued_at`. (A phone caller waiting in the queue before any agent is in
  Twilio's hold loop, where Twilio plays the same music; they are not in the room yet.)
- `handover`: the transfer completed but Agent B has not reached the customer yet (no
  `bridged_at`), for at most HANDOVER_MAX_S.
In the last two the session also stops by itself, without waiting for LiveKit's webhook, as soon
as an agent (a browser agent, or Agent B's SIP leg) is heard in the room: it subscribes to the
agent's track and stops at the first audible frame, so the music ends as the agent's voice starts
(no gap, no talking over music); a muted or silent agent ends it AGENT_HEARD_CAP_S after their
track appeared.

One worker plays a given call: a `hold_leases` row, renewed every second, says which. A worker
that dies stops renewing; within LEASE_S another worker (or the same one restarted) takes over.
LiveKit SIP answers a phone caller's leg once anything in the room publishes audio, so hold audio
after a missed assignment also answers a caller who would otherwise keep ringing.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import psycopg
from livekit import rtc
from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.audio import FRAME_SAMPLES, SAMPLE_RATE, HoldAudio, HoldAudioError, build_hold_audio
from app.errors import ConfigError
from app.events import NOTIFY_CHANNEL as EVENTS_CHANNEL
from app.models import Call, HoldLease, Transfer, utcnow
from app.protocol import ATTR_ROLE, ROLE_AGENT_B, role_of_identity

log = logging.getLogger(__name__)

LEASE_S = 4.0
RENEW_S = 1.0
POLL_S = 0.1
HANDOVER_MAX_S = 30.0
# After a session failed (LiveKit unreachable, the room gone), wait this long before retrying.
RETRY_AFTER_S = 2.0
JOIN_TIMEOUT_S = 10.0
# An agent counts as heard at the first 10 ms frame above this level (int16 RMS, about -36 dBFS:
# speech, not line noise), or this long after their track appeared, whichever is first.
AGENT_HEARD_RMS = 500.0
AGENT_HEARD_CAP_S = 1.5
FADE_OUT_S = 0.4


@dataclass
class _Session:
    call_id: str
    room: str
    reason: str
    future: asyncio.Future | None = None
    stop: asyncio.Event | None = None
    started: float = field(default_factory=time.monotonic)
    agent_heard: bool = False  # an agent was heard in the room: this wait is over
    rescan: object | None = None  # look at who is in the room again (after the reason changed)


class HoldPlayer:
    def __init__(self, services, holder: str):
        settings = services.settings
        self.services = services
        self.db = services.db
        self.livekit = services.livekit
        self.ws_url = settings.LIVEKIT_WS_URL
        self.holder = holder
        try:
            self.audio: HoldAudio = build_hold_audio(settings.HOLD_AUDIO_FILE, settings.HOLD_REMINDER_FILE, settings.HOLD_REMINDER_S)
        except HoldAudioError as err:
            raise ConfigError(f"Hold audio: {err}") from err
        self._sessions: dict[str, _Session] = {}
        self._failed_at: dict[str, float] = {}
        self._done_waiting: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._loop.run_forever, "hold-audio-loop"), (self._reconcile_loop, "hold-audio")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.db.is_postgres:
            thread = threading.Thread(target=self._listen, name="hold-audio-listener", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Leave every room and give up the leases, so another worker takes over at once."""
        self._stop.set()
        self._wake.set()
        for session in list(self._sessions.values()):
            self._end(session)
        for session in list(self._sessions.values()):
            if session.future is not None:
                try:
                    session.future.result(timeout=5)
                except Exception as err:  # noqa: BLE001 - whatever the session raised, shutdown goes on; logged
                    log.warning("hold audio for call %s did not stop cleanly: %s", session.call_id, err)
        self._release(list(self._sessions))
        self._loop.call_soon_threadsafe(self._loop.stop)

    def playing(self) -> dict[str, str]:
        """call id -> reason, for the calls this worker is playing into (tests, logs)."""
        return {c: s.reason for c, s in self._sessions.items() if s.future is not None and not s.future.done()}

    # -- deciding --------------------------------------------------------------------------------
    def wanted(self) -> dict[str, tuple[str, str]]:
        """call id -> (room, reason) for every call whose customer should hear hold audio now."""
        now = utcnow()
        waiting_for_b = exists().where(
            Transfer.call_id == Call.id,
            Transfer.to_agent_id.is_not_distinct_from(Call.agent_id),
            Transfer.handed_over_at > now - timedelta(seconds=HANDOVER_MAX_S),
            Transfer.bridged_at.is_(None),
        )
        with self.db.reading() as s:
            rows = s.execute(
                select(Call.id, Call.room_name, Call.status, Call.requeued_at).where(
                    or_(
                        Call.status == "on_hold",
                        and_(Call.status.in_(["queued", "ringing"]), Call.requeued_at.is_not(None)),
                        and_(Call.status == "queued", Call.channel == "web"),
                        and_(Call.status == "transferred", waiting_for_b),
                    )
                )
            ).all()
        return {call_id: (room, {"on_hold": "consult", "transferred": "handover"}.get(status, "waiting"))
                for call_id, room, status, _requeued in rows}

    def _reconcile_loop(self) -> None:
        last_renew = 0.0
        while not self._stop.is_set():
            try:
                self._reconcile()
                if time.monotonic() - last_renew >= RENEW_S:
                    self._renew()
                    last_renew = time.monotonic()
            except SQLAlchemyError as err:  # the database is down: keep playing what we play
                log.warning("hold audio cannot read the database: %s", err)
                self._stop.wait(1.0)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _reconcile(self) -> None:
        wanted = self.wanted()
        # A wait in which an agent was already heard is over, though the database may say so only
        # a moment later (the token request or LiveKit's webhook has not landed yet).
        self._done_waiting &= {(c, r) for c, (_, r) in wanted.items()}
        wanted = {c: v for c, v in wanted.items() if (c, v[1]) not in self._done_waiting}
        for call_id, session in list(self._sessions.items()):
            gone = session.future is not None and session.future.done()
            if not gone and call_id in wanted and wanted[call_id][1] != session.reason:
                # The wait goes on for another reason (the consult became the hand-over): the
                # music plays on without a break; agents arriving now end it.
                session.reason = wanted[call_id][1]
                if session.rescan is not None:
                    self._loop.call_soon_threadsafe(session.rescan)
                continue
            if call_id not in wanted or gone:
                self._end(session)
                if gone and not session.future.cancelled() and session.future.exception() is not None:
                    log.warning("hold audio for call %s failed: %r", call_id, session.future.exception())
                    self._failed_at[call_id] = time.monotonic()
                del self._sessions[call_id]
                self._release([call_id])
        for call_id, (room, reason) in wanted.items():
            if call_id in self._sessions:
                continue
            if time.monotonic() - self._failed_at.get(call_id, -RETRY_AFTER_S) < RETRY_AFTER_S:
                continue
            if self._acquire(call_id):
                self._begin(call_id, room, reason)

    # -- leases ----------------------------------------------------------------------------------
    def _acquire(self, call_id: str) -> bool:
        now = utcnow()
        expires = now + timedelta(seconds=LEASE_S)
        try:
            with self.db.transaction() as s:
                taken = s.execute(
                    update(HoldLease)
                    .where(HoldLease.call_id == call_id, or_(HoldLease.expires_at < now, HoldLease.holder == self.holder))
                    .values(holder=self.holder, expires_at=expires)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if taken:
                    return True
                if s.get(HoldLease, call_id) is not None:
                    return False  # another worker plays this call
                s.add(HoldLease(call_id=call_id, holder=self.holder, expires_at=expires))
            return True
        except IntegrityError:
            return False

    def _renew(self) -> None:
        mine = list(self._sessions)
        if not mine:
            return
        with self.db.transaction() as s:
            s.execute(
                update(HoldLease)
                .where(HoldLease.call_id.in_(mine), HoldLease.holder == self.holder)
                .values(expires_at=utcnow() + timedelta(seconds=LEASE_S))
                .execution_options(synchronize_session=False)
            )
            held = set(s.scalars(select(HoldLease.call_id).where(HoldLease.call_id.in_(mine), HoldLease.holder == self.holder)))
        for call_id in set(mine) - held:  # lost the lease (we stalled): the other worker plays it
            log.warning("hold audio for call %s: lease lost; stopping here", call_id)
            self._end(self._sessions.pop(call_id))

    def _release(self, call_ids: list[str]) -> None:
        if not call_ids:
            return
        try:
            with self.db.transaction() as s:
                s.execute(delete(HoldLease).where(HoldLease.call_id.in_(call_ids), HoldLease.holder == self.holder))
        except SQLAlchemyError as err:
            log.warning("could not release hold leases %s (they lapse by themselves): %s", call_ids, err)

    # -- sessions ------------------------------------------------------------------------------
    def _begin(self, call_id: str, room: str, reason: str) -> None:
        session = _Session(call_id, room, reason)
        self._sessions[call_id] = session
        token = self.livekit.hold_token(call_id, room)
        session.future = asyncio.run_coroutine_threadsafe(self._play(session, token), self._loop)
        log.info("hold audio: playing into %s (%s)", room, reason)

    def _end(self, session: _Session) -> None:
        if session.stop is not None:
            self._loop.call_soon_threadsafe(session.stop.set)
        elif session.future is not None:
            session.future.cancel()

    async def _play(self, session: _Session, token: str) -> None:
        session.stop = asyncio.Event()
        room = rtc.Room()
        source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=100)

        listeners: list[asyncio.Task] = []
        caps: list[asyncio.TimerHandle] = []

        def agent_back() -> None:
            if session.stop.is_set():
                return
            session.agent_heard = True
            self._done_waiting.add((session.call_id, session.reason))
            session.stop.set()

        def published(publication, participant) -> None:
            if session.reason == "consult" or not _is_agent(participant) or publication.kind != rtc.TrackKind.KIND_AUDIO:
                return
            publication.set_subscribed(True)
            caps.append(asyncio.get_running_loop().call_later(AGENT_HEARD_CAP_S, agent_back))

        def subscribed(track, publication, participant) -> None:
            if session.stop.is_set():
                return  # leaving: a track subscribed now is not listened to (it may be gone already)
            if session.reason != "consult" and _is_agent(participant) and track.kind == rtc.TrackKind.KIND_AUDIO:
                listeners.append(asyncio.ensure_future(_until_audible(track, agent_back)))

        def rescan() -> None:
            for participant in room.remote_participants.values():
                for publication in participant.track_publications.values():
                    published(publication, participant)

        session.rescan = rescan
        room.on("track_published", published)
        room.on("track_subscribed", subscribed)
        try:
            await asyncio.wait_for(room.connect(self.ws_url, token, rtc.RoomOptions(auto_subscribe=False)), JOIN_TIMEOUT_S)
            rescan()
            track = rtc.LocalAudioTrack.create_audio_track("hold-audio", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await asyncio.wait_for(room.local_participant.publish_track(track, options), JOIN_TIMEOUT_S)
            frames = self.audio.frames()
            while not session.stop.is_set():
                # capture_frame waits while the source's queue is full: real-time pacing.
                await source.capture_frame(rtc.AudioFrame(next(frames).tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES))
            # For an agent who was just heard, fade out rather than cut: their voice reaches the
            # customer a little after it reaches us (the customer's subscription to them is set up
            # after ours), so the music fades under their first words instead of leaving a gap
            # (bench/handover_gap.py). Otherwise (a cancel, the call over) it stops at once.
            steps = int(FADE_OUT_S * SAMPLE_RATE / FRAME_SAMPLES) if session.agent_heard else 0
            for step in range(steps):
                gain = 1.0 - (step + 1) / steps
                faded = (next(frames).astype(np.float32) * gain).astype(np.int16)
                await source.capture_frame(rtc.AudioFrame(faded.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES))
        finally:
            session.stop.set()  # also when leaving on an error: nothing new starts from here
            for pending in (*listeners, *caps):
                pending.cancel()
            # Every listener's end is collected: one whose track went away with the room fails in
            # AudioStream, which is expected here and must not surface as "never retrieved".
            await asyncio.gather(*listeners, return_exceptions=True)
            await room.disconnect()
            await source.aclose()
            log.info("hold audio: left %s%s", session.room, " (an agent is back)" if session.agent_heard else "")

    # -- PostgreSQL: wake on any state change ------------------------------------------------------
    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with self.db.listener() as conn:
                    conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.Error as err:
                log.warning("hold audio listener failed (%s); polling", err)
                self._stop.wait(1.0)


async def _until_audible(track: rtc.Track, then) -> None:
    """Call `then` at the first frame of `track` loud enough to be someone talking."""
    stream = rtc.AudioStream.from_track(track=track, sample_rate=SAMPLE_RATE, num_channels=1)
    try:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            if samples.size and float(np.sqrt(np.mean(samples * samples))) >= AGENT_HEARD_RMS:
                then()
                return
    finally:
        await stream.aclose()


def _is_agent(participant: rtc.RemoteParticipant) -> bool:
    """A browser agent or Agent B's phone leg: someone who talks to the customer for us."""
    role = participant.attributes.get(ATTR_ROLE, "")
    return role_of_identity(participant.identity) == "agent" or role == ROLE_AGENT_B

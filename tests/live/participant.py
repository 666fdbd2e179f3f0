"""A real LiveKit participant for the live rig (the `livekit` real-time SDK).

It joins a room with a token, publishes a microphone track carrying its own pure tone, and
records every remote audio track it is subscribed to, per remote participant identity, so a
test can ask "what did this agent hear from that participant?".
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np
from livekit import rtc

RATE = 48000
FRAME_MS = 10


class ToneParticipant:
    """`muted`: publishes its microphone track muted and sends no audio until `unmute()`, as a
    browser agent who joined with the microphone muted does."""

    def __init__(self, tone_hz: float, amplitude: float = 0.3, *, muted: bool = False, keep_s: float | None = None,
                 frame_ms: int = FRAME_MS, queue_ms: int = 200, publish: bool = True,
                 subscribers: list[str] | None = None):
        """`keep_s`: keep only the last `keep_s` seconds heard from each identity (sample
        positions stay counted from the start), so a long run with many participants
        (bench/capacity.py) does not hold every second it heard; None keeps everything.
        `frame_ms`: the audio frames sent and received; each one is a crossing between Python and
        the SDK's native core, so a run with dozens of participants uses longer ones.
        `queue_ms`: audio queued ahead in the SDK; the tone is produced on the event loop, so a loop
        held up longer than this leaves a gap in what is sent (counted in `underruns`) that a
        browser, capturing on a real-time thread, would not have.
        `publish`: False joins subscribe-only (a supervisor monitoring: its token may not publish).
        `subscribers`: the only identities allowed to subscribe to this participant's tracks, set
        with `set_track_subscription_permissions` before publishing (a whispering supervisor, as
        the API's `whisper_to` says); None leaves LiveKit's default, everyone."""
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self.muted = muted
        self.keep = None if keep_s is None else int(keep_s * RATE)
        self.frame_ms = frame_ms
        self.queue_ms = queue_ms
        self.publish = publish
        self.subscribers = subscribers
        self.underruns = 0
        self.track: rtc.LocalAudioTrack | None = None
        self._unmuted = asyncio.Event()
        self.room = rtc.Room()
        self.heard: dict[str, deque[np.ndarray]] = {}
        self._received: dict[str, int] = {}  # samples heard from each identity, dropped ones included
        self._dropped: dict[str, int] = {}
        self._changed = asyncio.Event()  # set on every room/audio event; waiters re-check
        self._tasks: list[asyncio.Task] = []
        self._streams: list[rtc.AudioStream] = []
        self._source: rtc.AudioSource | None = None
        self.room.on("track_subscribed", self._on_track_subscribed)
        for name in ("participant_connected", "participant_disconnected",
                     "participant_attributes_changed", "track_subscribed"):
            self.room.on(name, lambda *_args: self._changed.set())

    # ------------------------------------------------------------------ lifecycle

    async def join(self, ws_url: str, token: str, timeout: float = 20.0) -> None:
        await asyncio.wait_for(self.room.connect(ws_url, token, rtc.RoomOptions(auto_subscribe=True)),
                               timeout)
        if not self.publish:
            return
        if self.subscribers is not None:
            # Before the track exists, so no subscriber is ever given it (livekit-server applies
            # the stored permissions to each track as it is published).
            self.room.local_participant.set_track_subscription_permissions(
                allow_all_participants=False,
                participant_permissions=[rtc.ParticipantTrackPermission(participant_identity=i, allow_all=True)
                                         for i in self.subscribers])
        self._source = rtc.AudioSource(RATE, 1, queue_size_ms=max(self.queue_ms, 4 * self.frame_ms))
        self.track = rtc.LocalAudioTrack.create_audio_track(f"tone-{self.tone_hz:g}", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        if self.muted:
            self.track.mute()  # before publishing: it is published as muted
        else:
            self._unmuted.set()
        await asyncio.wait_for(self.room.local_participant.publish_track(self.track, options), timeout)
        self._tasks.append(asyncio.create_task(self._publish_tone(), name="tone"))

    async def unmute(self) -> None:
        self.track.unmute()
        self.muted = False
        self._unmuted.set()

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self._streams:
            await stream.aclose()
        await self.room.disconnect()
        if self._source is not None:
            await self._source.aclose()

    # ------------------------------------------------------------------ audio

    async def _publish_tone(self) -> None:
        assert self._source is not None
        n = RATE * self.frame_ms // 1000
        phase = 0
        # A whole-hertz tone repeats every second: one second computed once and sliced is the
        # same signal without a sine per frame (which adds up with dozens of participants).
        table = self._tone(np.arange(RATE + n)) if float(self.tone_hz).is_integer() else None
        await self._unmuted.wait()  # a muted microphone sends nothing at all
        while True:
            if table is not None:
                start = phase % RATE
                samples = table[start:start + n]
            else:
                samples = self._tone(np.arange(n) + phase)
            if phase and self._source.queued_duration <= 0:
                self.underruns += 1  # the queue ran dry before this frame: the far end got a gap
            phase += n
            # capture_frame waits while the source's queue is full: it paces us in real time.
            await self._source.capture_frame(rtc.AudioFrame(samples.tobytes(), RATE, 1, n))

    def _tone(self, positions: np.ndarray) -> np.ndarray:
        return (self.amplitude * 32767 * np.sin(2 * np.pi * self.tone_hz * positions / RATE)).astype(np.int16)

    def visible_identities(self) -> set[str]:
        """Who this participant's room shows it (LiveKit's participant list as its client sees it)."""
        return set(self.room.remote_participants)

    def _on_track_subscribed(self, track: rtc.Track, _pub: rtc.RemoteTrackPublication,
                             participant: rtc.RemoteParticipant) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        stream = rtc.AudioStream.from_track(track=track, sample_rate=RATE, num_channels=1,
                                            frame_size_ms=None if self.frame_ms == FRAME_MS else self.frame_ms)
        self._streams.append(stream)
        self._tasks.append(asyncio.create_task(self._record(stream, participant.identity),
                                               name=f"record-{participant.identity}"))

    async def _record(self, stream: rtc.AudioStream, identity: str) -> None:
        chunks = self.heard.setdefault(identity, deque())
        async for event in stream:
            chunk = np.frombuffer(event.frame.data, dtype=np.int16).copy()
            chunks.append(chunk)
            self._received[identity] = self._received.get(identity, 0) + chunk.size
            if self.keep is not None:
                while self._received[identity] - self._dropped.get(identity, 0) - chunks[0].size >= self.keep:
                    self._dropped[identity] = self._dropped.get(identity, 0) + chunks.popleft().size
            self._changed.set()

    def samples_from(self, identity: str) -> int:
        """How many samples were heard from `identity` so far (a position in its audio)."""
        return self._received.get(identity, 0)

    def audio_from(self, identity: str, start: int = 0) -> np.ndarray:
        """What was heard from `identity` from sample position `start` on."""
        dropped = self._dropped.get(identity, 0)
        if start < dropped:
            raise ValueError(f"samples before {dropped} from {identity} were dropped (keep_s)")
        chunks = self.heard.get(identity, ())
        data = np.concatenate(list(chunks)) if chunks else np.zeros(0, dtype=np.int16)
        return data[start - dropped:]

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[], object], timeout: float, what: str):
        """Wait (on room/audio events, not by sleeping) until predicate() is truthy."""
        async def _wait():
            while True:
                value = predicate()
                if value:
                    return value
                # No await between the check and clear(): no event can slip in between.
                self._changed.clear()
                await self._changed.wait()
        try:
            return await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"participant {self.room.local_participant.identity}: "
                                 f"no {what} after {timeout:.0f}s") from None

    async def wait_participant(self, predicate: Callable[[rtc.RemoteParticipant], bool],
                               timeout: float, what: str) -> rtc.RemoteParticipant:
        def find():
            return next((p for p in self.room.remote_participants.values() if predicate(p)), None)
        return await self.wait_for(find, timeout, what)

    async def record(self, identity: str, seconds: float, timeout: float) -> np.ndarray:
        """The next `seconds` of audio heard from `identity`."""
        start = self.samples_from(identity)
        need = int(seconds * RATE)
        await self.wait_for(lambda: self.samples_from(identity) - start >= need, timeout,
                            f"{seconds:g}s of audio from {identity}")
        return self.audio_from(identity, start)[:need]

"""Where Twilio reaches us: the webhook paths (the blueprint registers exactly these) and the
absolute URLs built from them.

Twilio needs absolute URLs for calls it places and for transcription callbacks, and it signs the
exact URL it requests, so every URL we hand to Twilio is built here from one base: PUBLIC_BASE_URL
when set, else the URL the current webhook arrived on.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

PREFIX = "/twilio"
VOICE = "/voice"
STATUS = "/status"
DIAL_ACTION = "/dial-action"
TRANSCRIPTION = "/transcription"
# `<Dial recordingStatusCallback>` on the caller's bridge (RECORDING_ENABLED).
RECORDING = "/recording"
TRANSFER_ANSWER = "/transfer/<transfer_id>/answer"
TRANSFER_GATHER = "/transfer/<transfer_id>/gather"
TRANSFER_STATUS = "/transfer/<transfer_id>/status"
# Agent B's <Dial><Sip> (into the transfer room, and after the hand-over into the customer's room)
# reports here how it ended; `room=call` marks the second one.
TRANSFER_BRIDGE = "/transfer/<transfer_id>/bridge"
BRIDGE_ROOM_FLAG = "room"

# Query flag on the hold loop's redirect, so the caller who waited is greeted differently.
HELD_FLAG = "held"
# The hold music Twilio plays to queued callers (`<Play>`), served by app.pages.
HOLD_MUSIC_PATH = "/media/hold-music.wav"


@dataclass(frozen=True)
class WebhookUrls:
    base: str

    def _url(self, path: str, transfer_id: str | None = None) -> str:
        if transfer_id is not None:
            path = path.replace("<transfer_id>", quote(transfer_id, safe=""))
        return self.base.rstrip("/") + PREFIX + path

    @property
    def voice(self) -> str:
        return self._url(VOICE)

    @property
    def voice_after_hold(self) -> str:
        return self._url(VOICE) + "?" + HELD_FLAG + "=1"

    @property
    def hold_music(self) -> str:
        return self.base.rstrip("/") + HOLD_MUSIC_PATH

    @property
    def status(self) -> str:
        return self._url(STATUS)

    @property
    def dial_action(self) -> str:
        return self._url(DIAL_ACTION)

    @property
    def transcription(self) -> str:
        return self._url(TRANSCRIPTION)

    @property
    def recording(self) -> str:
        return self._url(RECORDING)

    def transfer_answer(self, transfer_id: str) -> str:
        return self._url(TRANSFER_ANSWER, transfer_id)

    def transfer_gather(self, transfer_id: str) -> str:
        return self._url(TRANSFER_GATHER, transfer_id)

    def transfer_status(self, transfer_id: str) -> str:
        return self._url(TRANSFER_STATUS, transfer_id)

    def transfer_bridge(self, transfer_id: str, *, into_call: bool = False) -> str:
        url = self._url(TRANSFER_BRIDGE, transfer_id)
        return url + "?" + BRIDGE_ROOM_FLAG + "=call" if into_call else url

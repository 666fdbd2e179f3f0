"""A local stand-in for LiveKit's server API that speaks the real wire format.

It is an HTTP server on 127.0.0.1 that accepts Twirp calls exactly as `livekit-api` sends them
(`POST /twirp/livekit.RoomService/<Method>`, protobuf bodies), verifies the bearer JWT and its
grants with `TokenVerifier`, keeps rooms and participants, answers protobuf, and reports errors
as Twirp JSON (`{"code": ..., "msg": ...}`). Tests drive the app's real gateway against it, so a
wrong request, a missing grant or a mishandled error fails the test.

It can also play LiveKit's side of webhooks: `webhook()` builds a signed `WebhookEvent` body and
Authorization header the way livekit-server does.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from google.protobuf.json_format import MessageToJson
from livekit import api as lk
from livekit.protocol import models
from livekit.protocol import room as room_proto
from livekit.protocol import webhook as webhook_proto

from tests.doubles.http import DoubleHandler


@dataclass
class Recorded:
    method: str
    request: object
    identity: str
    grants: lk.VideoGrants


@dataclass
class RoomState:
    room: models.Room
    participants: dict[str, models.ParticipantInfo] = field(default_factory=dict)


class TwirpFailure(Exception):
    def __init__(self, status: int, code: str, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


# method -> (request class, grant check)
def _needs_create(g: lk.VideoGrants, req) -> bool:
    return bool(g.room_create)


def _needs_list(g: lk.VideoGrants, req) -> bool:
    return bool(g.room_list)


def _needs_admin(g: lk.VideoGrants, req) -> bool:
    return bool(g.room_admin) and g.room == req.room


METHODS = {
    "CreateRoom": (room_proto.CreateRoomRequest, _needs_create),
    "DeleteRoom": (room_proto.DeleteRoomRequest, _needs_create),
    "ListRooms": (room_proto.ListRoomsRequest, _needs_list),
    "ListParticipants": (room_proto.ListParticipantsRequest, _needs_admin),
    "GetParticipant": (room_proto.RoomParticipantIdentity, _needs_admin),
    "RemoveParticipant": (room_proto.RoomParticipantIdentity, _needs_admin),
}


class LiveKitTwirpDouble:
    def __init__(self, api_key: str = "devkey", api_secret: str = "double-secret-of-at-least-32-bytes!!"):
        self.api_key = api_key
        self.api_secret = api_secret
        self.verifier = lk.TokenVerifier(api_key, api_secret)
        self.rooms: dict[str, RoomState] = {}
        self.requests: list[Recorded] = []
        self._failures: dict[str, list[TwirpFailure]] = {}
        self._hang: threading.Event | None = None
        self._dropping = False
        self.delay_s = 0.0  # every answer this much late: a slow LiveKit (benchmarks)
        self.hung: list[str] = []  # methods that arrived while hanging
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="livekit-double", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LiveKitTwirpDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self.release()
        with self._lock:
            self.rooms.clear()
            self.requests.clear()
            self._failures.clear()
            self.hung.clear()

    def hang(self) -> None:
        """From now on every request waits (a LiveKit that accepts connections but never answers)
        until `release()`; the app's own timeout decides how long it waits."""
        self._hang = threading.Event()

    def release(self, *, drop: bool = False) -> None:
        """Answer the waiting requests; with `drop`, they fail (503) without taking effect, as
        requests LiveKit never received would (their sender may be long gone)."""
        self._dropping = drop
        if self._hang is not None:
            self._hang.set()
        self._hang = None

    # -- scripting -----------------------------------------------------------------------------
    def fail_next(self, method: str, status: int = 500, code: str = "internal", msg: str = "scripted failure") -> None:
        with self._lock:
            self._failures.setdefault(method, []).append(TwirpFailure(status, code, msg))

    def join(self, room: str, identity: str, *, name: str = "", kind: int = models.ParticipantInfo.Kind.STANDARD, attributes: dict | None = None) -> models.ParticipantInfo:
        """Simulate a participant joining (what a browser or the SIP bridge would cause)."""
        with self._lock:
            state = self.rooms[room]
            info = models.ParticipantInfo(
                sid=f"PA_{secrets.token_hex(6)}",
                identity=identity,
                name=name,
                kind=kind,
                state=models.ParticipantInfo.State.ACTIVE,
                joined_at=int(time.time()),
                attributes=attributes or {},
            )
            state.participants[identity] = info
            state.room.num_participants = len(state.participants)
            return info

    def calls(self, method: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method]

    # -- webhooks (LiveKit -> app) -------------------------------------------------------------
    def webhook(self, event: str, *, room: str, participant: models.ParticipantInfo | None = None, event_id: str | None = None) -> tuple[str, str]:
        """A (body, Authorization header) pair signed exactly as livekit-server signs webhooks."""
        message = webhook_proto.WebhookEvent(event=event, id=event_id or f"EV_{secrets.token_hex(6)}", created_at=int(time.time()))
        with self._lock:
            state = self.rooms.get(room)
            message.room.CopyFrom(state.room if state else models.Room(name=room))
        if participant is not None:
            message.participant.CopyFrom(participant)
        body = MessageToJson(message)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        token = lk.AccessToken(self.api_key, self.api_secret).with_sha256(digest).to_jwt()
        return body, token

    # -- request handling ----------------------------------------------------------------------
    def _handle(self, method: str, auth: str | None, content_type: str | None, body: bytes) -> bytes:
        if self.delay_s:
            time.sleep(self.delay_s)
        hang = self._hang
        if hang is not None:
            with self._lock:
                self.hung.append(method)
            hang.wait()
            if self._dropping:
                raise TwirpFailure(503, "unavailable", "dropped while hanging")
        if method not in METHODS:
            raise TwirpFailure(404, "bad_route", f"no handler for {method}")
        if content_type != "application/protobuf":
            raise TwirpFailure(400, "malformed", f"unexpected content type {content_type}")
        if not auth or not auth.startswith("Bearer "):
            raise TwirpFailure(401, "unauthenticated", "missing bearer token")
        try:
            claims = self.verifier.verify(auth[len("Bearer "):])
        except Exception as err:  # any JWT problem is an authentication failure, as on the server
            raise TwirpFailure(401, "unauthenticated", f"invalid token: {err}") from err
        request_class, allowed = METHODS[method]
        request = request_class.FromString(body)
        grants = claims.video or lk.VideoGrants()
        if not allowed(grants, request):
            raise TwirpFailure(403, "permission_denied", f"token lacks the grant for {method}")
        with self._lock:
            self.requests.append(Recorded(method, request, claims.identity, grants))
            failures = self._failures.get(method)
            if failures:
                raise failures.pop(0)
            return getattr(self, f"_do_{method}")(request).SerializeToString()

    def _do_CreateRoom(self, req):
        if req.name not in self.rooms:
            self.rooms[req.name] = RoomState(
                models.Room(
                    sid=f"RM_{secrets.token_hex(6)}",
                    name=req.name,
                    empty_timeout=req.empty_timeout,
                    departure_timeout=req.departure_timeout,
                    max_participants=req.max_participants,
                    metadata=req.metadata,
                    creation_time=int(time.time()),
                )
            )
        return self.rooms[req.name].room

    def _do_DeleteRoom(self, req):
        if self.rooms.pop(req.room, None) is None:
            raise TwirpFailure(404, "not_found", "requested room does not exist")
        return room_proto.DeleteRoomResponse()

    def _do_ListRooms(self, req):
        names = set(req.names)
        return room_proto.ListRoomsResponse(rooms=[s.room for n, s in self.rooms.items() if not names or n in names])

    def _room(self, name: str) -> RoomState:
        state = self.rooms.get(name)
        if state is None:
            raise TwirpFailure(404, "not_found", "requested room does not exist")
        return state

    def _do_ListParticipants(self, req):
        return room_proto.ListParticipantsResponse(participants=list(self._room(req.room).participants.values()))

    def _do_GetParticipant(self, req):
        participant = self._room(req.room).participants.get(req.identity)
        if participant is None:
            raise TwirpFailure(404, "not_found", "participant does not exist")
        return participant

    def _do_RemoveParticipant(self, req):
        state = self._room(req.room)
        if state.participants.pop(req.identity, None) is None:
            raise TwirpFailure(404, "not_found", "participant does not exist")
        return room_proto.RemoveParticipantResponse()

    def _handler_class(self):
        double = self

        class Handler(DoubleHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                prefix = "/twirp/livekit.RoomService/"
                body = self.read_body()
                try:
                    if not self.path.startswith(prefix):
                        raise TwirpFailure(404, "bad_route", f"no route {self.path}")
                    payload = double._handle(self.path[len(prefix):], self.headers.get("Authorization"), self.headers.get("Content-Type"), body)
                    self.send(200, "application/protobuf", payload)
                except TwirpFailure as fail:
                    self.send(fail.status, "application/json", json.dumps({"code": fail.code, "msg": fail.msg}).encode())

        return Handler

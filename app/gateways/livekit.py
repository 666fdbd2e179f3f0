"""The one door to LiveKit: a synchronous facade over the async `livekit-api`.

`LiveKitAPI` owns an aiohttp session, so it must be created inside a running event loop and must
not be used from another loop. We keep one event loop on a background thread per process and
create the client on that loop the first time it is needed. After a fork (gunicorn --preload)
the child sees a different pid and builds its own loop and client; the parent's are never used
across the fork.

Tokens are minted here too, with the least privilege each role needs: one room, a short TTL, and
a customer token that can never open a transfer room. The names in them (identities, attributes,
roles, room prefixes) are the wire contract's, app.protocol.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import jwt
from google.protobuf.json_format import ParseError
from jwt.warnings import InsecureKeyLengthWarning
from livekit import api as lk
from livekit.protocol import models as lk_models
from livekit.protocol import room as room_proto
from livekit.protocol.webhook import WebhookEvent

from app import metrics
from app.errors import BadRequest, InvalidWebhook, LiveKitFailed, LiveKitUnavailable
from app.protocol import (
    ATTR_CALL,
    ATTR_ROLE,
    ATTR_SUPERVISION,
    ROLE_CUSTOMER,
    ROLE_HOLD,
    ROLE_SUPERVISOR,
    SUPERVISION_MODES,
    agent_identity,
    customer_identity,
    hold_identity,
    room_kind,
    supervisor_identity,
)

log = logging.getLogger(__name__)

DEV_SECRET = "secret"
# How long LiveKit keeps a room after its last participant left, at least. Calls raise it to the
# customer's reconnect grace, so a refreshing web customer finds their room still there.
MIN_DEPARTURE_TIMEOUT_S = 20


@dataclass(frozen=True)
class Participant:
    identity: str
    name: str
    kind: str
    attributes: dict


class _LoopThread:
    """An event loop on a daemon thread, rebuilt in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self.state: dict[str, Any] = {}
        # A forked child must never finalise the parent's loop or client: their epoll instance is
        # shared across fork, and closing a transport in the child would unregister the parent's
        # sockets from it (the parent's next request then hangs). So the child just keeps them.
        self._inherited: list[tuple] = []

    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None and self._pid == os.getpid():
            return self._loop
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                if self._loop is not None:
                    self._inherited.append((self._loop, self.state))
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="livekit-loop", daemon=True).start()
                self._loop, self._pid, self.state = loop, os.getpid(), {}
            return self._loop

    def owns_loop(self) -> bool:
        return self._loop is not None and self._pid == os.getpid()

    def run(self, coro: Awaitable, timeout: float):
        future = asyncio.run_coroutine_threadsafe(coro, self.loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise


class LiveKitGateway:
    def __init__(
        self,
        *,
        http_url: str,
        ws_url: str,
        api_key: str,
        api_secret: str,
        timeout_s: float = 5.0,
        token_ttl_s: int = 3600,
        empty_timeout_s: int = 300,
        departure_timeout_s: int = MIN_DEPARTURE_TIMEOUT_S,
        api_factory: Callable[[], Any] | None = None,
    ):
        self.http_url = http_url
        self.ws_url = ws_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.timeout_s = timeout_s
        self.token_ttl = timedelta(seconds=token_ttl_s)
        self.empty_timeout_s = empty_timeout_s
        self.departure_timeout_s = departure_timeout_s
        self._webhooks = lk.WebhookReceiver(lk.TokenVerifier(api_key, api_secret))
        self._api_factory = api_factory or self._default_api
        self._runner = _LoopThread()
        if api_secret == DEV_SECRET:
            # `livekit-server --dev` only accepts its short built-in secret; PyJWT would warn on
            # every token. Production refuses this secret outright (app.config).
            warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)

    @classmethod
    def from_config(cls, settings, api_factory: Callable[[], Any] | None = None) -> LiveKitGateway:
        return cls(
            http_url=settings.LIVEKIT_HTTP_URL,
            ws_url=settings.LIVEKIT_WS_URL,
            api_key=settings.LIVEKIT_API_KEY,
            api_secret=settings.LIVEKIT_API_SECRET,
            timeout_s=settings.LIVEKIT_TIMEOUT_S,
            token_ttl_s=settings.LIVEKIT_TOKEN_TTL_S,
            empty_timeout_s=settings.LIVEKIT_ROOM_EMPTY_TIMEOUT_S,
            departure_timeout_s=max(MIN_DEPARTURE_TIMEOUT_S, settings.CUSTOMER_RECONNECT_GRACE_S),
            api_factory=api_factory,
        )

    def _default_api(self):
        # failover=False: region failover is a LiveKit Cloud feature; against a self-hosted
        # server it only adds retries to a request the caller is waiting on.
        return lk.LiveKitAPI(
            self.http_url,
            self.api_key,
            self.api_secret,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            failover=False,
        )

    # -- plumbing --------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[Any], Awaitable]):
        async def run():
            client = self._runner.state.get("api")
            if client is None:
                client = self._runner.state["api"] = self._api_factory()
            return await fn(client)

        try:
            return self._runner.run(run(), self.timeout_s + 1)
        except lk.ServerError as err:
            if err.code != "not_found":  # a room or participant already gone: callers take that as done
                metrics.external_error("livekit", "unavailable" if err.code == "unavailable" else metrics.http_error_code(err.status))
            if err.status >= 500 or err.code == "unavailable":
                raise LiveKitUnavailable(
                    f"LiveKit at {self.http_url} failed to {what} ({err.code}: {err.message or 'no message'})."
                ) from err
            raise LiveKitFailed(f"LiveKit refused to {what}: {err.code} {err.message}".strip(), code="livekit_error") from err
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            metrics.external_error("livekit", "timeout" if isinstance(err, (TimeoutError, aiohttp.ServerTimeoutError)) else "unavailable")
            raise LiveKitUnavailable(
                f"LiveKit at {self.http_url} is unreachable (could not {what}: {type(err).__name__}). "
                "Check LIVEKIT_HTTP_URL and that the server is running."
            ) from err

    def close(self) -> None:
        """Close this process's HTTP session (on its own loop); a later call opens a new one."""
        if not self._runner.owns_loop():
            return
        client = self._runner.state.pop("api", None)
        if client is not None and hasattr(client, "aclose"):
            self._runner.run(client.aclose(), self.timeout_s)

    # -- rooms -----------------------------------------------------------------------------
    def create_room(self, name: str, *, max_participants: int = 0, metadata: dict | None = None) -> None:
        request = room_proto.CreateRoomRequest(
            name=name,
            empty_timeout=self.empty_timeout_s,
            departure_timeout=self.departure_timeout_s,
            max_participants=max_participants,
            metadata=json.dumps(metadata or {}),
        )
        self._call("create a room", lambda c: c.room.create_room(request))

    def delete_room(self, name: str) -> bool:
        """Delete a room; False if LiveKit no longer has it (already gone is fine)."""
        try:
            self._call("delete a room", lambda c: c.room.delete_room(room_proto.DeleteRoomRequest(room=name)))
        except LiveKitFailed as err:
            if isinstance(err.__cause__, lk.ServerError) and err.__cause__.code == "not_found":
                return False
            raise
        return True

    def list_rooms(self, names: list[str] | None = None) -> list[str]:
        request = room_proto.ListRoomsRequest(names=names or [])
        response = self._call("list rooms", lambda c: c.room.list_rooms(request))
        return [r.name for r in response.rooms]

    def list_participants(self, room: str) -> list[Participant]:
        request = room_proto.ListParticipantsRequest(room=room)
        response = self._call("list participants", lambda c: c.room.list_participants(request))
        return [
            Participant(p.identity, p.name, lk_models.ParticipantInfo.Kind.Name(p.kind).lower(), dict(p.attributes))
            for p in response.participants
        ]

    def remove_participant(self, room: str, identity: str) -> bool:
        request = room_proto.RoomParticipantIdentity(room=room, identity=identity)
        try:
            self._call("remove a participant", lambda c: c.room.remove_participant(request))
        except LiveKitFailed as err:
            if isinstance(err.__cause__, lk.ServerError) and err.__cause__.code == "not_found":
                return False
            raise
        return True

    def discard_room(self, name: str) -> None:
        """Best-effort delete for cleanup paths: LiveKit's empty-room timeout reaps it anyway,
        so a failure is logged and must not turn a finished action into an error."""
        try:
            self.delete_room(name)
        except (LiveKitUnavailable, LiveKitFailed) as err:
            log.warning("could not delete LiveKit room %s: %s", name, err.message)

    def discard_participant(self, room: str, identity: str) -> None:
        """Best-effort removal: the participant may already have left."""
        try:
            self.remove_participant(room, identity)
        except (LiveKitUnavailable, LiveKitFailed) as err:
            log.warning("could not remove %s from %s: %s", identity, room, err.message)

    def sip(self, what: str, fn: Callable[[Any], Awaitable]):
        """Run `fn(client.sip)` (livekit-api's SipService) with the usual errors; for
        app.gateways.livekit_sip."""
        return self._call(what, lambda c: fn(c.sip))

    def ping(self) -> None:
        self._call("list rooms", lambda c: c.room.list_rooms(room_proto.ListRoomsRequest(names=["__health__"])))

    # -- webhooks ----------------------------------------------------------------------------
    def verify_webhook(self, body: str, authorization: str) -> WebhookEvent:
        """A webhook livekit-server signed with our key, parsed; InvalidWebhook otherwise.

        livekit-server sends the JWT itself as the Authorization header (no `Bearer`); its
        `sha256` claim is the hash of the exact body, so a tampered body fails as surely as a
        forged token. A `Bearer` prefix is refused by name so the mistake is obvious in the log.
        """
        if not authorization:
            raise InvalidWebhook("The LiveKit webhook has no Authorization header.")
        if authorization[:7].lower() == "bearer ":
            raise InvalidWebhook("LiveKit webhooks carry the raw token in Authorization, without 'Bearer'.")
        try:
            return self._webhooks.receive(body, authorization)
        except ParseError as err:
            raise BadRequest(f"The LiveKit webhook body is signed but not a WebhookEvent: {err}", code="invalid_webhook_body") from err
        except jwt.PyJWTError as err:
            raise InvalidWebhook(f"The LiveKit webhook token is not valid: {err}") from err
        except Exception as err:  # WebhookReceiver raises bare Exception for a missing or wrong body hash
            raise InvalidWebhook(f"The LiveKit webhook signature does not match its body: {err}") from err

    # -- tokens ----------------------------------------------------------------------------
    def _token(self, identity: str, name: str, room: str, attributes: dict[str, str]) -> str:
        grants = lk.VideoGrants(
            room_join=True,
            room=room,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=False,  # nothing in the product sends data messages; least privilege
            can_publish_sources=["microphone"],
            can_update_own_metadata=False,
        )
        return (
            lk.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_kind("standard")
            .with_attributes(attributes)
            .with_grants(grants)
            .with_ttl(self.token_ttl)
            .to_jwt()
        )

    def customer_token(self, call_id: str, call_room: str, name: str) -> str:
        if room_kind(call_room) != "call":
            raise ValueError("customer tokens are only ever minted for the customer's own call room")
        return self._token(customer_identity(call_id), name, call_room, {ATTR_ROLE: ROLE_CUSTOMER, ATTR_CALL: call_id})

    def hold_token(self, call_id: str, call_room: str) -> str:
        """For the worker's hold audio: publishes one microphone-source track into the customer's
        room; it subscribes only to an agent arriving (to stop the music as they start talking),
        never to the customer (app.worker.hold)."""
        if room_kind(call_room) != "call":
            raise ValueError("hold audio only ever plays into a customer's call room")
        grants = lk.VideoGrants(
            room_join=True, room=call_room, can_publish=True, can_subscribe=True, can_publish_data=False,
            can_publish_sources=["microphone"], can_update_own_metadata=False,
        )
        return (
            lk.AccessToken(self.api_key, self.api_secret)
            .with_identity(hold_identity(call_id))
            .with_name("Hold music")
            .with_kind("standard")
            .with_attributes({ATTR_ROLE: ROLE_HOLD, ATTR_CALL: call_id})
            .with_grants(grants)
            .with_ttl(self.token_ttl)
            .to_jwt()
        )

    def agent_token(self, agent_id: str, name: str, room: str, call_id: str, role: str) -> str:
        if room_kind(room) is None:
            raise ValueError(f"not a warm-transfer room: {room!r}")
        return self._token(agent_identity(agent_id), name, room, {ATTR_ROLE: role, ATTR_CALL: call_id})

    def supervisor_token(self, agent_id: str, name: str, call_room: str, call_id: str, mode: str, supervision_id: str) -> str:
        """A supervisor's token for a customer's room, as `supervisor-<agent id>` (never the
        `agent-` identity, so the webhooks never take it for the agent's own arrival or exit).

        - monitor: hidden and subscribe-only. livekit-server sends a hidden participant's
          updates to that participant alone (pkg/rtc/room.go `broadcastParticipantState`: "hidden
          participant updates are sent only to the hidden participant itself") and leaves it out
          of everyone else's participant list (`GetOtherParticipantInfo`: `!op.Hidden()`), and
          with can_publish False it has nothing anyone could hear.
        - whisper: publishes its microphone, visible (a subscriber must see a track to subscribe
          to it). That only the agent hears it is the publisher's track subscription
          permissions, which the supervisor's client sets before publishing
          (app.services.supervision, the `whisper_to` of the answer).
        - barge: a participant like an agent.
        No mode may send data messages or change its own metadata.
        """
        if room_kind(call_room) != "call":
            raise ValueError("supervisors only ever join a customer's call room")
        if mode not in SUPERVISION_MODES:
            raise ValueError(f"unknown supervision mode {mode!r}")
        monitor = mode == "monitor"
        grants = lk.VideoGrants(
            room_join=True,
            room=call_room,
            can_subscribe=True,
            can_publish=not monitor,
            can_publish_data=False,
            can_publish_sources=[] if monitor else ["microphone"],
            can_update_own_metadata=False,
            hidden=monitor,
        )
        return (
            lk.AccessToken(self.api_key, self.api_secret)
            .with_identity(supervisor_identity(agent_id))
            .with_name(name)
            .with_kind("standard")
            .with_attributes({ATTR_ROLE: ROLE_SUPERVISOR, ATTR_CALL: call_id, ATTR_SUPERVISION: supervision_id})
            .with_grants(grants)
            .with_ttl(self.token_ttl)
            .to_jwt()
        )

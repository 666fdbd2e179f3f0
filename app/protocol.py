"""The wire contract: every name that crosses a process boundary, in one place (docs/architecture.md §9).

What LiveKit, Twilio and the browser see of us is plain strings: room names, participant
identities, token attributes, SIP headers, event types and their payload keys. Each is defined
here once; the services, gateways, TwiML builders and (through the generated
`static/js/lib/protocol.js`, `flask --app app protocol-js`) the browser all take them from here,
so a name cannot change on one side only.

Pure data and functions: no Flask, no SQLAlchemy, nothing that does I/O. It is the lowest layer:
`twiml` and `app.gateways` import it, never the other way round. The status sets come from the
state machines (`app.states`, as pure as this) rather than being copied.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from app import states

# Twilio's SIP-out edges (`;edge=` in the SIP URI; "Receiving SIP" / `<Sip>` docs): without
# one, Twilio sends SIP from its North America (Virginia) edge. Here, not in twiml.sip, because
# the configuration checks them and twiml.sip itself imports this module.
SIP_EDGES = ("ashburn", "san-jose", "dublin", "frankfurt", "singapore", "tokyo", "sao-paulo", "sydney")

# -- rooms -------------------------------------------------------------------------------------
# `call_<call id>`: the customer's room. `transfer_<call id>_<suffix>`: the agents' private
# consult, one per transfer (the suffix tells two transfers of one call apart). Both are used as
# the SIP user part (twiml.sip), so they hold only SIP-unreserved characters.
CALL_ROOM_PREFIX = "call_"
TRANSFER_ROOM_PREFIX = "transfer_"
ROOM_PREFIX = {"call": CALL_ROOM_PREFIX, "transfer": TRANSFER_ROOM_PREFIX}
_ROOM_PART = re.compile(r"^[A-Za-z0-9.-]+\Z")  # no `_`: it separates the parts of a transfer room
_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


@dataclass(frozen=True)
class Room:
    """A parsed room name: `kind` is "call" or "transfer"; `suffix` only for a transfer room."""

    kind: str
    call_id: str
    suffix: str | None = None


def call_room(call_id: str) -> str:
    if not isinstance(call_id, str) or not _CALL_ID.match(call_id):
        raise ValueError(f"invalid call id for a room name: {call_id!r}")
    return CALL_ROOM_PREFIX + call_id


def transfer_room(call_id: str, suffix: str) -> str:
    if not isinstance(suffix, str) or not _ROOM_PART.match(suffix):
        raise ValueError(f"invalid transfer room suffix: {suffix!r}")
    return TRANSFER_ROOM_PREFIX + call_room(call_id)[len(CALL_ROOM_PREFIX):] + "_" + suffix


def room_kind(name: str) -> str | None:
    """"call", "transfer" or None, by prefix alone: cheap routing of a webhook (the room row
    is then looked up by its full name, so a name that only looks like ours finds nothing)."""
    if isinstance(name, str):
        for kind, prefix in ROOM_PREFIX.items():
            if name.startswith(prefix):
                return kind
    return None


def parse_room(name: str) -> Room | None:
    """The room's kind and call id, or None for a name we never build."""
    kind = room_kind(name)
    if kind == "call":
        call_id = name[len(CALL_ROOM_PREFIX):]
        return Room("call", call_id) if _CALL_ID.match(call_id) else None
    if kind == "transfer":
        call_id, sep, suffix = name[len(TRANSFER_ROOM_PREFIX):].rpartition("_")
        if sep and _CALL_ID.match(call_id) and _ROOM_PART.match(suffix):
            return Room("transfer", call_id, suffix)
    return None


# -- participants ------------------------------------------------------------------------------
# Identities in the tokens the app mints. A SIP participant's identity is LiveKit's own
# (`sip_<number>`) and says nothing: SIP legs are recognised by their attributes instead.
# `supervisor-<agent id>`: an agent with the supervisor role monitoring, whispering to or barging
# into a call (app.services.supervision). Its own prefix, so LiveKit's webhooks never take a
# supervisor's arrival or departure for the agent's (or the customer's) own.
IDENTITY_PREFIX = {"customer": "customer-", "agent": "agent-", "hold": "hold-", "supervisor": "supervisor-"}


def customer_identity(call_id: str) -> str:
    return IDENTITY_PREFIX["customer"] + call_id


def agent_identity(agent_id: str) -> str:
    return IDENTITY_PREFIX["agent"] + agent_id


def hold_identity(call_id: str) -> str:
    """The worker's hold-audio participant in the customer's room."""
    return IDENTITY_PREFIX["hold"] + call_id


def supervisor_identity(agent_id: str) -> str:
    """A supervisor in a customer's room (any mode): never `agent-<id>`, even for the same person."""
    return IDENTITY_PREFIX["supervisor"] + agent_id


def parse_identity(identity: str) -> tuple[str, str] | None:
    """(kind, id) for an identity we mint: ("agent" | "supervisor", agent id), ("customer" | "hold", call id)."""
    if isinstance(identity, str):
        for kind, prefix in IDENTITY_PREFIX.items():
            if identity.startswith(prefix) and len(identity) > len(prefix):
                return kind, identity[len(prefix):]
    return None


def role_of_identity(identity: str) -> str | None:
    """"customer", "agent", "hold" or "supervisor" for an identity we mint, else None (the browser's roleOfIdentity)."""
    minted = parse_identity(identity)
    return minted[0] if minted else None


# Participant attributes that say who someone is: set in the tokens we mint, and for SIP legs
# mapped from our SIP headers by the inbound trunk (app.gateways.livekit_sip).
ATTR_CALL = "wt_call"
ATTR_ROLE = "wt_role"
ATTR_TRANSFER = "wt_transfer"
# A supervisor's token names the supervision it is for, so the participant_left of an earlier
# session (same identity, replaced by a new mode) ends that one and not the new one.
ATTR_SUPERVISION = "wt_supervision"  # in tokens only: no SIP header maps to it
ATTR = {"call": ATTR_CALL, "role": ATTR_ROLE, "transfer": ATTR_TRANSFER}

# Values of `wt_role` (and of `role` in the room grants the API answers with). An agent's role
# in the customer's room is "owner", or "leaving" once the call is someone else's.
ROLE_CUSTOMER = "customer"
ROLE_HOLD = "hold"
ROLE_AGENT_A = "agent_a"
ROLE_AGENT_B = "agent_b"
ROLE_OWNER = "owner"
ROLE_LEAVING = "leaving"
ROLE_SUPERVISOR = "supervisor"
ROLE = {
    "customer": ROLE_CUSTOMER, "hold": ROLE_HOLD, "agent_a": ROLE_AGENT_A, "agent_b": ROLE_AGENT_B,
    "owner": ROLE_OWNER, "leaving": ROLE_LEAVING, "supervisor": ROLE_SUPERVISOR,
}

# An account's role (`agents.role`, `flask --app app agents add … --role`): supervisors take calls
# like anyone, and may also supervise other agents' calls (POST /api/supervise).
ACCOUNT_ROLES = ("agent", "supervisor")
# How a supervisor is in a call: `monitor` hidden and subscribe-only (nobody sees or hears them);
# `whisper` heard by the agent alone (track subscription permissions); `barge` a normal participant.
SUPERVISION_MODES = ("monitor", "whisper", "barge")

# Our metadata on Twilio's SIP INVITE into LiveKit (twiml.sip puts them in the SIP URI), and the
# participant attribute LiveKit's inbound trunk turns each into.
HEADER_CALL = "X-WT-Call"
HEADER_ROLE = "X-WT-Role"
HEADER_TRANSFER = "X-WT-Transfer"
HEADERS_TO_ATTRIBUTES = {HEADER_CALL: ATTR_CALL, HEADER_ROLE: ATTR_ROLE, HEADER_TRANSFER: ATTR_TRANSFER}

# -- phone numbers -----------------------------------------------------------------------------
# What the browser accepts before asking the server (which parses numbers properly,
# app.services.phone_numbers): "+", a non-zero digit, 7 to 15 digits in all.
E164_PATTERN = r"^\+[1-9]\d{6,14}$"

# -- statuses the browser acts on --------------------------------------------------------------
CALL_FINAL_STATUSES = tuple(sorted(str(s) for s in states.CALL_TERMINAL))
TRANSFER_OPEN_STATUSES = tuple(str(s) for s in states.TransferStatus if s in states.TRANSFER_OPEN)
TRANSFER_STATUSES = tuple(str(s) for s in states.TransferStatus)

# How a transfer that ended went, inside a sentence ("The transfer was …"): the `outcome` of
# transfer_declined / _cancelled / _failed events (every final status but "completed", which has
# an event of its own). tests/unit/test_protocol.py holds both tables to app.states.
TRANSFER_OUTCOME_TEXT: dict[str, str] = {
    "declined": "declined",
    "cancelled": "cancelled",
    "no_answer": "not answered",
    "busy": "busy",
    "failed": "failed",
    "caller_left": "ended: the caller hung up",
    "agent_a_left": "ended: Agent A left",
}
# Every transfer status as a short label (the console's transfer status line).
TRANSFER_STATUS_LABEL: dict[str, str] = {
    "pending": "Starting…",
    "ringing": "Ringing",
    "briefing": "Briefing",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "declined": "Declined",
    "no_answer": "No answer",
    "busy": "Busy",
    "failed": "Failed",
    "caller_left": "Caller left",
    "agent_a_left": "Agent A left",
}


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventSpec:
    """The payload keys of one event type: always sent, and sent only in some cases."""

    keys: frozenset[str]
    optional: frozenset[str] = frozenset()

    @property
    def all_keys(self) -> frozenset[str]:
        return self.keys | self.optional


def _spec(keys: str, optional: str = "") -> EventSpec:
    return EventSpec(frozenset(keys.split()), frozenset(optional.split()))


# `app.events.emit` adds this key (the call's id; its wire name predates "call") to the payload
# of every event about a call, and the delivery channels add `event_id` and `created_at`.
CALL_ID_KEY = "session_id"
_TRANSFER_ENDED = _spec(
    "transfer_id outcome reason handed_over",
    "reason_code error_code sip_response_code customer_room",
)
EVENTS: dict[str, EventSpec] = {
    "call_assigned": _spec("room_name customer_name channel caller_number"),
    "call_missed": _spec("reason", "reason_code microphone_error"),
    "call_queued": _spec("room_name customer_name", "channel previous_agent_id"),
    "call_active": _spec("agent_id"),
    "call_ended": _spec("status reason", "bridge_status sip_response_code error_code detail"),
    "context_added": _spec("entry"),
    "customer_presence": _spec("present grace_s"),
    "summary_ready": _spec("summary", "degraded reason transfer_id"),
    # `to_team`/`team_name`: a team transfer, offered to every free member (null otherwise).
    "transfer_requested": _spec(
        "transfer_id transfer_room customer_name from_agent_id from_agent_name summary ring_timeout_s to_phone to_team team_name"
    ),
    "transfer_ringing": _spec("transfer_id to_agent_id to_phone", "to_team"),
    "transfer_accepted": _spec("transfer_id to_agent_id", "to_phone channel to_team"),
    # A team transfer was accepted by `to_agent_id`: the other members offered it stop ringing.
    "transfer_taken": _spec("transfer_id to_team to_agent_id to_agent_name"),
    "transfer_bridged": _spec("transfer_id bridged_at"),
    "transfer_declined": _TRANSFER_ENDED,
    "transfer_completed": _spec("transfer_id customer_room to_agent_id to_phone"),
    "transfer_cancelled": _TRANSFER_ENDED,
    "transfer_failed": _TRANSFER_ENDED,
    "agent_left": _spec("agent_id"),
    # On the call's timeline whatever the mode; told to the agents only for a barge (and to the
    # agent whispered to): app.services.supervision.
    "supervision_started": _spec("supervisor_id mode"),
    "supervision_ended": _spec("supervisor_id mode reason"),
    # About the agent's login and event stream rather than a call: the browser's event feed acts
    # on these itself (signs out; falls back to polling) instead of handing them to the page.
    "session_ended": _spec("session_ref reason"),
    "stream_replaced": _spec("stream_ids reason"),
}
EVENT_TYPES = frozenset(EVENTS)
SESSION_EVENT_TYPES = frozenset({"session_ended", "stream_replaced"})
# Sent by the SSE endpoint only (never stored): the stream is live from here on.
STREAM_READY_EVENT = "ready"
# A web customer's status stream (GET /api/calls/<id>/events) sends only these: the customer's
# view of the call (the JSON of GET /api/calls/<id>/status), and, to a stream closed because the
# call has too many, the notice not to reconnect.
CUSTOMER_STATUS_EVENT = "status"
CUSTOMER_STREAM_REPLACED_EVENT = "stream_replaced"
# A supervisor's floor stream (GET /api/supervisor/events) sends the floor (the JSON of GET
# /api/supervisor/floor) under this name, and ends with session_ended or stream_replaced.
FLOOR_EVENT = "floor"

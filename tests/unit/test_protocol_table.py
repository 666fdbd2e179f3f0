"""The wire contract (app/protocol.py), table by table: every name, prefix, attribute, role,
label and event payload spelled out here, so that a change to what crosses the wire fails a test
and is a decision. Complements test_protocol.py (round trips and ties to app.states)."""
from __future__ import annotations

import dataclasses
import re

import pytest

from app import protocol as p


def test_room_prefixes():
    assert (p.CALL_ROOM_PREFIX, p.TRANSFER_ROOM_PREFIX) == ("call_", "transfer_")
    assert p.ROOM_PREFIX == {"call": "call_", "transfer": "transfer_"}


@pytest.mark.parametrize(
    "call_id,ok",
    [("a", True), ("A1", True), ("0", True), ("a_b.c-d", True), ("", False), ("_a", False), (".a", False),
     ("-a", False), ("a b", False), ("a/b", False), ("é", False), (None, False), (12, False)],
)
def test_call_ids_in_room_names(call_id, ok):
    if ok:
        assert p.call_room(call_id) == "call_" + call_id
        assert p.transfer_room(call_id, "s1") == f"transfer_{call_id}_s1"
    else:
        with pytest.raises(ValueError, match=r"^invalid call id for a room name: "):
            p.call_room(call_id)
        with pytest.raises(ValueError, match=r"^invalid call id for a room name: "):
            p.transfer_room(call_id, "s1")


@pytest.mark.parametrize(
    "suffix,ok",
    [("s", True), ("a.b-C9", True), ("-", True), ("", False), ("a_b", False), ("a b", False), (None, False), (7, False)],
)
def test_transfer_room_suffixes(suffix, ok):
    if ok:
        assert p.transfer_room("c1", suffix) == f"transfer_c1_{suffix}"
    else:
        with pytest.raises(ValueError, match=r"^invalid transfer room suffix: "):
            p.transfer_room("c1", suffix)


@pytest.mark.parametrize(
    "name,parsed",
    [
        ("call_c1", p.Room("call", "c1")),
        ("call_a_b", p.Room("call", "a_b")),
        ("call__x", None),
        ("call_", None),
        ("call_a b", None),
        ("transfer_c1_s1", p.Room("transfer", "c1", "s1")),
        ("transfer_a_b_s1", p.Room("transfer", "a_b", "s1")),  # the suffix is after the last "_"
        ("transfer_c1_", None),
        ("transfer__s1", None),
        ("transfer_c1", None),
        ("transfer_c 1_s1", None),
        ("transfer_c1_s 1", None),
        ("hold-c1", None),
        ("CALL_c1", None),
    ],
)
def test_parse_room(name, parsed):
    assert p.parse_room(name) == parsed


def test_room_kind():
    assert [p.room_kind(n) for n in ("call_", "transfer_", "call", "transfer", "xcall_1", "", None, 5)] == \
        ["call", "transfer", None, None, None, None, None, None]


def test_room_defaults_and_immutability():
    room = p.Room("call", "c1")
    assert room.suffix is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        room.call_id = "c2"


def test_identity_prefixes():
    assert p.IDENTITY_PREFIX == {"customer": "customer-", "agent": "agent-", "hold": "hold-", "supervisor": "supervisor-"}


@pytest.mark.parametrize(
    "identity,parsed",
    [
        ("customer-c1", ("customer", "c1")), ("agent-bob", ("agent", "bob")), ("hold-c1", ("hold", "c1")),
        ("customer-x", ("customer", "x")), ("agent-a", ("agent", "a")), ("hold-h", ("hold", "h")),
        ("supervisor-sue", ("supervisor", "sue")), ("supervisor-agent-a", ("supervisor", "agent-a")),
        ("customer-", None), ("agent-", None), ("hold-", None), ("supervisor-", None), ("sip_+1555", None), ("Agent-bob", None),
        ("", None), (None, None), (3, None),
    ],
)
def test_parse_identity_and_role(identity, parsed):
    assert p.parse_identity(identity) == parsed
    assert p.role_of_identity(identity) == (parsed[0] if parsed else None)


def test_attributes_roles_and_headers():
    assert (p.ATTR_CALL, p.ATTR_ROLE, p.ATTR_TRANSFER) == ("wt_call", "wt_role", "wt_transfer")
    assert p.ATTR == {"call": "wt_call", "role": "wt_role", "transfer": "wt_transfer"}
    assert p.ATTR_SUPERVISION == "wt_supervision"
    assert (p.ROLE_CUSTOMER, p.ROLE_HOLD, p.ROLE_AGENT_A, p.ROLE_AGENT_B, p.ROLE_OWNER, p.ROLE_LEAVING, p.ROLE_SUPERVISOR) == \
        ("customer", "hold", "agent_a", "agent_b", "owner", "leaving", "supervisor")
    assert p.ACCOUNT_ROLES == ("agent", "supervisor")
    assert p.SUPERVISION_MODES == ("monitor", "whisper", "barge")
    assert (p.HEADER_CALL, p.HEADER_ROLE, p.HEADER_TRANSFER) == ("X-WT-Call", "X-WT-Role", "X-WT-Transfer")
    assert list(p.HEADERS_TO_ATTRIBUTES.items()) == [("X-WT-Call", "wt_call"), ("X-WT-Role", "wt_role"), ("X-WT-Transfer", "wt_transfer")]


def test_twilio_sip_edges():
    assert p.SIP_EDGES == ("ashburn", "san-jose", "dublin", "frankfurt", "singapore", "tokyo", "sao-paulo", "sydney")


def test_e164_pattern_text():
    assert p.E164_PATTERN == r"^\+[1-9]\d{6,14}$"
    assert re.fullmatch(p.E164_PATTERN, "+4915123456789")


def test_statuses_the_browser_acts_on():
    assert p.CALL_FINAL_STATUSES == ("abandoned", "completed", "failed")
    assert p.TRANSFER_OPEN_STATUSES == ("pending", "ringing", "briefing")
    assert p.TRANSFER_STATUSES == ("pending", "ringing", "briefing", "completed", "cancelled", "declined", "no_answer",
                                   "busy", "failed", "caller_left", "agent_a_left")
    assert all(type(s) is str for s in p.CALL_FINAL_STATUSES + p.TRANSFER_OPEN_STATUSES + p.TRANSFER_STATUSES)


def test_transfer_wording():
    assert p.TRANSFER_OUTCOME_TEXT == {
        "declined": "declined", "cancelled": "cancelled", "no_answer": "not answered", "busy": "busy",
        "failed": "failed", "caller_left": "ended: the caller hung up", "agent_a_left": "ended: Agent A left",
    }
    assert p.TRANSFER_STATUS_LABEL == {
        "pending": "Starting…", "ringing": "Ringing", "briefing": "Briefing", "completed": "Completed",
        "cancelled": "Cancelled", "declined": "Declined", "no_answer": "No answer", "busy": "Busy",
        "failed": "Failed", "caller_left": "Caller left", "agent_a_left": "Agent A left",
    }


ENDED = ({"transfer_id", "outcome", "reason", "handed_over"}, {"reason_code", "error_code", "sip_response_code", "customer_room"})
# event type: (keys always sent, keys sent in some cases)
EVENTS = {
    "call_assigned": ({"room_name", "customer_name", "channel", "caller_number"}, set()),
    "call_missed": ({"reason"}, {"reason_code", "microphone_error"}),
    "call_queued": ({"room_name", "customer_name"}, {"channel", "previous_agent_id"}),
    "call_active": ({"agent_id"}, set()),
    "call_ended": ({"status", "reason"}, {"bridge_status", "sip_response_code", "error_code", "detail"}),
    "context_added": ({"entry"}, set()),
    "customer_presence": ({"present", "grace_s"}, set()),
    "summary_ready": ({"summary"}, {"degraded", "reason", "transfer_id"}),
    "transfer_requested": ({"transfer_id", "transfer_room", "customer_name", "from_agent_id", "from_agent_name", "summary",
                            "ring_timeout_s", "to_phone", "to_team", "team_name"}, set()),
    "transfer_ringing": ({"transfer_id", "to_agent_id", "to_phone"}, {"to_team"}),
    "transfer_accepted": ({"transfer_id", "to_agent_id"}, {"to_phone", "channel", "to_team"}),
    "transfer_taken": ({"transfer_id", "to_team", "to_agent_id", "to_agent_name"}, set()),
    "transfer_bridged": ({"transfer_id", "bridged_at"}, set()),
    "transfer_declined": ENDED,
    "transfer_completed": ({"transfer_id", "customer_room", "to_agent_id", "to_phone"}, set()),
    "transfer_cancelled": ENDED,
    "transfer_failed": ENDED,
    "agent_left": ({"agent_id"}, set()),
    "supervision_started": ({"supervisor_id", "mode"}, set()),
    "supervision_ended": ({"supervisor_id", "mode", "reason"}, set()),
    "session_ended": ({"session_ref", "reason"}, set()),
    "stream_replaced": ({"stream_ids", "reason"}, set()),
}


def test_every_event_type_and_its_payload_keys():
    assert {t: (set(s.keys), set(s.optional)) for t, s in p.EVENTS.items()} == EVENTS
    assert set(EVENTS) == p.EVENT_TYPES
    for spec in p.EVENTS.values():
        assert isinstance(spec.keys, frozenset) and isinstance(spec.optional, frozenset)
        assert spec.all_keys == spec.keys | spec.optional and isinstance(spec.all_keys, frozenset)


def test_other_event_names():
    assert p.CALL_ID_KEY == "session_id"
    assert {"session_ended", "stream_replaced"} == p.SESSION_EVENT_TYPES
    assert p.STREAM_READY_EVENT == "ready"


def test_event_spec_defaults():
    spec = p.EventSpec(frozenset({"a"}))
    assert spec.optional == frozenset() and spec.all_keys == {"a"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.keys = frozenset()

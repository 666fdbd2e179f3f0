"""The wire contract (app.protocol): names built and parsed the same way, tables tied to the state machines."""
from __future__ import annotations

import re

import pytest

from app import protocol as p
from app import states


@pytest.mark.parametrize("call_id", ["abc123", "0f3e9a1b2c3d4e5f", "CA0123456789abcdef", "a_b", "x.y-z"])
def test_rooms_round_trip(call_id):
    assert p.call_room(call_id) == "call_" + call_id
    assert p.parse_room(p.call_room(call_id)) == p.Room("call", call_id)
    room = p.transfer_room(call_id, "beef")
    assert room == f"transfer_{call_id}_beef"
    assert p.parse_room(room) == p.Room("transfer", call_id, "beef")
    assert p.room_kind(p.call_room(call_id)) == "call"
    assert p.room_kind(room) == "transfer"


@pytest.mark.parametrize("name", ["", "call_", "transfer_", "transfer_abc", "transfer__x", "transfer_abc_", "hold-1", "sip_123", "Call_x", None, 7])
def test_names_we_never_build_do_not_parse(name):
    assert p.parse_room(name) is None


@pytest.mark.parametrize("bad", ["", "a b", "x/y", "_lead", None])
def test_call_room_refuses_ids_that_would_not_round_trip(bad):
    with pytest.raises(ValueError):
        p.call_room(bad)


@pytest.mark.parametrize("suffix", ["", "a_b", "a b", None])
def test_transfer_room_refuses_a_suffix_with_the_separator(suffix):
    with pytest.raises(ValueError):
        p.transfer_room("abc", suffix)


def test_room_kind_is_prefix_only():
    assert p.room_kind("call_anything at all") == "call"
    assert p.room_kind("transfer_x") == "transfer"
    assert p.room_kind("calls_x") is None
    assert p.room_kind(None) is None
    assert p.ROOM_PREFIX == {"call": "call_", "transfer": "transfer_"}


def test_identities():
    assert p.customer_identity("c1") == "customer-c1"
    assert p.agent_identity("agent-a") == "agent-agent-a"
    assert p.hold_identity("c1") == "hold-c1"
    assert p.parse_identity("agent-agent-a") == ("agent", "agent-a")
    assert p.parse_identity("customer-c1") == ("customer", "c1")
    assert p.parse_identity("hold-c1") == ("hold", "c1")
    for other in ("agent-", "sip_+15550100", "customer", "", None):
        assert p.parse_identity(other) is None
        assert p.role_of_identity(other) is None
    assert p.role_of_identity("customer-c1") == "customer"
    assert p.role_of_identity("agent-x") == "agent"
    assert p.role_of_identity("hold-c1") == "hold"
    assert p.supervisor_identity("sue") == "supervisor-sue"
    assert p.parse_identity("supervisor-sue") == ("supervisor", "sue")
    assert p.role_of_identity("supervisor-sue") == "supervisor"


def test_prefixes_cannot_shadow_each_other():
    for table in (p.ROOM_PREFIX, p.IDENTITY_PREFIX):
        prefixes = list(table.values())
        assert all(not a.startswith(b) for a in prefixes for b in prefixes if a != b)


def test_sip_headers_map_to_the_attributes_tokens_carry():
    assert p.HEADERS_TO_ATTRIBUTES == {"X-WT-Call": "wt_call", "X-WT-Role": "wt_role", "X-WT-Transfer": "wt_transfer"}
    assert set(p.HEADERS_TO_ATTRIBUTES.values()) == set(p.ATTR.values())
    assert all(re.match(r"^X-[A-Za-z0-9][A-Za-z0-9-]*$", h) and not h.lower().startswith("x-twilio") for h in p.HEADERS_TO_ATTRIBUTES)
    assert {r: r for r in ("customer", "hold", "agent_a", "agent_b", "owner", "leaving", "supervisor")} == p.ROLE


def test_twiml_and_the_sip_trunk_use_the_contract():
    import twiml
    from app.gateways.livekit_sip import HEADERS_TO_ATTRIBUTES

    assert (twiml.HEADER_CALL, twiml.HEADER_ROLE, twiml.HEADER_TRANSFER) == (p.HEADER_CALL, p.HEADER_ROLE, p.HEADER_TRANSFER)
    assert (twiml.ROLE_CUSTOMER, twiml.ROLE_AGENT_B) == (p.ROLE_CUSTOMER, p.ROLE_AGENT_B)
    assert HEADERS_TO_ATTRIBUTES is p.HEADERS_TO_ATTRIBUTES


@pytest.mark.parametrize(("number", "ok"), [
    ("+14155550100", True), ("+4420794600", True), ("+1234567", True), ("+123456789012345", True),
    ("+123456", False), ("+1234567890123456", False), ("+04155550100", False), ("14155550100", False),
    ("+1 415 555 0100", False), ("", False),
])
def test_e164_pattern(number, ok):
    assert bool(re.match(p.E164_PATTERN, number)) is ok


def test_status_sets_are_the_state_machines():
    assert set(p.CALL_FINAL_STATUSES) == {str(s) for s in states.CALL_TERMINAL} == {"completed", "abandoned", "failed"}
    assert p.TRANSFER_OPEN_STATUSES == ("pending", "ringing", "briefing")
    assert set(p.TRANSFER_OPEN_STATUSES) == {str(s) for s in states.TRANSFER_OPEN}
    assert list(p.TRANSFER_STATUSES) == [str(s) for s in states.TransferStatus]


def test_outcome_wording_covers_every_way_a_transfer_ends():
    ended_otherwise = {str(s) for s in states.TRANSFER_TERMINAL} - {"completed"}
    assert set(p.TRANSFER_OUTCOME_TEXT) == ended_otherwise == set(states.FAILURE_EVENT_TYPE)
    assert set(p.TRANSFER_STATUS_LABEL) == {str(s) for s in states.TransferStatus}
    assert p.TRANSFER_OUTCOME_TEXT["no_answer"] == "not answered"
    assert p.TRANSFER_STATUS_LABEL["no_answer"] == "No answer"


def test_events():
    assert frozenset(p.EVENTS) == p.EVENT_TYPES
    assert p.SESSION_EVENT_TYPES <= p.EVENT_TYPES
    assert set(states.FAILURE_EVENT_TYPE.values()) <= p.EVENT_TYPES
    assert "transfer_bridged" in p.EVENT_TYPES
    assert p.STREAM_READY_EVENT not in p.EVENT_TYPES
    for spec in p.EVENTS.values():
        assert spec.keys and not (spec.keys & spec.optional)
        assert p.CALL_ID_KEY not in spec.all_keys  # added by emit, not by the caller
    assert p.EVENTS["transfer_bridged"].all_keys == {"transfer_id", "bridged_at"}


def test_events_module_still_exports_the_types():
    from app import events

    assert events.EVENT_TYPES is p.EVENT_TYPES


def test_the_contract_is_pure():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(p))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert imported <= {"__future__", "re", "dataclasses", "app"}, imported

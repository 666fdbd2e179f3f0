"""The state machines' tables, pinned entry by entry: the values that go over the wire and into the
database, which states each event starts from and leads to, which states are final, the event type
Agent A sees for each failed transfer, and the ranking of Agent B's phone-leg statuses.

Written from the flows (docs/architecture.md), not printed from the module: a change to any entry
should fail here and be a decision, not an accident."""
from __future__ import annotations

import dataclasses

import pytest

from app import states
from app.states import CallStatus as C
from app.states import TransferStatus as T

CALL_VALUES = ["queued", "ringing", "active", "on_hold", "transferred", "completed", "abandoned", "failed"]
TRANSFER_VALUES = [
    "pending", "ringing", "briefing", "completed", "cancelled", "declined", "no_answer", "busy", "failed",
    "caller_left", "agent_a_left",
]

# event: (the states it may start from, the state it leads to)
CALL_TABLE = {
    "assign": ({"queued"}, "ringing"),
    "agent_joined": ({"ringing"}, "active"),
    "requeue": ({"ringing", "active", "transferred"}, "queued"),
    "miss": ({"ringing"}, "queued"),
    "hold": ({"active", "transferred"}, "on_hold"),
    "resume": ({"on_hold"}, "active"),
    "hand_over": ({"on_hold"}, "transferred"),
    "end": ({"ringing", "active", "on_hold", "transferred"}, "completed"),
    "abandon": ({"queued", "ringing"}, "abandoned"),
    "fail": ({"queued", "ringing", "active", "on_hold", "transferred"}, "failed"),
}
OPEN = {"pending", "ringing", "briefing"}
TRANSFER_TABLE = {
    "ring": ({"pending"}, "ringing"),
    "accept": ({"ringing"}, "briefing"),
    "complete": ({"briefing"}, "completed"),
    "cancel": (OPEN, "cancelled"),
    "decline": (OPEN, "declined"),
    "no_answer": ({"pending", "ringing"}, "no_answer"),
    "busy": ({"pending", "ringing"}, "busy"),
    "fail": (OPEN, "failed"),
    "caller_left": (OPEN, "caller_left"),
    "agent_a_left": (OPEN, "agent_a_left"),
}
TABLES = {"call": (CALL_TABLE, CALL_VALUES), "transfer": (TRANSFER_TABLE, TRANSFER_VALUES)}


def test_status_values_are_the_wire_and_database_values():
    assert [s.value for s in C] == CALL_VALUES
    assert [s.value for s in T] == TRANSFER_VALUES
    assert C("on_hold") is C.ON_HOLD and str(C.ON_HOLD) == "on_hold"
    assert T("agent_a_left") is T.AGENT_A_LEFT and str(T.NO_ANSWER) == "no_answer"


def test_call_state_groups():
    assert {"queued", "ringing", "active", "on_hold", "transferred"} == states.CALL_LIVE
    assert {"completed", "abandoned", "failed"} == states.CALL_TERMINAL
    assert {"active", "transferred"} == states.CALL_CONNECTED
    assert set(C) == states.CALL_LIVE | states.CALL_TERMINAL and not states.CALL_LIVE & states.CALL_TERMINAL


def test_transfer_state_groups():
    assert states.TRANSFER_OPEN == OPEN
    assert {"completed", "cancelled", "declined", "no_answer", "busy", "failed", "caller_left", "agent_a_left"} == states.TRANSFER_TERMINAL


@pytest.mark.parametrize("machine", ["call", "transfer"])
def test_every_edge_of_the_table(machine):
    table = states.CALL_EVENTS if machine == "call" else states.TRANSFER_EVENTS
    expected, _ = TABLES[machine]
    assert {event: (set(e.sources), str(e.target)) for event, e in table.items()} == expected
    for event, (sources, target) in expected.items():
        assert states.edge(machine, event) == states.Edge(frozenset(sources), target)
        assert isinstance(states.edge(machine, event).sources, frozenset)


@pytest.mark.parametrize(
    "machine,event",
    [(m, e) for m, (table, _) in TABLES.items() for e in table],
)
def test_each_event_from_every_state(machine, event):
    """`can` and `apply` agree with the table for every state, allowed or not."""
    table, values = TABLES[machine]
    sources, target = table[event]
    for current in values:
        assert states.can(machine, current, event) is (current in sources), (current, event)
        if current in sources:
            result = states.apply(machine, current, event)
            assert result == target and type(result) is str
        else:
            with pytest.raises(states.InvalidTransition):
                states.apply(machine, current, event)


@pytest.mark.parametrize(
    "machine,current,event,after",
    [
        # The owner left: back to the queue from ringing, active, or after a hand-over...
        ("call", "ringing", "requeue", "queued"),
        ("call", "active", "requeue", "queued"),
        ("call", "transferred", "requeue", "queued"),
        # ...but not while on hold (a transfer is in progress) nor once final.
        ("call", "on_hold", "requeue", None),
        ("call", "queued", "requeue", None),
        ("call", "completed", "requeue", None),
        # The assigned agent never joined: only from ringing.
        ("call", "ringing", "miss", "queued"),
        ("call", "active", "miss", None),
        ("call", "transferred", "miss", None),
        ("call", "on_hold", "resume", "active"),
        ("call", "active", "resume", None),
        ("call", "queued", "abandon", "abandoned"),
        ("call", "ringing", "abandon", "abandoned"),
        ("call", "active", "abandon", None),
        ("call", "queued", "fail", "failed"),
        ("call", "on_hold", "fail", "failed"),
        ("call", "failed", "fail", None),
        ("call", "queued", "end", None),
        ("transfer", "briefing", "decline", "declined"),
        ("transfer", "pending", "busy", "busy"),
        ("transfer", "briefing", "busy", None),
        ("transfer", "briefing", "fail", "failed"),
        ("transfer", "pending", "caller_left", "caller_left"),
        ("transfer", "briefing", "agent_a_left", "agent_a_left"),
        ("transfer", "completed", "agent_a_left", None),
    ],
)
def test_named_transitions(machine, current, event, after):
    if after is None:
        assert not states.can(machine, current, event)
        with pytest.raises(states.InvalidTransition):
            states.apply(machine, current, event)
    else:
        assert states.can(machine, current, event)
        assert states.apply(machine, current, event) == after


@pytest.mark.parametrize("status", CALL_VALUES)
def test_call_is_terminal(status):
    assert states.is_terminal("call", status) is (status in {"completed", "abandoned", "failed"})


@pytest.mark.parametrize("status", TRANSFER_VALUES)
def test_transfer_is_terminal(status):
    assert states.is_terminal("transfer", status) is (status not in OPEN)


def test_each_machine_uses_its_own_final_states():
    # "abandoned" ends a call, not a transfer; "cancelled" ends a transfer, not a call.
    assert states.is_terminal("call", "abandoned") and not states.is_terminal("transfer", "abandoned")
    assert states.is_terminal("transfer", "cancelled") and not states.is_terminal("call", "cancelled")
    assert not states.is_terminal("transfer", "queued")


def test_failure_event_type_for_every_unfinished_outcome():
    assert states.FAILURE_EVENT_TYPE == {
        "cancelled": "transfer_cancelled",
        "declined": "transfer_declined",
        "no_answer": "transfer_failed",
        "busy": "transfer_failed",
        "failed": "transfer_failed",
        "caller_left": "transfer_failed",
        "agent_a_left": "transfer_failed",
    }
    # Every way a transfer ends other than completing has one.
    assert set(states.FAILURE_EVENT_TYPE) == states.TRANSFER_TERMINAL - {T.COMPLETED}


def test_invalid_transition_says_what_was_refused():
    with pytest.raises(states.InvalidTransition) as info:
        states.apply("call", "queued", "hand_over")
    err = info.value
    assert str(err) == "call in state 'queued' cannot hand over"
    assert (err.machine, err.current, err.event) == ("call", "queued", "hand_over")
    with pytest.raises(states.InvalidTransition, match=r"^transfer in state 'completed' cannot no answer$"):
        states.apply("transfer", "completed", "no_answer")


def test_unknown_machine_or_event_messages():
    with pytest.raises(ValueError) as info:
        states.edge("call", "teleport")
    assert str(info.value) == "unknown call event 'teleport'"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(ValueError) as info:
        states.edge("agent", "assign")
    assert str(info.value) == "unknown machine 'agent'"
    with pytest.raises(ValueError, match=r"^unknown transfer event 'assign'$"):
        states.can("transfer", "pending", "assign")


def test_edges_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        states.CALL_EVENTS["assign"].target = C.ACTIVE


def test_phone_leg_statuses_and_their_ranks():
    assert {"completed", "busy", "no-answer", "failed", "canceled"} == states.LEG_FINAL
    assert states.LEG_RANK == {
        "queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3,
        "completed": 4, "busy": 4, "no-answer": 4, "failed": 4, "canceled": 4,
    }


@pytest.mark.parametrize(
    "status,replaces",
    [
        ("queued", []),
        ("initiated", ["queued"]),
        ("ringing", ["queued", "initiated"]),
        ("in-progress", ["queued", "initiated", "ringing"]),
        # A final status replaces any live one, never another final one (the first report wins).
        *[(final, ["queued", "initiated", "ringing", "in-progress"]) for final in ("completed", "busy", "no-answer", "failed", "canceled")],
    ],
)
def test_leg_statuses_below(status, replaces):
    assert states.leg_statuses_below(status) == replaces


def test_a_late_ringing_never_replaces_a_later_status():
    for later in ("in-progress", "completed", "busy", "no-answer", "failed", "canceled"):
        assert later not in states.leg_statuses_below("ringing")
        assert "ringing" in states.leg_statuses_below(later)


def test_an_unknown_leg_status_is_a_programming_error():
    with pytest.raises(KeyError):
        states.leg_statuses_below("answered")

"""The pure state machines: table sanity, and random event sequences never escape the machine."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import states
from app.states import CallStatus as C
from app.states import TransferStatus as T


def test_every_edge_targets_a_known_state_and_starts_from_known_states():
    for machine, table, enum in (("call", states.CALL_EVENTS, C), ("transfer", states.TRANSFER_EVENTS, T)):
        for name, edge in table.items():
            assert edge.target in set(enum), (machine, name)
            assert edge.sources and edge.sources <= set(enum), (machine, name)


def test_terminal_states_have_no_way_out():
    for status in states.CALL_TERMINAL:
        assert not any(status in e.sources for e in states.CALL_EVENTS.values())
    for status in states.TRANSFER_TERMINAL:
        assert not any(status in e.sources for e in states.TRANSFER_EVENTS.values())


def test_happy_paths():
    s = "queued"
    for event in ("assign", "agent_joined", "hold", "hand_over", "end"):
        s = states.apply("call", s, event)
    assert s == C.COMPLETED
    t = "pending"
    for event in ("ring", "accept", "complete"):
        t = states.apply("transfer", t, event)
    assert t == T.COMPLETED


@pytest.mark.parametrize(
    "machine,current,event",
    [
        ("transfer", "completed", "cancel"),
        ("transfer", "pending", "complete"),
        ("transfer", "ringing", "complete"),
        ("transfer", "briefing", "no_answer"),
        ("transfer", "cancelled", "accept"),
        ("call", "queued", "hold"),
        ("call", "completed", "end"),
        ("call", "on_hold", "hold"),
        ("call", "active", "hand_over"),
    ],
)
def test_invalid_transitions_are_refused(machine, current, event):
    with pytest.raises(states.InvalidTransition):
        states.apply(machine, current, event)
    assert not states.can(machine, current, event)


def test_unknown_event_or_machine_is_a_programming_error():
    with pytest.raises(ValueError):
        states.apply("transfer", "pending", "teleport")
    with pytest.raises(ValueError):
        states.edge("agent", "assign")


def _walk(machine: str, start: str, events: list[str]) -> list[str]:
    """Apply events the way the services do: a refused event is a no-op, never an error state."""
    seen = [start]
    current = start
    for event in events:
        if states.can(machine, current, event):
            current = states.apply(machine, current, event)
        seen.append(current)
    return seen


@given(st.lists(st.sampled_from(sorted(states.TRANSFER_EVENTS)), max_size=40))
def test_random_transfer_event_orders_stay_valid(events):
    trail = _walk("transfer", "pending", events)
    assert all(s in set(T) for s in trail)
    # Once terminal, always terminal and unchanged (late or duplicate webhooks are harmless).
    for i, s in enumerate(trail):
        if states.is_terminal("transfer", s):
            assert set(trail[i:]) == {s}
            break
    # Completed only ever after briefing.
    if T.COMPLETED in trail:
        assert trail[trail.index(T.COMPLETED) - 1] == T.BRIEFING


@given(st.lists(st.sampled_from(sorted(states.CALL_EVENTS)), max_size=40))
def test_random_call_event_orders_stay_valid(events):
    trail = _walk("call", "queued", events)
    assert all(s in set(C) for s in trail)
    for i, s in enumerate(trail):
        if states.is_terminal("call", s):
            assert set(trail[i:]) == {s}
            break
    if C.TRANSFERRED in trail:
        assert trail[trail.index(C.TRANSFERRED) - 1] == C.ON_HOLD


@pytest.mark.parametrize("machine,table", [("call", states.CALL_EVENTS), ("transfer", states.TRANSFER_EVENTS)])
def test_a_repeated_event_is_always_refused(machine, table):
    """No edge loops back into its own sources, so a duplicated webhook or double click is a no-op."""
    for event, edge in table.items():
        for start in edge.sources:
            once = states.apply(machine, start, event)
            assert not states.can(machine, once, event), (machine, event, start)

"""The transfer rules (app/services/transfer_rules.py) without a database: every repository,
effect and event function they call is replaced by a recorder, so each test pins the exact steps,
in order, that ending a transfer, ending its call, or the owner leaving takes, and what each
event says to whom."""
from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from app.services import transfer_rules as rules

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SESSION = object()


class World:
    """Stands in for the database and the outside world; `log` is every call made, in order."""

    def __init__(self, monkeypatch, *, transition_ok=True, open_transfer=None, call_agent="alice"):
        self.log: list[tuple] = []
        self.transition_ok = transition_ok
        self.open = open_transfer
        self.call = SimpleNamespace(id="c1", agent_id=call_agent, room_name="call_c1", customer_name="Dana")
        self.reloaded_call = SimpleNamespace(id="c1", agent_id=None, room_name="call_c1", customer_name="Dana")
        self.reloaded_transfer = SimpleNamespace(id="t1", reloaded=True)
        for name in ("transition", "require_transition", "load_call", "load_transfer", "open_transfer",
                     "release_agent", "emit", "assign_in", "utcnow"):
            monkeypatch.setattr(rules, name, getattr(self, "_" + name))
        monkeypatch.setattr(rules, "effects", SimpleNamespace(
            delete_room_step=lambda room: {"step": "delete_room", "room": room},
            delete_room=lambda s, room: self._record(s, "delete_room", room),
            arm_handover_join=lambda s, tid, at: self._record(s, "arm_handover_join", tid, at),
        ))
        # Metrics are recorded only once the transaction commits: `commit()` runs what waits for it.
        self.on_commit: list = []
        self.counted: list[tuple] = []
        monkeypatch.setattr(rules, "metrics", SimpleNamespace(
            after_commit=lambda s, record: (self._check_session(s), self.on_commit.append(record)),
            transfer_ended=lambda to_phone, outcome: self.counted.append((to_phone, outcome)),
        ))

    def _check_session(self, s):
        assert s is SESSION

    def commit(self) -> list[tuple]:
        for record in self.on_commit:
            record()
        return self.counted

    def _record(self, s, *entry):
        assert s is SESSION
        self.log.append(entry)

    def _transition(self, s, machine, id_, event, **values):
        self._record(s, "transition", machine, id_, event, values)
        return self.transition_ok if machine == "transfer" else True

    def _require_transition(self, s, machine, id_, event, **values):
        self._record(s, "require_transition", machine, id_, event, values)

    def _load_call(self, s, call_id):
        assert call_id == "c1"
        self._record(s, "load_call", call_id)
        return self.call if not any(e[0] == "require_transition" for e in self.log) else self.reloaded_call

    def _load_transfer(self, s, transfer_id):
        self._record(s, "load_transfer", transfer_id)
        return self.reloaded_transfer

    def _open_transfer(self, s, call_id):
        self._record(s, "open_transfer", call_id)
        return self.open

    def _release_agent(self, s, agent_id, call_id):
        self._record(s, "release_agent", agent_id, call_id)

    def _emit(self, s, type_, payload, *, audiences, call_id):
        self._record(s, "emit", type_, payload, list(audiences), call_id)

    def _assign_in(self, s, call, exclude=()):
        self._record(s, "assign_in", call, tuple(exclude))

    def _utcnow(self):
        return NOW


class Legs:
    """Agent B's phone leg: `scheduled` says whether a teardown was scheduled (there was a leg)."""

    def __init__(self, log, scheduled: bool):
        self.log, self.scheduled = log, scheduled

    def schedule_teardown(self, s, t, *, caller_left=False, then=()):
        self.log.append(("schedule_teardown", t, caller_left, list(then)))
        return self.scheduled

    def schedule_move(self, s, t, call):
        self.log.append(("schedule_move", t, call))


def transfer(**over):
    fields = dict(id="t1", call_id="c1", from_agent_id="alice", to_agent_id="bob", to_phone=None, to_team=None,
                  transfer_room="transfer_c1_ab12", status="ringing")
    fields.update(over)
    return SimpleNamespace(**fields)


def ended(reason, reason_code=None, error_code=None, sip_response_code=None):
    return dict(ended_at=NOW, reason=reason, reason_code=reason_code, error_code=error_code, sip_response_code=sip_response_code)


def failure_payload(outcome, reason, reason_code=None, error_code=None, sip_response_code=None):
    return {"transfer_id": "t1", "outcome": outcome, "reason": reason, "reason_code": reason_code,
            "error_code": error_code, "sip_response_code": sip_response_code, "handed_over": False}


# -- end_transfer -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "event,outcome,event_type",
    [
        ("cancel", "cancelled", "transfer_cancelled"),
        ("decline", "declined", "transfer_declined"),
        ("no_answer", "no_answer", "transfer_failed"),
        ("busy", "busy", "transfer_failed"),
        ("fail", "failed", "transfer_failed"),
        ("caller_left", "caller_left", "transfer_failed"),
        ("agent_a_left", "agent_a_left", "transfer_failed"),
    ],
)
def test_end_transfer_steps_for_every_outcome(monkeypatch, event, outcome, event_type):
    w = World(monkeypatch)
    assert rules.end_transfer(SESSION, transfer(), event, reason="Why.", reason_code="why") is True
    assert w.log == [
        ("transition", "transfer", "t1", event, ended("Why.", "why")),
        ("load_call", "c1"),
        ("release_agent", "bob", "c1"),  # Agent B is free again
        ("transition", "call", "c1", "resume", {}),  # the customer comes off hold
        ("delete_room", "transfer_c1_ab12"),
        ("emit", event_type, failure_payload(outcome, "Why.", "why"), ["alice", "bob"], "c1"),
    ]
    assert w.counted == []  # not before the commit
    assert w.commit() == [(None, outcome)]


def test_end_transfer_passes_on_every_code(monkeypatch):
    w = World(monkeypatch)
    rules.end_transfer(SESSION, transfer(), "fail", reason="SIP said no.", error_code="32011", reason_code="dial_failed", sip_response_code=486)
    assert w.log[0] == ("transition", "transfer", "t1", "fail", ended("SIP said no.", "dial_failed", "32011", 486))
    assert w.log[-1] == ("emit", "transfer_failed", failure_payload("failed", "SIP said no.", "dial_failed", "32011", 486), ["alice", "bob"], "c1")


def test_end_transfer_of_an_already_ended_transfer_does_nothing_else(monkeypatch):
    w = World(monkeypatch, transition_ok=False)
    assert rules.end_transfer(SESSION, transfer(), "cancel", reason="Late.") is False
    assert w.log == [("transition", "transfer", "t1", "cancel", ended("Late."))]
    assert w.commit() == []  # another request ended it, and counted it


@pytest.mark.parametrize(
    "to_agent,call_agent,released",
    [
        ("bob", "alice", True),  # Agent B was reserved for the transfer: free again
        (None, "alice", False),  # a phone transfer reserved no agent
        ("bob", "bob", False),  # Agent B owns the call by now: they stay busy with it
    ],
)
def test_end_transfer_frees_agent_b_only_if_reserved_for_it(monkeypatch, to_agent, call_agent, released):
    w = World(monkeypatch, call_agent=call_agent)
    rules.end_transfer(SESSION, transfer(to_agent_id=to_agent, to_phone=None if to_agent else "+15550100"), "cancel", reason="r")
    assert (("release_agent", to_agent, "c1") in w.log) is released
    assert [e for e in w.log if e[0] == "release_agent"] == ([("release_agent", to_agent, "c1")] if released else [])
    assert w.log[-1][3] == ["alice", to_agent]


def test_end_transfer_can_leave_the_call_on_hold(monkeypatch):
    w = World(monkeypatch)
    rules.end_transfer(SESSION, transfer(), "cancel", reason="r", resume_call=False)
    assert not any(e[0] == "transition" and e[1] == "call" for e in w.log)


@pytest.mark.parametrize("event", ["caller_left", "cancel", "no_answer"])
def test_end_transfer_ends_the_phone_leg_before_deleting_the_room(monkeypatch, event):
    w = World(monkeypatch)
    legs = Legs(w.log, scheduled=True)
    rules.end_transfer(SESSION, transfer(to_agent_id=None, to_phone="+15550100"), event, reason="r", legs=legs)
    steps = [e[0] for e in w.log]
    assert steps == ["transition", "load_call", "transition", "load_transfer", "schedule_teardown", "emit"]
    # The leg is ended with the transfer as stored now, and the room is deleted after it.
    assert w.log[4] == ("schedule_teardown", w.reloaded_transfer, event == "caller_left", [{"step": "delete_room", "room": "transfer_c1_ab12"}])


def test_end_transfer_deletes_the_room_itself_when_there_is_no_leg(monkeypatch):
    w = World(monkeypatch)
    rules.end_transfer(SESSION, transfer(), "decline", reason="r", legs=Legs(w.log, scheduled=False))
    steps = [e[0] for e in w.log]
    assert steps == ["transition", "load_call", "release_agent", "transition", "load_transfer", "schedule_teardown", "delete_room", "emit"]


# -- close_for_call_end -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "by_customer,expected",
    [
        (True, ("caller_left", dict(reason="The caller hung up.", reason_code="caller_left", resume_call=False))),
        (False, ("cancel", dict(reason="The call was ended (agent_ended).", reason_code="agent_ended", resume_call=False))),
    ],
)
def test_close_for_call_end(monkeypatch, by_customer, expected):
    seen = []
    monkeypatch.setattr(rules, "end_transfer", lambda s, t, event, **kw: seen.append((s, t, event, kw)))
    t, legs = transfer(), object()
    rules.close_for_call_end(SESSION, t, by_customer=by_customer, reason="agent_ended", legs=legs)
    event, kw = expected
    assert seen == [(SESSION, t, event, {**kw, "legs": legs})]


# -- owner_left -------------------------------------------------------------------------------------
HANDOVER_REASON = "Agent A left during the briefing; Agent B now has the customer."


def handover_log(t, *, room_step):
    return [
        ("open_transfer", "c1"),
        ("require_transition", "transfer", "t1", "agent_a_left",
         dict(ended_at=NOW, handed_over_at=NOW, reason=HANDOVER_REASON, reason_code="agent_a_left")),
        ("require_transition", "call", "c1", "hand_over", dict(agent_id=t.to_agent_id)),
        ("release_agent", "alice", "c1"),
        *room_step,
        ("emit", "transfer_failed", {
            "transfer_id": "t1",
            "outcome": "agent_a_left",
            "reason": "Agent A left during the briefing; you now have the customer.",
            "handed_over": True,
            "customer_room": "call_c1",
        }, ["alice", t.to_agent_id], "c1"),
        ("arm_handover_join", "t1", NOW),
    ]


def test_owner_leaving_a_briefed_browser_agent_b_hands_over(monkeypatch):
    t = transfer(status="briefing")
    w = World(monkeypatch, open_transfer=t)
    assert rules.owner_left(SESSION, w.call, "alice") == "handed_over"
    assert w.log == handover_log(t, room_step=[("delete_room", "transfer_c1_ab12")])


def test_owner_leaving_a_briefed_phone_agent_b_moves_the_leg(monkeypatch):
    t = transfer(status="briefing", to_agent_id=None, to_phone="+15550100")
    w = World(monkeypatch, open_transfer=t)
    legs = Legs(w.log, scheduled=True)
    assert rules.owner_left(SESSION, w.call, "alice", legs=legs) == "handed_over"
    assert w.log == handover_log(t, room_step=[("load_transfer", "t1"), ("schedule_move", w.reloaded_transfer, w.call)])
    assert w.commit() == [("+15550100", "agent_a_left")]


def test_owner_leaving_a_briefed_phone_agent_b_without_legs_deletes_the_room(monkeypatch):
    t = transfer(status="briefing", to_agent_id=None, to_phone="+15550100")
    w = World(monkeypatch, open_transfer=t)
    assert rules.owner_left(SESSION, w.call, "alice") == "handed_over"
    assert w.log == handover_log(t, room_step=[("delete_room", "transfer_c1_ab12")])


def requeue_log(w, agent, exclude):
    return [
        ("release_agent", agent, "c1"),
        ("require_transition", "call", "c1", "requeue", dict(agent_id=None, assigned_at=None, requeued_at=NOW)),
        ("emit", "call_queued", {"room_name": "call_c1", "customer_name": "Dana", "previous_agent_id": agent}, [], "c1"),
        ("load_call", "c1"),
        ("assign_in", w.reloaded_call, exclude),
    ]


@pytest.mark.parametrize(
    "t",
    [
        transfer(status="pending"),
        transfer(status="ringing"),
        # Briefing, but with nobody to hand over to: requeued like the others.
        transfer(status="briefing", to_agent_id=None, to_phone=None),
    ],
)
def test_owner_leaving_before_agent_b_joined_ends_the_transfer_and_requeues(monkeypatch, t):
    w = World(monkeypatch, open_transfer=t)
    ended_with = []
    monkeypatch.setattr(rules, "end_transfer", lambda s, tr, event, **kw: ended_with.append((tr, event, kw)))
    legs = object()
    assert rules.owner_left(SESSION, w.call, "alice", legs=legs) == "requeued"
    assert ended_with == [(t, "agent_a_left", dict(reason="Agent A left before Agent B joined.", reason_code="agent_a_left", legs=legs))]
    assert w.log == [("open_transfer", "c1"), *requeue_log(w, "alice", ("alice",))]


@pytest.mark.parametrize("agent,exclude", [("alice", ("alice",)), (None, ())])
def test_owner_leaving_without_a_transfer_requeues(monkeypatch, agent, exclude):
    w = World(monkeypatch, open_transfer=None)
    monkeypatch.setattr(rules, "end_transfer", lambda *a, **k: pytest.fail("no transfer to end"))
    assert rules.owner_left(SESSION, w.call, agent) == "requeued"
    assert w.log == [("open_transfer", "c1"), *requeue_log(w, agent, exclude)]

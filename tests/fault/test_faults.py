"""LiveKit, Twilio REST, the LLM and the database, each unreachable (`down`) or slower than the
app's timeouts (`slow`) in the middle of a transfer, then restored (docs/architecture.md §5, §9).

For each: every API answer is a success or a typed JSON error (`{"error": {"code", "message"}}`,
4xx or 503: never a 500, never HTML, never no answer), nothing is half-written (read from the
database directly: a transfer and its call agree, agents hold only live calls they are part of,
every ringing transfer has its ring timer), nothing is left waiting once the deadlines have
passed, nothing is left behind in LiveKit or Twilio, and the whole flow completes after recovery.

The app runs under gunicorn with a worker process on PostgreSQL (tests/fault/stack.py); the
faults are TCP proxies between the app's processes and each dependency (tests/fault/proxy.py).
Deadlines are short (ring 5 s, hand-over 10 s) so that they pass within the test.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import Event, utcnow
from tests.fault.proxy import FaultProxy
from tests.fault.stack import (
    API_BOUND_S,
    HANDOVER_JOIN_TIMEOUT_S,
    RING_TIMEOUT_S,
    SUMMARY_BUDGET_S,
    Answer,
    Http,
    Run,
    Stream,
    until,
)

pytestmark = pytest.mark.e2e

MODES = ["down", "slow"]
# How late a slow dependency answers: longer than the app waits for it (LIVEKIT_TIMEOUT_S,
# TWILIO_TIMEOUT_S, LLM_TIMEOUT_S are 1 s here; the database has no timeout of its own).
SLOW_S = {"livekit": 2.5, "twilio": 2.5, "llm": 3.0, "database": 3.0}
CALLER_WHILE_DOWN = "+14155550124"


class Fault:
    """Break one proxy, and show afterwards that the app's traffic actually met the fault."""

    def __init__(self, run: Run, name: str, mode: str):
        self.run, self.name, self.mode = run, name, mode
        self.proxy: FaultProxy = run.stack.proxy(name)
        self.before = self.proxy.stats.snapshot()
        self.active = False

    def start(self) -> None:
        self.before = self.proxy.stats.snapshot()
        self.proxy.down() if self.mode == "down" else self.proxy.slow(SLOW_S[self.name])
        self.active = True

    def stop(self) -> None:
        if not self.active:
            return
        self.active = False
        after = self.proxy.stats
        met = (after.refused + after.cut > self.before.refused + self.before.cut) if self.mode == "down" \
            else after.delayed_chunks > self.before.delayed_chunks
        self.proxy.up()
        if not met:
            self.run.problem(f"the {self.name} fault ({self.mode}) was never met: no traffic went through its proxy meanwhile")


def reconnect(run: Run, agent, old: Stream | None, *, statuses=(200,), code: str | None = None) -> Stream | None:
    """The dashboard's EventSource reconnects with Last-Event-ID, as after a dropped connection."""
    last = old.last_id if old is not None else None
    if old is not None:
        old.close()
    answer, stream = agent.open_stream(last)
    run.expect(answer, set(statuses), code=code, why="an event stream reconnecting")
    return stream


def event_reaches(run: Run, agent, stream: Stream | None, event_types: str | tuple, transfer_id: str, what: str, timeout: float = 10.0):
    """One of `event_types` about the transfer reaches the agent: on the stream they have, or
    after reconnecting to it (Last-Event-ID makes a reconnect lossless). (payload, stream)."""
    types = (event_types,) if isinstance(event_types, str) else tuple(event_types)
    where = lambda d: d.get("transfer_id") == transfer_id  # noqa: E731

    def seen(s: Stream) -> dict | None:
        return next((e for t in types if (e := s.find(t, where))), None)

    def watch(s: Stream) -> dict | None:
        deadline = time.monotonic() + timeout
        while not seen(s) and not s.closed and time.monotonic() < deadline:
            s.wait_for(types[0], where, timeout=min(0.2, deadline - time.monotonic()))  # wakes on any event
        return seen(s)

    if stream is not None and (found := watch(stream)):
        return found["data"], stream
    fresh = reconnect(run, agent, stream)
    found = watch(fresh) if fresh is not None else None
    if found is None:
        with run.stack.services.db.reading() as s:
            stored = [(e.id, e.type) for e in s.scalars(select(Event).where(Event.audience == agent.id).order_by(Event.id))]
        got = [(e.get("id"), e.get("event")) for e in (fresh.events if fresh is not None else [])]
        run.problem(f"{what}: {agent.id} never got {'/'.join(types)} for {transfer_id} (transfer {run.transfer(transfer_id).status}; "
                    f"stored for them: {stored[-6:]}; the reconnected stream got {got[-6:]}, closed={fresh.closed if fresh else None})")
        return None, fresh
    return found["data"], fresh


def new_customer(run: Run) -> Http:
    return Http(run.stack, run)


def transfer_again_and_complete(run: Run, c) -> dict:
    """Agent A back with the customer, then a fresh transfer to Agent B, accepted and completed."""
    cid = c.call.id
    run.expect(c.a.post("/api/token", {"session_id": cid}), {200})
    run.lk_join(c.call.room, f"agent-{c.a.id}")
    t2 = run.initiate(c.a, cid, to=c.b)
    run.expect(c.b.post("/api/accept-transfer", {"transfer_id": t2["id"]}), {200})
    run.expect(c.a.post("/api/complete-transfer", {"transfer_id": t2["id"]}), {200})
    run.lk_join(c.call.room, f"agent-{c.b.id}")
    return t2


# -- LiveKit -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_livekit_fails_mid_transfer(run: Run, mode: str):
    """LiveKit goes away while Agent B's dashboard rings. What needs no LiveKit goes on (accept,
    context, complete: tokens are minted locally, room changes are retried tasks); what needs a
    room now (a new web customer, a new transfer) is a typed 503 that writes nothing; a phone
    caller still gets the hold loop, their room made by a retried task once LiveKit is back."""
    lk = Fault(run, "livekit", mode)
    double = run.stack.livekit
    c = run.consult()
    tid, cid = c.transfer["id"], c.call.id

    lk.start()
    last_seen = c.a_stream.last_id
    c.a_stream.close()  # Agent A's dashboard loses its stream as the fault starts; it reconnects below
    run.expect(c.b.post("/api/accept-transfer", {"transfer_id": tid}), {200}, why="accepting needs no LiveKit")
    run.lk_join(c.transfer["transfer_room"], f"agent-{c.b.id}")  # B's browser reaches LiveKit itself
    run.expect(c.a.post("/api/add-context", {"session_id": cid, "text": "Agent B is being briefed"}), {201})
    got = c.a.get(f"/api/calls/{cid}")
    if run.expect(got, {200}):
        body = got.json()["call"]
        if body["status"] != "on_hold" or body["transfers"][-1]["status"] != "briefing":
            run.problem(f"mid-consult the call reads {body['status']} / transfer {body['transfers'][-1]['status']}")
    run.expect(c.call.customer_request("GET", f"/api/calls/{cid}/status"), {200}, why="the customer's page")
    answer, c.a_stream = c.a.open_stream(last_seen)
    run.expect(answer, {200}, why="an event stream reconnecting needs no LiveKit")
    if c.a_stream is None or not c.a_stream.wait_for("transfer_accepted", lambda d: d["transfer_id"] == tid, 10):
        run.problem("Agent A's stream, reconnected with Last-Event-ID, did not replay transfer_accepted")

    calls_before = run.call_count()
    late = new_customer(run).request("POST", "/api/create-call", {"customer_name": "Late Caller"})
    run.expect(late, {503}, code="livekit_unavailable", why="a web customer needs a room now")
    if run.call_count() != calls_before:
        run.problem("create-call failed but a call row was written")

    run.expect(c.a.post("/api/complete-transfer", {"transfer_id": tid}), {200}, why="completing needs no LiveKit")
    run.lk_join(c.call.room, f"agent-{c.b.id}")  # Agent B's browser reaches the customer
    back = c.b.post("/api/initiate-transfer", {"session_id": cid, "to_agent_id": c.a.id})
    run.expect(back, {503}, code="livekit_unavailable", why="a transfer needs its room now")
    row = run.call_row(cid)
    if row.status != "transferred" or row.agent_id != c.b.id or len(run.transfers_of(cid)) != 1:
        run.problem(f"a failed initiate left the call {row.status}/{row.agent_id} with {len(run.transfers_of(cid))} transfers")
    if run.agent_row(c.a.id).active_call_id is not None:
        run.problem(f"a failed initiate gave Agent A the call slot {run.agent_row(c.a.id).active_call_id}")

    # A phone caller while nobody is free: answered with the hold loop; the room is a task.
    run.expect(c.a.post("/api/presence", {"status": "away"}), {200})
    caller, caller_call = run.phone_caller()
    caller_room = run.call_row(caller_call).room_name
    if "play" not in caller.kinds():
        run.problem(f"the phone caller did not get the hold loop: {caller.kinds()} {caller.spoken}")
    run.wait(lambda: run.task_failed_once("livekit.create_room", caller_room), "the caller's room creation failing and retrying", 10)
    run.wait(lambda: run.task_failed_once("livekit.delete_room", c.transfer["transfer_room"]),
             "the transfer room's deletion failing and retrying", 10)
    run.consistency(f"LiveKit {mode}")
    lk.stop()

    run.redeliver_webhooks()
    run.wait(lambda: caller_room in double.rooms, "the caller's room created once LiveKit is back", 20)
    run.wait(lambda: c.transfer["transfer_room"] not in double.rooms, "the transfer room deleted once LiveKit is back", 20)
    run.wait(lambda: run.transfer(tid).bridged_at is not None, "Agent B recorded with the customer", 10)
    caller.hang_up()
    run.deliver()
    run.wait(lambda: run.call_row(caller_call).status == "abandoned", "the caller who hung up in the queue abandoned", 10)
    run.settle(HANDOVER_JOIN_TIMEOUT_S + 5)
    run.consistency(f"after LiveKit {mode}")
    orphans = run.orphan_rooms()
    if orphans:
        run.notes.append(f"rooms LiveKit created for requests the app had given up on (reaped by LiveKit's empty timeout): {orphans}")

    run.expect(c.a.post("/api/presence", {"status": "available"}), {200})
    run.flow_completes()
    run.finish()
    run.report()


# -- Twilio REST -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_twilio_fails_mid_phone_transfer(run: Run, mode: str):
    """Twilio's REST API goes away while Agent B's phone rings, and again at the hand-over. The
    web never waits on Twilio: cancel and complete answer at once; hanging up and moving Agent
    B's leg are retried tasks; a dial that cannot be placed ends the transfer as `failed` for
    Agent A (and a call Twilio placed after all is cancelled by its first status callback)."""
    tw = Fault(run, "twilio", mode)
    c = run.consult(phone=True)
    tid, cid = c.transfer["id"], c.call.id
    first_leg = c.leg

    tw.start()
    run.expect(c.a.post("/api/cancel-transfer", {"transfer_id": tid}), {200}, why="cancelling needs no Twilio")
    if (run.transfer(tid).status, run.call_row(cid).status) != ("cancelled", "active"):
        run.problem(f"after cancel: transfer {run.transfer(tid).status}, call {run.call_row(cid).status}")
    run.wait(lambda: run.task_failed_once("twilio.update_leg", tid), "hanging up Agent B's ringing phone failing and retrying", 10)
    rejoined = c.a.post("/api/token", {"session_id": cid})
    if run.expect(rejoined, {200}) and rejoined.json()["room_name"] != c.call.room:
        run.problem(f"after cancel Agent A is sent to {rejoined.json()['room_name']}, not the customer")
    run.lk_join(c.call.room, f"agent-{c.a.id}")

    outbound_before = len(run.new_outbound())
    t2 = run.initiate(c.a, cid, to=c.b)  # 201 at once: dialling is the worker's
    failed, c.a_stream = event_reaches(run, c.a, c.a_stream, "transfer_failed", t2["id"], "a dial Twilio could not take")
    if failed and (failed["outcome"], failed["reason_code"]) != ("failed", "dial_failed"):
        run.problem(f"an undialable transfer ended {failed['outcome']}/{failed['reason_code']}: {failed['reason']}")
    if (run.transfer(t2["id"]).status, run.call_row(cid).status) != ("failed", "active"):
        run.problem(f"after the failed dial: transfer {run.transfer(t2['id']).status}, call {run.call_row(cid).status}")
    if mode == "down" and len(run.new_outbound()) != outbound_before:
        run.problem("a dial reached Twilio while it was down")
    if mode == "slow":
        # Twilio placed the call after the app had given up on the request: its first status
        # callback finds the transfer over, and the worker cancels the leg.
        late = run.wait(lambda: next((leg for leg in run.new_outbound() if t2["id"] in (leg.url or "")), None), "the late dial reaching Twilio", 10)
        run.deliver()
    else:
        late = None
    run.expect(c.a.post("/api/add-context", {"session_id": cid, "text": "Tried Agent B's phone twice"}), {201})
    run.expect(c.a.get(f"/api/calls/{cid}"), {200})
    run.consistency(f"Twilio {mode}")
    tw.stop()

    def legs_down() -> bool:
        run.deliver()
        return first_leg.ended and (late is None or late.ended)

    run.wait(legs_down, "Agent B's abandoned phone legs ended once Twilio is back", 20)

    # The flow again on the same call; Twilio breaks at the hand-over.
    t3 = run.initiate(c.a, cid, to=c.b)
    c.transfer, c.leg = t3, run.ringing_leg(c.b.phone, t3["id"])
    run.answer_by_phone(c)
    tw.start()
    run.expect(c.a.post("/api/complete-transfer", {"transfer_id": t3["id"]}), {200}, why="completing needs no Twilio")
    row = run.call_row(cid)
    if (row.status, row.agent_id, run.transfer(t3["id"]).status) != ("transferred", c.b.id, "completed"):
        run.problem(f"after complete: call {row.status}/{row.agent_id}, transfer {run.transfer(t3['id']).status}")
    run.wait(lambda: run.task_failed_once("twilio.update_leg", t3["id"]), "moving Agent B's leg failing and retrying", 10)
    run.consistency(f"Twilio {mode} at the hand-over")
    tw.stop()
    run.wait(lambda: run.transfer(t3["id"]).bridged_at is not None, "Agent B's leg with the customer once Twilio is back", 20)
    run.wait(lambda: t3["transfer_room"] not in run.stack.livekit.rooms, "the transfer room deleted after the move", 25)
    run.settle(HANDOVER_JOIN_TIMEOUT_S + 5)
    run.consistency(f"after Twilio {mode}")
    run.flow_completes(phone=True)
    run.finish()
    run.report()


# -- the LLM -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_llm_fails_mid_transfer(run: Run, mode: str):
    """The LLM goes away during a consult. Nothing waits on it beyond the summary budget: a new
    transfer is handed the offline summary, marked degraded; drafts fall back the same way."""
    llm = Fault(run, "llm", mode)
    c = run.consult()
    tid, cid = c.transfer["id"], c.call.id
    if c.transfer["summary"]["provider"] == "offline" or c.transfer["summary"]["degraded"]:
        run.problem(f"before the fault the summary came from {c.transfer['summary']['provider']}, not the LLM")

    llm.start()
    run.expect(c.b.post("/api/accept-transfer", {"transfer_id": tid}), {200})
    run.lk_join(c.transfer["transfer_room"], f"agent-{c.b.id}")
    run.expect(c.a.post("/api/add-context", {"session_id": cid, "text": "Refund approved for $89.00"}), {201})
    run.expect(c.a.get(f"/api/calls/{cid}/summary"), {200})
    edited = c.a.put(f"/api/calls/{cid}/summary", {"text": "Double charge on A-7731; refund approved."})
    run.expect(edited, {200}, why="editing the summary while the LLM is away")
    run.expect(c.a.post("/api/complete-transfer", {"transfer_id": tid}), {200})
    run.lk_join(c.call.room, f"agent-{c.b.id}")
    run.expect(c.b.post("/api/add-context", {"session_id": cid, "text": "Customer asks for a supervisor"}), {201})

    started = time.monotonic()
    back = c.b.post("/api/initiate-transfer", {"session_id": cid, "to_agent_id": c.a.id})
    took = time.monotonic() - started
    if run.expect(back, {201}, why="a transfer must not wait on the LLM"):
        t2 = back.json()["transfer"]
        run.transfer_ids.add(t2["id"])
        summary = t2["summary"]
        if not summary["degraded"] or summary["provider"] != "offline":
            run.problem(f"with the LLM {mode} the transfer summary is {summary['provider']} (degraded={summary['degraded']})")
        if took > SUMMARY_BUDGET_S + 2.5:
            run.problem(f"initiate took {took:.1f}s with the LLM {mode} (summary budget {SUMMARY_BUDGET_S:g}s)")
        run.lk_join(t2["transfer_room"], f"agent-{c.b.id}")
        run.expect(c.a.post("/api/accept-transfer", {"transfer_id": t2["id"]}), {200})
        run.expect(c.b.post("/api/complete-transfer", {"transfer_id": t2["id"]}), {200})
        run.lk_join(c.call.room, f"agent-{c.a.id}")
        run.wait(lambda: run.transfer(t2["id"]).bridged_at is not None, "Agent A recorded with the customer", 10)
    run.wait(lambda: (s := run.latest_summary(cid)) is not None and s.degraded, "a degraded draft while the LLM is away", 10)
    run.consistency(f"LLM {mode}")
    llm.stop()

    run.settle(HANDOVER_JOIN_TIMEOUT_S + 5)
    run.flow_completes(expect_llm=True)
    run.finish()
    run.report()


# -- the database ------------------------------------------------------------------------------
def test_database_unreachable_mid_transfer(run: Run):
    """PostgreSQL goes away while Agent B's dashboard rings and stays away past the ring
    deadline. Every request is a typed 503 (`db_unavailable`; Twilio's webhooks get their TwiML
    apology with 200); once it is back the ring timer ends the transfer (`no_answer`), Agent A is
    told on the stream they kept or on reconnecting, and the flow completes on the same call.
    Then a request whose connection is cut half-way through its transaction: all or nothing."""
    db = Fault(run, "database", "down")
    double = run.stack.livekit
    c = run.consult()
    tid, cid = c.transfer["id"], c.call.id
    rooms_before = set(double.rooms)

    db.start()
    for answer in (
        c.b.post("/api/accept-transfer", {"transfer_id": tid}),
        c.a.post("/api/add-context", {"session_id": cid, "text": "Still on hold"}),
        c.a.get(f"/api/calls/{cid}"),
        c.a.post("/api/cancel-transfer", {"transfer_id": tid}),
        c.call.customer_request("GET", f"/api/calls/{cid}/status"),
        new_customer(run).request("POST", "/api/create-call", {"customer_name": "Late Caller"}),
        new_customer(run).request("POST", "/api/login", {"agent_id": c.a.id, "password": c.a.password}),
    ):
        run.expect(answer, {503}, code="db_unavailable", why="the database is unreachable")
    answer, _ = c.a.open_stream(c.a_stream.last_id)
    run.expect(answer, {503}, code="db_unavailable", why="an event stream reconnecting without a database")
    health = Http(run.stack, run).request("GET", "/api/health", check=False)  # {"status": ...}, not an error body
    if health.status not in (200, 503) or '"status"' not in health.text:
        run.problem(f"health without a database: {health}")
    try:
        voice = run.stack.sim.call_in(CALLER_WHILE_DOWN)
        if "hangup" not in voice.kinds():
            run.problem(f"Twilio's voice webhook without a database did not apologise and hang up: {voice.kinds()}")
    except AssertionError as err:
        run.problem(f"Twilio's voice webhook without a database: {err}")
    run.lk_join(c.call.room, f"customer-{cid}")  # the customer's page reloads: LiveKit's webhook gets a 503, retried later
    if set(double.rooms) - rooms_before:
        run.problem(f"a failed create-call left a room in LiveKit: {sorted(set(double.rooms) - rooms_before)}")
    requested_at = run.transfer(tid).requested_at  # the test's own connection is direct
    until(lambda: utcnow() > requested_at + timedelta(seconds=RING_TIMEOUT_S + 0.5), "the ring deadline passing", RING_TIMEOUT_S + 5)
    db.stop()

    run.redeliver_webhooks()  # livekit-server retries what got a 503 (the customer's reload)
    t = run.wait(lambda: (t := run.transfer(tid)).status not in ("pending", "ringing") and t, "the transfer past its ring deadline ended", 15)
    if t is not None and t.status != "no_answer":
        run.problem(f"the transfer nobody could answer (its ring deadline passed during the outage) ended {t.status}")
    if run.call_row(cid).status != "active":
        run.problem(f"after the transfer ended the call is {run.call_row(cid).status}")
    told, c.a_stream = event_reaches(run, c.a, c.a_stream, "transfer_failed", tid, "Agent A after the outage")
    if told is not None and told["outcome"] != "no_answer":
        run.problem(f"Agent A was told {told['outcome']}/{told['reason_code']}, not no_answer")
    run.consistency("after the database is back")

    # The flow completes on the same call.
    t2 = transfer_again_and_complete(run, c)
    run.wait(lambda: run.transfer(t2["id"]).bridged_at is not None, "Agent B recorded with the customer", 10)

    # Connections cut with statements in flight: every statement is held (the database is
    # answering nothing), the requests have sent theirs, and then the link is cut. Each request
    # is a typed 503 (or a success), and what it was doing committed entirely or not at all.
    c2 = run.consult()
    cut = Fault(run, "database", "down")
    cut.proxy.slow(30)
    base = cut.proxy.stats.delayed_chunks
    in_flight = [
        lambda: c2.b.post("/api/accept-transfer", {"transfer_id": c2.transfer["id"]}),
        lambda: c2.a.post("/api/add-context", {"session_id": c2.call.id, "text": "Cut mid-sentence"}),
        lambda: c2.a.get(f"/api/calls/{c2.call.id}"),
        lambda: c2.call.customer_request("GET", f"/api/calls/{c2.call.id}/status"),
    ]
    answers: list[Answer] = []
    threads = [threading.Thread(target=lambda fn=fn: answers.append(fn())) for fn in in_flight]
    for thread in threads:
        thread.start()
    run.wait(lambda: cut.proxy.stats.delayed_chunks >= base + len(in_flight), "the requests' statements in flight", 5)
    cut.start()  # down: cut every connection, statements and all
    for thread in threads:
        thread.join(API_BOUND_S + 5)
    cut.stop()
    for answer in answers:
        run.expect(answer, {200, 201, 503}, why="a request whose database connection was cut with a statement in flight")
    status = run.transfer(c2.transfer["id"]).status
    run.consistency("after connections were cut mid-statement")
    if status == "ringing":
        run.expect(c2.b.post("/api/accept-transfer", {"transfer_id": c2.transfer["id"]}), {200}, why="accepting again once the database is back")
    run.expect(c2.a.post("/api/complete-transfer", {"transfer_id": c2.transfer["id"]}), {200})
    c2.agent_b_reaches_customer()
    run.settle(HANDOVER_JOIN_TIMEOUT_S + 5)
    run.consistency("after the database faults")
    run.finish()
    run.report()


def test_database_slow_mid_transfer(run: Run):
    """PostgreSQL answers, but each exchange takes 3 s (a congested network, a failover in
    progress) while Agent B's dashboard rings. Every API answer must still come within the bound
    (a success or a typed 503), and once the database is quick again nothing is half-written and
    the transfer finishes one way or another, then completes."""
    db = Fault(run, "database", "slow")
    c = run.consult()
    tid, cid = c.transfer["id"], c.call.id

    db.start()
    requests_in_flight = [
        lambda: c.b.post("/api/accept-transfer", {"transfer_id": tid}),
        lambda: c.a.post("/api/add-context", {"session_id": cid, "text": "Slow systems today"}),
        lambda: c.a.get(f"/api/calls/{cid}"),
        lambda: c.call.customer_request("GET", f"/api/calls/{cid}/status"),
        lambda: new_customer(run).request("POST", "/api/create-call", {"customer_name": "Late Caller"}),
        lambda: c.a.open_stream(c.a_stream.last_id),
    ]
    threads = [threading.Thread(target=fn) for fn in requests_in_flight]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(API_BOUND_S + 5)
    health = Http(run.stack, run).request("GET", "/api/health", check=False)
    if health.error or health.status not in (200, 503):
        run.problem(f"health with a slow database: {health}")
    db.stop()

    # Whatever got through: the transfer is briefing (the accept committed after all) or it
    # ended (the ring deadline passed); finish it either way.
    t = run.wait(lambda: (t := run.transfer(tid)).status != "ringing" and t, "the transfer out of ringing", RING_TIMEOUT_S + 10)
    run.consistency("after the database is quick again")
    if t is not None and t.status == "briefing":
        run.expect(c.a.post("/api/complete-transfer", {"transfer_id": tid}), {200})
        run.lk_join(c.call.room, f"agent-{c.b.id}")
    else:
        transfer_again_and_complete(run, c)
    run.settle(HANDOVER_JOIN_TIMEOUT_S + 5)
    run.consistency("after the slow database")
    run.flow_completes()
    run.finish()
    run.report()


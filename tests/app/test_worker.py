"""The worker: tasks written with each change run after it, once in effect, by any worker; timers
fire on their own; a task that cannot succeed is visible and can be retried."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import update

from app import outbox
from app.models import Task, Transfer, utcnow
from app.services import effects
from app.worker import Worker
from tests.support import run_tasks, start_call, start_transfer


def _until(predicate, timeout=10.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.02)  # a background worker is doing the work; we look now and then


def _make_due(services, kind: str) -> None:
    """Time passes for one kind of timer: it is due now (its handler re-checks the facts)."""
    with services.db.transaction() as s:
        s.execute(update(Task).where(Task.kind == kind, Task.state == "pending").values(due_at=utcnow()))


def test_a_running_worker_fires_timers_and_runs_side_effects_on_its_own(client, make_agent, services, livekit_double):
    worker = Worker(services, hold_audio=False, poll_s=0.02).start()
    try:
        a, _b = make_agent("alice"), make_agent("bob")
        call = start_call(client, a)
        t = start_transfer(a, call, "bob")
        with services.db.transaction() as s:
            s.execute(update(Transfer).where(Transfer.id == t["id"]).values(requested_at=utcnow() - timedelta(minutes=5)))
        _make_due(services, effects.TRANSFER_RING_TIMER)
        _until(lambda: "transfer_failed" in a.types(), what="ring timeout")
        assert [n["payload"]["outcome"] for n in a.notifications() if n["type"] == "transfer_failed"] == ["no_answer"]
        _until(lambda: t["transfer_room"] not in livekit_double.rooms, what="transfer room deletion")
        # The periodic jobs were scheduled by the worker itself, once each.
        # One read (one snapshot): a job may be running right now, which counts as scheduled.
        scheduled = [x for x in outbox.list_tasks(services.db, limit=2000) if x.state in ("pending", "running")]
        periodic = [x.kind for x in scheduled if x.kind.startswith("periodic.")]
        assert sorted(periodic) == sorted(set(periodic)) and "periodic.prune_events" in periodic
    finally:
        worker.stop()


def test_one_hung_task_holds_up_nothing_else(client, make_agent, services, livekit_double):
    """LiveKit stops answering: the worker's room deletions wait, and a ring timeout still fires."""
    a, _b, c, _d = make_agent("alice"), make_agent("bob"), make_agent("carol"), make_agent("dave")
    t1 = start_transfer(a, start_call(client, a), "bob")
    t2 = start_transfer(c, start_call(client, c, "Second Caller"), "dave")
    run_tasks(services)
    worker = Worker(services, hold_audio=False, poll_s=0.02, threads=4).start()
    try:
        livekit_double.hang()
        assert a.post("/api/cancel-transfer", {"transfer_id": t1["id"]}).status_code == 200  # deletes a room: hangs
        _until(lambda: livekit_double.hung, what="the worker reaching LiveKit")
        with services.db.transaction() as s:
            s.execute(update(Transfer).where(Transfer.id == t2["id"]).values(requested_at=utcnow() - timedelta(minutes=5)))
        _make_due(services, effects.TRANSFER_RING_TIMER)
        _until(lambda: [n for n in c.notifications() if n["type"] == "transfer_failed" and n["payload"]["transfer_id"] == t2["id"]],
               what="the second transfer's ring timeout while LiveKit hangs")
        assert effects.DELETE_ROOM in [x.kind for x in outbox.list_tasks(services.db, state="running")]
    finally:
        livekit_double.release()
        worker.stop()


def test_tasks_survive_a_dead_worker_and_run_once_with_two_workers_competing(make_app, livekit_double, services):
    rooms = [f"call_room{i:02d}" for i in range(40)]
    for room in rooms:
        services.livekit.create_room(room, metadata={})
    with services.db.transaction() as s:
        for room in rooms:
            effects.delete_room(s, room)
    # A worker claimed the first five and died: their claim has lapsed.
    with services.db.transaction() as s:
        first = s.scalars(Task.__table__.select().with_only_columns(Task.id).order_by(Task.id).limit(5)).all()
        s.execute(update(Task).where(Task.id.in_(first)).values(state="running", claimed_by="dead-worker", attempts=1, lease_until=utcnow()))
    # Two workers (as two processes would: separate services, separate pools) on the same database.
    other = make_app().extensions["wt"]
    workers = [Worker(services, hold_audio=False, poll_s=0.01, threads=4), Worker(other, hold_audio=False, poll_s=0.01, threads=4)]
    for w in workers:
        w.start()
    try:
        _until(lambda: outbox.counts(services.db).get("done", 0) >= len(rooms), timeout=30, what="all deletions done")
    finally:
        for w in workers:
            w.stop()
    assert not set(rooms) & set(livekit_double.rooms)
    deleted = [r.request.room for r in livekit_double.calls("DeleteRoom")]
    assert sorted(deleted) == sorted(rooms)  # each exactly once, although two workers raced for them
    done_by = {t.claimed_by for t in outbox.list_tasks(services.db, limit=100) if t.kind == effects.DELETE_ROOM}
    assert done_by <= {w.holder for w in workers}  # the dead worker's five were taken over


def test_a_task_lost_to_another_worker_is_not_marked_done_by_the_first(services):
    with services.db.transaction() as s:
        effects.delete_room(s, "call_lost")
    (task,) = outbox.claim(services.db, "slow-worker", limit=1, lease_s=10)
    with services.db.transaction() as s:  # its lease lapsed and another worker took it over
        s.execute(update(Task).where(Task.id == task.id).values(claimed_by="other-worker"))
    with services.db.transaction() as s:
        assert outbox.finish(s, task.id, "slow-worker") is False
    assert outbox.list_tasks(services.db)[0].state == "running"


def test_transient_failures_are_retried_with_backoff_then_recorded_as_failed(services, livekit_double, tasks):
    services.livekit.create_room("call_flaky", metadata={})
    with services.db.transaction() as s:
        effects.delete_room(s, "call_flaky")
    for _ in range(3):
        livekit_double.fail_next("DeleteRoom", 503, "unavailable", "restarting")
    tasks()
    (task,) = outbox.list_tasks(services.db)
    assert task.state == "pending" and task.attempts == 1 and "restarting" in task.last_error
    assert (task.due_at - utcnow()).total_seconds() > 0.5  # backed off, not hammering LiveKit
    tasks(after_s=3)
    tasks(after_s=10)
    task = outbox.list_tasks(services.db)[0]
    assert task.state == "pending" and task.attempts == 3
    tasks(after_s=30)
    task = outbox.list_tasks(services.db)[0]
    assert task.state == "done" and task.attempts == 4 and "call_flaky" not in livekit_double.rooms

    with services.db.transaction() as s:
        outbox.enqueue(s, effects.DELETE_ROOM, {"room": "call_gone_for_good"}, max_attempts=2)
    for _ in range(2):
        livekit_double.fail_next("DeleteRoom", 503, "unavailable", "down")
    tasks()
    tasks(after_s=5)
    assert outbox.list_tasks(services.db)[0].state == "failed"


def test_failed_tasks_are_listed_and_retried_from_the_cli(app, services, livekit_double, tasks):
    services.livekit.create_room("call_denied", metadata={})
    with services.db.transaction() as s:
        effects.delete_room(s, "call_denied")
    livekit_double.fail_next("DeleteRoom", 403, "permission_denied", "no roomCreate grant")
    tasks()  # a refusal is not retried by itself
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["tasks", "list", "--failed"])
    assert listed.exit_code == 0 and "livekit.delete_room" in listed.output and "no roomCreate grant" in listed.output
    assert "1 failed" in listed.output
    assert "call_denied" in livekit_double.rooms
    retried = runner.invoke(args=["tasks", "retry", "--all-failed"])
    assert retried.exit_code == 0 and "1 task(s) queued again" in retried.output
    tasks()
    assert "call_denied" not in livekit_double.rooms
    assert runner.invoke(args=["tasks", "retry"]).exit_code != 0  # says what it needs


def test_a_chained_cleanup_runs_even_when_the_step_before_it_failed(services, livekit_double, tasks):
    services.livekit.create_room("transfer_x_1", metadata={})
    with services.db.transaction() as s:
        outbox.enqueue(s, "no.such.kind", {"then": [effects.delete_room_step("transfer_x_1")]})
    tasks()
    states = {t.kind: t.state for t in outbox.list_tasks(services.db)}
    assert states == {"no.such.kind": "failed", effects.DELETE_ROOM: "done"}
    assert "transfer_x_1" not in livekit_double.rooms


def test_stopping_a_worker_lets_its_running_task_finish(services, livekit_double):
    services.livekit.create_room("call_slow", metadata={})
    with services.db.transaction() as s:
        effects.delete_room(s, "call_slow")
    livekit_double.hang()
    worker = Worker(services, hold_audio=False, poll_s=0.01).start()
    _until(lambda: livekit_double.hung, what="the deletion under way")
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    livekit_double.release()
    stopper.join(30)
    assert not stopper.is_alive()
    assert [t.state for t in outbox.list_tasks(services.db) if t.kind == effects.DELETE_ROOM] == ["done"]
    assert "call_slow" not in livekit_double.rooms

"""The task runner: claim due tasks, run each on a thread of its own, record how it went.

Tasks run concurrently (WORKER_THREADS), so one hung LiveKit or Twilio request delays nothing
else. A running task's lease is renewed while it runs; if this process dies, the lease lapses and
another worker claims the task again. Outcomes, decided by what the handler raises:
- returns: done (and its `then` follow-ups are enqueued);
- `NotYet(due_at)`: a timer that is not due yet goes back to pending at that time;
- a transient error (LiveKit or Twilio unreachable, a 5xx, the database): retried with
  exponential backoff until `max_attempts`, then failed;
- `Permanent` or another refusal (a 4xx): failed at once.
Failed tasks stay in the table (`flask --app app tasks list --failed`, `tasks retry`).
"""
from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import psycopg
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from app import metrics, outbox
from app.errors import AppError, ServiceUnavailable, TwilioUnavailable
from app.logs import log_context
from app.models import utcnow
from app.protocol import parse_room
from app.worker.tasks import HANDLERS, PERIODIC, NotYet, Permanent, TaskContext

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
# PostgreSQL: after a NOTIFY, wait this long for the rest of a burst before claiming.
CLAIM_BATCH_S = 0.02


def task_log_context(task: outbox.Claimed) -> dict[str, object]:
    """What a task's log lines are about: the task, and the call, transfer and agent its payload
    names (a room names its call). Nothing else from the payload: it may hold a phone number."""
    payload = task.payload if isinstance(task.payload, dict) else {}
    ids = {key: payload.get(key) for key in ("call_id", "transfer_id", "agent_id")}
    room = parse_room(payload["room"]) if isinstance(payload.get("room"), str) else None
    if not ids["call_id"] and room is not None:
        ids["call_id"] = room.call_id
    return {"task_id": task.id, "task_kind": task.kind, **{k: v for k, v in ids.items() if isinstance(v, (str, int))}}


def backoff(attempts: int) -> float:
    """Seconds before retry number `attempts` (1, 2, 4, ... capped), with ±20% jitter so that
    many tasks failing together do not retry together."""
    delay = min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S)
    return delay * random.uniform(0.8, 1.2)


def _transient(err: BaseException) -> bool:
    if isinstance(err, (OperationalError, TwilioUnavailable)):
        return True
    if isinstance(err, ServiceUnavailable):
        # LiveKitUnavailable and friends; LiveKitFailed is a refusal (a 4xx from LiveKit).
        return err.code != "livekit_error"
    if isinstance(err, AppError):
        return False
    return not isinstance(err, Permanent)


class Worker:
    def __init__(self, services, *, threads: int | None = None, poll_s: float | None = None, lease_s: float | None = None, hold_audio: bool = True):
        settings = services.settings
        self.services = services
        self.db = services.db
        self.threads = threads or settings.WORKER_THREADS
        self.poll_s = poll_s if poll_s is not None else settings.WORKER_POLL_INTERVAL_S
        self.lease_s = lease_s or settings.WORKER_TASK_LEASE_S
        self.holder = outbox.worker_id()
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[int, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: psycopg.Connection | None = None
        self.hold = None
        if hold_audio:
            from app.worker.hold import HoldPlayer  # imports the LiveKit real-time SDK: workers only

            self.hold = HoldPlayer(services, self.holder)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Worker:
        """Run in background threads of this process (tests, the live rig)."""
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="task")
        outbox.add_local_waker(self._wake.set)
        ensure_periodic(self.db)
        self._spawn(self._loop, "task-claimer")
        self._spawn(self._renew_loop, "task-leases")
        if self.db.is_postgres:
            self._spawn(self._listen, "task-listener")
        if self.hold is not None:
            self.hold.start()
        log.info("worker %s started: %d task threads, hold audio %s", self.holder, self.threads, "on" if self.hold else "off")
        return self

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop claiming, let running tasks finish (up to `timeout`), leave held rooms."""
        self._stop.set()
        self._wake.set()
        outbox.remove_local_waker(self._wake.set)
        if self.hold is not None:
            self.hold.stop()
        for thread in self._threads:  # the claimer first: nothing is claimed after this
            if thread.name == "task-claimer":
                thread.join(timeout=timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
        for thread in self._threads:
            thread.join(timeout=timeout)
        if self._listener is not None and not self._listener.closed:
            self._listener.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # -- claiming ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            claimed = 0
            try:
                claimed, full = self._claim_and_submit()
                if full:
                    continue  # there may be more: claim again before sleeping
            except SQLAlchemyError as err:  # the database is down: keep trying, never die
                metrics.external_error("database", "unavailable")
                log.warning("worker cannot claim tasks: %s", err)
                self._stop.wait(1.0)
            # After a claim, the next wake-up (a commit's NOTIFY, a finished task) comes soon; only an
            # idle worker asks when the next timer is due, so a burst of tasks costs no extra queries.
            timeout = self._sleep_s() if not claimed else min(self.poll_s, 0.25) if not self.db.is_postgres else 0.25
            if self._wake.wait(timeout) and self.db.is_postgres:
                # Commits arrive one by one: let a burst land, then claim it in one statement.
                self._stop.wait(CLAIM_BATCH_S)
            self._wake.clear()

    def _sleep_s(self) -> float:
        try:
            due = outbox.next_due(self.db)
        except SQLAlchemyError:
            return self.poll_s
        if due is None:
            return self.poll_s if not self.db.is_postgres else 1.0
        seconds = (due - utcnow()).total_seconds()
        # On SQLite nobody can wake us from another process, so never sleep past one poll.
        ceiling = 1.0 if self.db.is_postgres else self.poll_s
        return min(max(seconds, 0.0), ceiling)

    def _claim_and_submit(self) -> tuple[int, bool]:
        """Claim as many due tasks as there are free threads: (how many, whether that was all)."""
        with self._lock:
            free = self.threads - len(self._inflight)
        if free <= 0 or self._stop.is_set():
            return 0, False
        claimed = outbox.claim(self.db, self.holder, limit=free, lease_s=self.lease_s)
        for task in claimed:
            with self._lock:
                self._inflight[task.id] = task.kind
            self._pool.submit(self._run_logged, task)
        return len(claimed), len(claimed) == free

    def _run_logged(self, task: outbox.Claimed) -> None:
        try:
            with log_context(**task_log_context(task)):
                try:
                    self.execute(task)
                except SQLAlchemyError as err:
                    # The database failed while the outcome was being recorded: the task stays claimed
                    # until its lease passes, then runs again (handlers are idempotent).
                    log.warning("task %s (%s): outcome not recorded, it will run again after its lease: %s", task.id, task.kind, err)
                except Exception:  # the runner itself must survive anything a task does
                    log.exception("task %s (%s) crashed the runner", task.id, task.kind)
        finally:
            with self._lock:
                self._inflight.pop(task.id, None)
            self._wake.set()  # a thread is free again

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self._lock:
                ids = list(self._inflight)
            try:
                outbox.renew(self.db, self.holder, ids, self.lease_s)
            except SQLAlchemyError as err:
                log.warning("worker cannot renew task leases: %s", err)

    def _listen(self) -> None:
        """PostgreSQL: LISTEN for enqueues committed anywhere, so tasks start at once."""
        while not self._stop.is_set():
            try:
                self._listener = self.db.listener()
                self._listener.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                while not self._stop.is_set():
                    for _ in self._listener.notifies(timeout=1.0, stop_after=1):
                        self._wake.set()
            except psycopg.Error as err:
                if self._stop.is_set():
                    return
                log.warning("task listener connection failed (%s); polling until it is back", err)
                self._stop.wait(1.0)
            finally:
                if self._listener is not None:
                    self._listener.close()

    # -- running one task --------------------------------------------------------------------
    def execute(self, task: outbox.Claimed, now: datetime | None = None) -> str:
        """Run a claimed task and record the outcome: done | later | retry | failed | lost."""
        with log_context(**task_log_context(task)):
            return self._execute(task, now)

    def _execute(self, task: outbox.Claimed, now: datetime | None) -> str:
        handler = HANDLERS.get(task.kind)
        if handler is None:
            return self._give_up(task, f"no handler for task kind {task.kind!r}")
        ctx = TaskContext(self.services, now or utcnow(), task.attempts)
        try:
            handler(ctx, task.payload)
        except NotYet as later:
            outbox.reschedule(self.db, task.id, self.holder, later.due_at, count_attempt=False)
            return "later"
        except Exception as err:  # classified below: retried, or recorded as failed
            message = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
            if _transient(err) and task.attempts < task.max_attempts:
                log.warning("task %s (%s) attempt %d failed, will retry: %s", task.id, task.kind, task.attempts, message)
                if not isinstance(err, (AppError, OperationalError)):
                    log.exception("task %s (%s) raised", task.id, task.kind)
                outbox.reschedule(self.db, task.id, self.holder, ctx.now + timedelta(seconds=backoff(task.attempts)), error=message)
                return "retry"
            return self._give_up(task, message)
        with self.db.transaction() as s:
            if not outbox.finish(s, task.id, self.holder):
                log.warning("task %s (%s) finished after its lease passed to another worker", task.id, task.kind)
                return "lost"
            _follow_up(s, task)
        return "done"

    def _give_up(self, task: outbox.Claimed, message: str) -> str:
        log.error("task %s (%s) failed after %d attempt(s): %s", task.id, task.kind, task.attempts, message)
        with self.db.transaction() as s:
            if not outbox.fail(s, task.id, self.holder, message):
                return "lost"
            _follow_up(s, task)  # clean-up chained after a failed step must still happen
        return "failed"

    # -- synchronous use (tests, `flask tasks run-due`) ----------------------------------------
    def run_due(self, at: datetime | None = None, *, max_rounds: int = 100, kinds: frozenset[str] | None = None) -> int:
        """Claim and run, one by one on this thread, every task due by `at` (default: now),
        including the follow-ups they enqueue. Returns how many ran (timers not yet due excluded).

        Passing a future `at` is how tests let time pass: the tasks that exist now run as if it
        were `at`; tasks created during this run were created "now" and keep the real clock (a
        call reassigned by a fired timer gets its own full answer time, not a head start).
        `kinds` limits the first kind of claim to those task kinds (a test moving one clock)."""
        horizon = outbox.newest_id(self.db) if at is not None else None
        ran = 0
        for _ in range(max_rounds):
            batch = outbox.claim(self.db, self.holder, limit=50, lease_s=self.lease_s, now=at, max_id=horizon, kinds=kinds)
            if not batch and horizon is not None:
                batch = outbox.claim(self.db, self.holder, limit=50, lease_s=self.lease_s)
            if not batch:
                return ran
            for task in batch:
                moved = horizon is not None and task.id <= horizon and (kinds is None or task.kind in kinds)
                clock = at if moved else None
                if self.execute(task, now=clock) != "later":
                    ran += 1
        raise RuntimeError(f"tasks still due after {max_rounds} rounds: a task keeps re-enqueueing itself")


def _follow_up(s, task: outbox.Claimed) -> None:
    for step in task.payload.get("then") or ():
        outbox.enqueue(s, step["kind"], step.get("payload") or {}, delay_s=float(step.get("delay_s") or 0.0))
    interval = PERIODIC.get(task.kind)
    if interval is not None:
        outbox.enqueue(s, task.kind, {}, delay_s=interval, dedupe_key="periodic")


def ensure_periodic(db) -> None:
    """One pending instance of every periodic job (a no-op where one exists)."""
    with db.transaction() as s:
        for kind in PERIODIC:
            outbox.enqueue(s, kind, {}, dedupe_key="periodic")

"""How long the supervisor's reads take on a busy database: the floor (read on every change while a
supervisor's page is open) and the transfer figures for a day and for a month, and the day's CSV.

The database is filled with --days of history at --calls-per-day (a third of calls transferred,
outcomes mixed, some missed calls), --live calls in progress and --agents agents, written as rows
directly (the flows that write them are measured elsewhere); then each read runs --repeat times.
SQLite in a temporary file by default; BENCH_DATABASE_URL=postgresql://... for PostgreSQL (the
database must be empty: its tables are created here, and dropped at the end).

Usage: .venv/bin/python -m bench.supervisor_reads [--days 30] [--calls-per-day 2000] [--live 100]
       [--agents 200] [--repeat 20]
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

from app.db import Database, migrate
from app.models import Agent, Base, Call, Event, Transfer
from app.services.floor import FloorService, Window
from app.services.stats import StatsService, parse_period
from bench.common import describe

OUTCOMES = [("completed", None), ("completed", None), ("completed", None), ("declined", "declined"), ("no_answer", "no_answer"),
            ("no_answer", "machine"), ("caller_left", "caller_left"), ("cancelled", "cancelled"), ("failed", "dial_failed")]


def fill(db: Database, days: int, per_day: int, live: int, agents: int, now: datetime) -> dict:
    rng = random.Random(14)
    agent_ids = [f"agent{i:04d}" for i in range(agents)]
    counts = {"calls": 0, "transfers": 0, "events": 0}
    with db.transaction() as s:
        s.add_all(Agent(id=a, name=f"Agent {i}", password_hash="x", presence=rng.choice(["available", "away", "offline"]))
                  for i, a in enumerate(agent_ids))
    for day in range(days, -1, -1):
        calls, transfers, events = [], [], []
        for n in range(per_day if day else 0):
            created = now - timedelta(days=day - 1, seconds=rng.uniform(60, 86_000))  # day 1: the last 24 h
            cid = f"c{day:03d}{n:06d}"
            owner = rng.choice(agent_ids)
            answered = created + timedelta(seconds=rng.uniform(1, 40))
            calls.append(dict(id=cid, room_name=f"call_{cid}", customer_name=f"Customer {n}", channel=rng.choice(["web", "phone"]),
                              status=rng.choice(["completed", "completed", "abandoned"]), agent_id=owner, created_at=created,
                              answered_at=answered, ended_at=answered + timedelta(minutes=5), status_changed_at=answered))
            if n % 3 == 0:
                status, reason = rng.choice(OUTCOMES)
                requested = answered + timedelta(seconds=60)
                b_answered = requested + timedelta(seconds=rng.uniform(2, 20)) if status in ("completed", "declined") else None
                handed = b_answered + timedelta(seconds=rng.uniform(10, 90)) if status == "completed" else None
                transfers.append(dict(
                    id=f"t{cid}", call_id=cid, from_agent_id=owner, to_agent_id=rng.choice(agent_ids), status=status,
                    transfer_room=f"transfer_{cid}", reason_code=reason, requested_at=requested,
                    notified_at=requested + timedelta(milliseconds=rng.uniform(5, 80)), answered_at=b_answered, handed_over_at=handed,
                    bridged_at=handed + timedelta(seconds=rng.uniform(0.2, 2)) if handed else None,
                    ended_at=handed or requested + timedelta(seconds=30), status_changed_at=handed or requested))
            if n % 20 == 0:
                events.append(dict(event_key=f"k{cid}", audience=owner, call_id=cid, type="call_missed", payload={}, created_at=created))
        if day == 0:
            for n in range(live):
                cid = f"live{n:05d}"
                status = ["queued", "ringing", "active", "on_hold", "transferred"][n % 5]
                calls.append(dict(id=cid, room_name=f"call_{cid}", customer_name=f"Live {n}", channel="phone", status=status,
                                  agent_id=None if status == "queued" else agent_ids[n % agents], created_at=now - timedelta(minutes=3),
                                  status_changed_at=now - timedelta(minutes=1)))
                if status == "on_hold":
                    transfers.append(dict(id=f"t{cid}", call_id=cid, from_agent_id=agent_ids[n % agents], to_agent_id=agent_ids[(n + 1) % agents],
                                          status="ringing", transfer_room=f"transfer_{cid}", requested_at=now - timedelta(seconds=20)))
        with db.transaction() as s:
            s.execute(Call.__table__.insert(), calls)
            if transfers:
                s.execute(Transfer.__table__.insert(), transfers)
            if events:
                s.execute(Event.__table__.insert(), events)
        counts["calls"] += len(calls)
        counts["transfers"] += len(transfers)
        counts["events"] += len(events)
    return counts


def timed(label: str, repeat: int, fn) -> None:
    fn()  # warm: caches, the first connection
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    print(describe(label, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls-per-day", type=int, default=2000)
    parser.add_argument("--live", type=int, default=100)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL")
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{tmp.name}/bench.db"
    db = Database(url)
    migrate(db)
    now = datetime.now(UTC)
    started = time.perf_counter()
    counts = fill(db, args.days, args.calls_per_day, args.live, args.agents, now)
    print(f"{db.url.split(':')[0]}: {counts['calls']} calls, {counts['transfers']} transfers, {counts['events']} missed-call events, "
          f"{args.agents} agents, {args.live} live calls (written in {time.perf_counter() - started:.1f} s)")
    floor, stats = FloorService(db), StatsService(db)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = parse_period((now - timedelta(days=1)).isoformat(), now.isoformat(), now)
    month = parse_period((now - timedelta(days=31)).isoformat(), now.isoformat(), now)
    timed("floor snapshot", args.repeat, lambda: floor.snapshot(Window(since=midnight)))
    timed("GET /api/stats, 24 h (+7-day trend)", args.repeat, lambda: stats.report(day))
    timed("GET /api/stats, 31 days", max(3, args.repeat // 4), lambda: stats.report(month))
    timed("GET /api/stats.csv, 24 h", args.repeat, lambda: stats.transfers_csv(day))
    if tmp is None:
        Base.metadata.drop_all(db.engine)
    db.dispose()


if __name__ == "__main__":
    main()

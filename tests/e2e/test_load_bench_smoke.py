"""The load run (bench/load_calls.py) in miniature, against gunicorn and a worker process on
PostgreSQL (SQLite when TEST_DATABASE_URL is unset; one backend, to stay well under a minute):
whatever the speed, once every call has played its scenario and the worker has
run its tasks, no call or transfer is left in a non-final state, every context entry the app
accepted can be read back, and no request got a 5xx. Speed is the benchmark's to print, not
this test's to judge."""
from __future__ import annotations

import os

import pytest

from bench.load_calls import Options, run

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("database_url", ["postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"], indirect=True)
def test_the_load_run_in_miniature_leaves_nothing_stuck_lost_or_failed(database_url, make_app):
    make_app()  # an empty, migrated database (the bench's server migrates again: idempotent)
    report = run(Options(
        calls=10, streams=20, seed=7, ring_timeout=5, answer_timeout=5, ramp=0.5, spread=0.5, think=0.1,
        database_url=database_url, fresh_database=False, quiet=True,
    ))
    printed = "\n".join(report.lines)

    assert report.calls == 10 and report.streams_ready == 20, printed
    assert sum(report.call_status.values()) == 10 and sum(report.transfer_outcome.values()) > 0, printed
    assert report.stuck == 0 and report.stuck_calls == [] and report.stuck_transfers == [], printed
    assert report.context_added > 0 and report.context_lost == [], printed
    assert sum(report.five_xx.values()) == 0 and report.server_errors == [], printed

"""app.metrics and app.metrics_export on their own: closed label sets, counting only what
committed, once-per-transfer, the bearer check, and a scrape that survives the database."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import metrics
from app.metrics_export import TaskStates, render, token_ok


def _count(counter, *labels) -> float:
    return counter.labels(*labels)._value.get()


def test_label_values_outside_the_closed_sets_become_other():
    assert metrics.closed("web", metrics.CHANNELS) == "web"
    assert metrics.closed("call_8f2a", metrics.CHANNELS) == "other"
    assert metrics.closed(None, metrics.CHANNELS) == "other"
    before = _count(metrics.EXTERNAL_ERRORS, "livekit", "other")
    metrics.external_error("livekit", "Connection reset by peer at 10.0.0.7")
    assert _count(metrics.EXTERNAL_ERRORS, "livekit", "other") == before + 1


def test_the_outcome_sets_are_the_state_machines_terminal_states():
    assert set(metrics.CALL_OUTCOMES) == {"completed", "abandoned", "failed"}
    assert "completed" in metrics.TRANSFER_OUTCOMES and "ringing" not in metrics.TRANSFER_OUTCOMES


def test_http_error_codes():
    assert [metrics.http_error_code(s) for s in (400, 404, 429, 500, 503, None)] == [
        "http_4xx", "http_4xx", "http_429", "http_5xx", "http_5xx", "unavailable"]


def test_after_commit_runs_only_for_a_commit():
    engine = create_engine("sqlite://")
    seen = []
    with Session(engine) as s:
        with s.begin():
            s.execute(text("SELECT 1"))
            metrics.after_commit(s, lambda: seen.append("committed"))
            assert seen == []
        assert seen == ["committed"]
        try:
            with s.begin():
                metrics.after_commit(s, lambda: seen.append("rolled back"))
                raise RuntimeError("the transaction fails")
        except RuntimeError:
            pass  # the rollback is the point of this block
        with s.begin():
            s.execute(text("SELECT 1"))  # a later commit must not run what was rolled back
        assert seen == ["committed"]


def test_first_seen_remembers_a_bounded_number_of_keys():
    seen = metrics.FirstSeen(size=2)
    assert [seen.first(k) for k in ("a", "a", "b", "c", "a")] == [True, False, True, True, True]


def test_token_check():
    assert token_ok("", None) and token_ok("", "Bearer anything")
    assert token_ok("s3cret", "Bearer s3cret") and token_ok("s3cret", "bearer s3cret")
    for header in (None, "", "s3cret", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret"):
        assert not token_ok("s3cret", header), header


class _DownDatabase:
    def reading(self):
        raise OperationalError("SELECT", {}, Exception("connection refused"))


def test_the_task_collector_yields_nothing_with_the_database_down():
    assert list(TaskStates(_DownDatabase()).collect()) == []
    names = {f.name for f in text_string_to_metric_families(render(_DownDatabase(), all_processes=True).decode())}
    assert "wt_tasks" not in names and {"wt_calls", "wt_transfers", "wt_external_errors"} <= names

"""`GET /metrics` after a warm transfer run through the app: every family the issue asks for is
there, and the flow just run moved exactly the series it should.

The registry is the process's (every app a test builds shares it), so each check compares the
scrape after the flow with the scrape before it, never absolute values."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from tests.livekit_webhooks import send
from tests.support import AgentClient, SSEReader, open_sse, start_call, start_transfer

REQUIRED = (
    "wt_calls", "wt_transfers", "wt_transfer_notify_seconds", "wt_handover_gap_seconds", "wt_queue_wait_seconds",
    "wt_sse_streams", "wt_webhook_seconds", "wt_tasks", "wt_llm_seconds", "wt_external_errors",
)
TOKEN = "metrics-token-" + "x" * 24


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """{family: {(sample name, sorted label items): value}} from the exposition text."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def value(families, family: str, sample: str, **labels) -> float:
    return families.get(family, {}).get((sample, tuple(sorted(labels.items()))), 0.0)


def _open(agent: AgentClient) -> SSEReader:
    return open_sse(agent.client, "/api/events")


def test_a_completed_transfer_shows_in_every_required_metric(client, make_agent, livekit_double, tasks):
    before = scrape(client)
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    stream = _open(b)
    stream.wait_for("ready")
    during = scrape(client)
    assert value(during, "wt_sse_streams", "wt_sse_streams") == value(before, "wt_sse_streams", "wt_sse_streams") + 1

    t = start_transfer(a, call, "bob")
    assert stream.wait_for("transfer_requested")["data"]["transfer_id"] == t["id"]
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    # LiveKit reports Agent B in the customer's room: the hand-over gap ends.
    bob = livekit_double.join(call["room_name"], "agent-bob")
    assert send(client, livekit_double, "participant_joined", room=call["room_name"], participant=bob) == "agent b bridged"
    tasks()
    r = b.post("/api/end-call", {"session_id": call["session_id"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    tasks()
    after = scrape(client)

    assert [name for name in REQUIRED if name not in after] == []

    def delta(family, sample, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    assert delta("wt_transfers", "wt_transfers_total", target="agent", outcome="completed") == 1
    assert delta("wt_transfers", "wt_transfers_total", target="agent", outcome="cancelled") == 0
    assert delta("wt_calls", "wt_calls_total", channel="web", outcome="completed") == 1
    assert delta("wt_transfer_notify_seconds", "wt_transfer_notify_seconds_count", target="agent") == 1
    assert delta("wt_handover_gap_seconds", "wt_handover_gap_seconds_count", target="agent") == 1
    assert delta("wt_queue_wait_seconds", "wt_queue_wait_seconds_count", channel="web") == 1
    assert delta("wt_webhook_seconds", "wt_webhook_seconds_count", route="livekit.webhook") == 1
    # The offline summarizer made the transfer's summary (and maybe drafts): at least one.
    assert delta("wt_llm_seconds", "wt_llm_seconds_count", provider="offline", outcome="ok") >= 1
    # The worker ran the flow's tasks (rooms deleted, participants removed), read from the table.
    assert value(after, "wt_tasks", "wt_tasks", state="done") > 0


def test_a_stream_is_counted_while_open(client, make_agent):
    b = make_agent("bob")
    before = value(scrape(client), "wt_sse_streams", "wt_sse_streams")
    response = b.client.get("/api/events", buffered=False)
    stream = SSEReader(response.response)
    stream.wait_for("ready")
    assert value(scrape(client), "wt_sse_streams", "wt_sse_streams") == before + 1
    assert b.post("/api/logout").status_code == 200  # session_ended: the server ends the stream
    assert stream.wait_for("__closed__")["event"] == "__closed__"
    response.close()  # what the WSGI server does with a finished body
    assert value(scrape(client), "wt_sse_streams", "wt_sse_streams") == before


def test_a_transfer_notified_twice_is_observed_once(client, make_agent):
    """Agent B's two tabs both get transfer_requested; the first one is the delivery."""
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    second = AgentClient(b.client.application.test_client(), "bob", b.password)
    second.login()
    tabs = [_open(b), _open(second)]
    for tab in tabs:
        tab.wait_for("ready")
    before = value(scrape(client), "wt_transfer_notify_seconds", "wt_transfer_notify_seconds_count", target="agent")
    start_transfer(a, call, "bob")
    for tab in tabs:
        tab.wait_for("transfer_requested")
    after = value(scrape(client), "wt_transfer_notify_seconds", "wt_transfer_notify_seconds_count", target="agent")
    assert after - before == 1


def test_a_transfer_ended_twice_is_counted_once(client, make_agent):
    a = make_agent("alice")
    make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    before = scrape(client)
    assert a.post("/api/cancel-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert a.post("/api/cancel-transfer", {"transfer_id": t["id"]}).status_code == 409  # already over: nothing counted
    after = scrape(client)
    key = ("wt_transfers_total", (("outcome", "cancelled"), ("target", "agent")))
    assert after["wt_transfers"][key] - before["wt_transfers"].get(key, 0) == 1


def test_the_token_is_required_when_set(make_app):
    guarded = make_app(METRICS_TOKEN=TOKEN).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
        r = guarded.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.json["error"]["code"] == "metrics_token_required"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "wt_calls" in scrape(guarded, Authorization=f"Bearer {TOKEN}")


def test_metrics_answer_with_the_database_down(app, client, services, monkeypatch):
    """Only wt_tasks needs the database: it is left out, the rest is served, and the scrape does
    not start the event dispatcher (which would wait on the database first)."""
    def down(*_a, **_kw):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(services.db, "reading", down)
    monkeypatch.setattr(services.dispatcher, "ensure_started", lambda: pytest.fail("a scrape started the dispatcher"))
    families = scrape(client)
    assert "wt_tasks" not in families and "wt_calls" in families

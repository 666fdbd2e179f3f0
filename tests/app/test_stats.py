"""Supervisor statistics (`GET /api/stats`, `GET /api/stats.csv`) over rows the app's own flows
wrote: web and phone callers, transfers to agents, a team and phone numbers ending every way a
transfer can end; timings over those rows with their timestamps pinned to known values."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from app.models import Call, Event, Transfer
from tests.support import AgentClient, start_call, start_transfer
from tests.telephony import dial_b, phone_call_with_context

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app: phone transfers too

B_PHONE, OTHER_PHONE = "+14155550199", "+442071838750"
ROUTES = ("/api/stats", "/api/stats.csv")


@pytest.fixture
def supervisor(make_agent):
    """Sue, a supervisor, signed in when asked (away, as supervisors sign in: no call of the flow
    is routed to her)."""
    sue = make_agent("sue", "Sue Visor", role="supervisor", login=False)

    def sign_in() -> AgentClient:
        sue.login()
        return sue

    return sign_in


def _ok(r, status: int = 200):
    assert r.status_code == status, r.get_data(as_text=True)
    return r


def _customer_hangs_up(client, call: dict) -> None:
    _ok(client.post("/api/end-call", json={"session_id": call["session_id"]}, headers={"X-Customer-Key": call["customer_key"]}))


def _run_every_outcome(client, make_agent, services, sim, tasks) -> None:
    """Eleven transfers, each ended a different way, and six calls (one abandoned after a miss).

    Agents are signed in just before their call: a new call goes to the available agent who has
    waited longest (never assigned first, then by id), so each `aN` takes the call meant for them."""
    a = {n: make_agent(n, f"Agent {n.upper()}", login=False) for n in ("a0", "a1", "a2", "a3", "a4", "a5")}
    b1 = make_agent("b1", "=Bob Baker", login=False)  # a name a spreadsheet would run as a formula
    c1 = make_agent("c1", "Carol Chen", login=False)
    services.teams.add("billing", "Billing", ())
    services.teams.set_agent_teams("c1", ("billing",))

    # a0 is given a call and never joins it: a missed call; the caller then gives up (abandoned).
    a["a0"].login()
    call0 = start_call(client)
    assert call0["agent_id"] == "a0"
    tasks(after_s=31)  # AGENT_ANSWER_TIMEOUT_S
    _customer_hangs_up(client, call0)

    # A phone caller, answered by a1; transfers to Bob and to a phone number end five ways.
    for who in (a["a1"], b1, c1):
        who.login()
    _caller, call1 = phone_call_with_context(sim, a["a1"], services)
    t = start_transfer(a["a1"], {"session_id": call1.id}, "b1")
    _ok(b1.post("/api/decline-transfer", {"transfer_id": t["id"]}))
    t = start_transfer(a["a1"], {"session_id": call1.id}, "b1")
    _ok(a["a1"].post("/api/cancel-transfer", {"transfer_id": t["id"]}))
    _body, leg = dial_b(sim, a["a1"], call1.id)
    leg.ring().finish("no-answer")
    sim.deliver()
    sim.fail_next_create(400, 21211)
    _ok(a["a1"].post("/api/initiate-transfer", {"session_id": call1.id, "to_phone": B_PHONE}), 201)
    tasks()  # the dial is refused: failed
    _body, leg = dial_b(sim, a["a1"], call1.id)
    leg.answer("machine_end_beep")
    sim.deliver()
    _body, leg = dial_b(sim, a["a1"], call1.id)
    leg.ring().finish("busy")
    sim.deliver()
    tasks()

    # a3 offers a call to the team; the caller hangs up while it rings.
    a["a3"].login()
    call3 = start_call(client, a["a3"])
    _ok(a["a3"].post("/api/initiate-transfer", {"session_id": call3["session_id"], "to_team": "billing"}), 201)
    _customer_hangs_up(client, call3)

    # a2 hands a call to Bob: completed.
    a["a2"].login()
    call2 = start_call(client, a["a2"])
    t = start_transfer(a["a2"], call2, "b1")
    _ok(b1.post("/api/accept-transfer", {"transfer_id": t["id"]}))
    _ok(a["a2"].post("/api/complete-transfer", {"transfer_id": t["id"]}))

    # a4 leaves during the briefing: Carol has the customer (completed).
    a["a4"].login()
    call4 = start_call(client, a["a4"])
    t = start_transfer(a["a4"], call4, "c1")
    _ok(c1.post("/api/accept-transfer", {"transfer_id": t["id"]}))
    assert _ok(a["a4"].post("/api/agent-exit-room", {"session_id": call4["session_id"]})).json["outcome"] == "handed_over"

    # a5 leaves while another number rings: failed.
    a["a5"].login()
    call5 = start_call(client, a["a5"])
    dial_b(sim, a["a5"], call5["session_id"], to_phone=OTHER_PHONE)
    assert _ok(a["a5"].post("/api/agent-exit-room", {"session_id": call5["session_id"]})).json["outcome"] == "requeued"
    tasks()

    # Still ringing when the statistics are read.
    _body, leg = dial_b(sim, a["a1"], call1.id)
    leg.ring()


def test_every_outcome_target_and_call_count_from_the_flows(client, make_agent, services, sim, tasks, supervisor):
    _run_every_outcome(client, make_agent, services, sim, tasks)
    sue = supervisor()
    r = _ok(sue.get("/api/stats"))
    assert r.headers["Cache-Control"] == "private, no-store"
    stats = r.json
    assert stats["calls"] == {"total": 6, "answered": 5, "abandoned": 1, "missed": 1, "by_channel": {"web": 5, "phone": 1}}
    transfers = stats["transfers"]
    assert transfers["total"] == 11
    assert [(o["outcome"], o["label"], o["count"]) for o in transfers["by_outcome"]] == [
        ("completed", "Accepted / completed", 2),  # Bob after complete; Carol after Agent A left the briefing
        ("declined", "Declined", 1),
        ("no_answer", "Not answered", 2),  # no-answer and busy
        ("machine", "Voicemail / machine", 1),
        ("caller_left", "Caller hung up", 1),
        ("cancelled", "Cancelled", 1),
        ("failed", "Failed", 2),  # the refused dial; Agent A leaving while it rang
        ("in_progress", "In progress", 1),
    ]
    assert transfers["by_target"] == [
        {"kind": "phone", "id": "••0199", "label": "Phone ••0199", "count": 5, "completed": 0},
        {"kind": "agent", "id": "b1", "label": "=Bob Baker", "count": 3, "completed": 1},
        {"kind": "team", "id": "billing", "label": "Billing", "count": 1, "completed": 0},
        {"kind": "agent", "id": "c1", "label": "Carol Chen", "count": 1, "completed": 1},
        {"kind": "phone", "id": "••8750", "label": "Phone ••8750", "count": 1, "completed": 0},
    ]
    text = r.get_data(as_text=True)
    assert "4155550199" not in text and "2071838750" not in text  # numbers only by their last four digits
    timings = stats["timings"]
    assert timings["time_to_answer"]["count"] == 5
    # Only the dials placed were told (nobody had an event stream open for the dashboard transfers).
    assert timings["notify_latency"]["count"] == 5
    assert timings["consult_length"]["count"] == 2  # Bob's and Carol's briefings
    assert timings["handover_gap"] == {"count": 0, "p50_s": None, "p95_s": None}  # LiveKit never reported them in
    assert len(stats["trend"]) == 7 and stats["trend"][-1]["day_start"] == stats["from"]

    # The same transfers as CSV.
    r = _ok(sue.get("/api/stats.csv"))
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="transfers-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv"', r.headers["Content-Disposition"])
    body = r.get_data(as_text=True)
    assert "4155550199" not in body and "2071838750" not in body
    header, *rows = list(csv.reader(io.StringIO(body)))
    assert header == ["transfer_id", "session_id", "requested_at", "from_agent", "target_kind", "target", "outcome", "reason_code",
                      "notify_s", "consult_s", "handover_gap_s"]
    assert len(rows) == 11 and [row[2] for row in rows] == sorted(row[2] for row in rows)
    by_outcome: dict[str, int] = {}
    for row in rows:
        by_outcome[row[6]] = by_outcome.get(row[6], 0) + 1
    assert by_outcome == {o["outcome"]: o["count"] for o in transfers["by_outcome"]}
    bob = [row for row in rows if row[4] == "agent" and row[5] != "Carol Chen"]
    assert {row[5] for row in bob} == {"'=Bob Baker"}  # guarded against running as a formula
    assert {row[3] for row in rows} == {"Agent A1", "Agent A2", "Agent A3", "Agent A4", "Agent A5"}
    machine = [row for row in rows if row[6] == "machine"]
    assert machine[0][4:8] == ["phone", "Phone ••0199", "machine", "machine"]
    assert all(re.fullmatch(r"\d+\.\d{3}", row[8]) for row in rows if row[4] == "phone" and row[6] != "failed" or row[3] == "Agent A5")
    assert all(row[8] == "" for row in rows if row[4] != "phone")
    completed = [row for row in rows if row[6] == "completed"]
    assert len(completed) == 2 and all(re.fullmatch(r"\d+\.\d{3}", row[9]) and row[10] == "" for row in completed)


CEST = timezone(timedelta(hours=2))


def test_timings_and_trend_with_known_timestamps(client, make_agent, services, supervisor, tasks):
    """Rows made by the flows, their timestamps then set to known values: the period is the local
    day of 2024-05-08 (+02:00), one call and transfer are two days earlier and one six (the trend
    only), one is just before the trend's first day (nowhere), and one has every difference negative
    (left out)."""
    a, _b = make_agent("alice"), make_agent("bob")
    day = datetime(2024, 5, 8, tzinfo=CEST)
    sec = timedelta(seconds=1)
    # (call created, time to answer s, transfer requested, notify s, consult s, hand-over gap s)
    plan = [
        (day + timedelta(hours=1), 10, 0.5, 60, 2),
        (day + timedelta(hours=2), 20, 1.5, 120, 4),
        (day + timedelta(hours=3), -5, -1, -30, -2),
        (day - timedelta(days=2) + timedelta(hours=1), 40, 3, 30, 1),
        (day - timedelta(days=6), 80, 9, 90, 9),  # the trend's first window
        (day - timedelta(days=6, seconds=31), 70, 7, 70, 7),  # just before it: nowhere
    ]
    call = start_call(client, a)
    transfer_ids = []
    for _ in plan:
        t = start_transfer(a, call, "bob")
        _ok(a.post("/api/cancel-transfer", {"transfer_id": t["id"]}))
        transfer_ids.append(t["id"])
    call_ids = [call["session_id"]] + [_ok(client.post("/api/create-call", json={"customer_name": f"C{i}"}), 201).json["session_id"] for i in range(5)]
    tasks(after_s=31)  # Bob, given the first of those calls, never joins it: a missed call
    with services.db.transaction() as s:
        s.execute(update(Event).where(Event.type == "call_missed").values(created_at=day + timedelta(hours=23)))
        for (at, answer_s, notify_s, consult_s, gap_s), call_id, transfer_id in zip(plan, call_ids, transfer_ids, strict=True):
            s.execute(update(Call).where(Call.id == call_id).values(created_at=at, answered_at=at + answer_s * sec))
            requested = at + 30 * sec
            answered = requested + 5 * sec
            handed = answered + consult_s * sec
            s.execute(update(Transfer).where(Transfer.id == transfer_id).values(
                requested_at=requested, notified_at=requested + notify_s * sec, answered_at=answered,
                handed_over_at=handed, ended_at=handed, bridged_at=handed + gap_s * sec))

    sue = supervisor()
    stats = _ok(sue.get("/api/stats?from=2024-05-08T00:00:00%2B02:00&to=2024-05-09T00:00:00%2B02:00")).json
    assert (stats["from"], stats["to"]) == ("2024-05-08T00:00:00+02:00", "2024-05-09T00:00:00+02:00")
    assert stats["calls"]["total"] == 3 and stats["transfers"]["total"] == 3 and stats["calls"]["missed"] == 1
    assert stats["timings"] == {
        "time_to_answer": {"count": 2, "p50_s": 15.0, "p95_s": 19.5},
        "notify_latency": {"count": 2, "p50_s": 1.0, "p95_s": 1.45},
        "consult_length": {"count": 2, "p50_s": 90.0, "p95_s": 117.0},
        "handover_gap": {"count": 2, "p50_s": 3.0, "p95_s": 3.9},
    }
    trend = stats["trend"]
    assert [(w["day_start"], w["day_end"]) for w in trend] == [
        ((day - timedelta(days=d)).isoformat(), (day - timedelta(days=d - 1)).isoformat()) for d in range(6, -1, -1)]
    assert trend[0]["day_start"] == "2024-05-02T00:00:00+02:00"
    assert {k: v for k, v in trend[6].items() if k in stats["timings"]} == stats["timings"]
    assert {k: v for k, v in trend[4].items() if k in stats["timings"]} == {
        "time_to_answer": {"count": 1, "p50_s": 40.0, "p95_s": 40.0},
        "notify_latency": {"count": 1, "p50_s": 3.0, "p95_s": 3.0},
        "consult_length": {"count": 1, "p50_s": 30.0, "p95_s": 30.0},
        "handover_gap": {"count": 1, "p50_s": 1.0, "p95_s": 1.0},
    }
    assert {k: v for k, v in trend[0].items() if k in stats["timings"]} == {
        "time_to_answer": {"count": 1, "p50_s": 80.0, "p95_s": 80.0},
        "notify_latency": {"count": 1, "p50_s": 9.0, "p95_s": 9.0},
        "consult_length": {"count": 1, "p50_s": 90.0, "p95_s": 90.0},
        "handover_gap": {"count": 1, "p50_s": 9.0, "p95_s": 9.0},
    }
    empty = {"count": 0, "p50_s": None, "p95_s": None}
    assert all(trend[i][name] == empty for i in (1, 2, 3, 5) for name in stats["timings"])

    # A period shorter than a day: its last trend window is still the whole day from `from`.
    short = _ok(sue.get("/api/stats?from=2024-05-08T00:00:00%2B02:00&to=2024-05-08T01:30:00%2B02:00")).json
    assert short["calls"]["total"] == 1 and short["timings"]["time_to_answer"] == {"count": 1, "p50_s": 10.0, "p95_s": 10.0}
    assert short["trend"][6]["time_to_answer"] == stats["timings"]["time_to_answer"] and short["calls"]["missed"] == 0
    assert _ok(sue.get("/api/stats?from=2024-05-08T23:00:00.000001%2B02:00&to=2024-05-09T00:00:00%2B02:00")).json["calls"]["missed"] == 0

    r = _ok(sue.get("/api/stats.csv?from=2024-05-08T00:00:00%2B02:00&to=2024-05-09T00:00:00%2B02:00"))
    assert r.headers["Content-Disposition"] == 'attachment; filename="transfers-2024-05-08-2024-05-09.csv"'
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))[1:]
    assert [row[8:] for row in rows] == [["0.500", "60.000", "2.000"], ["1.500", "120.000", "4.000"], ["", "", ""]]
    assert [row[2] for row in rows] == ["2024-05-07T23:00:30+00:00", "2024-05-08T00:00:30+00:00", "2024-05-08T01:00:30+00:00"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "query, words",
    [
        ("from=", "from is empty"),
        ("to=", "to is empty"),
        ("from=2024-05-08T00:00:00", "no UTC offset"),
        ("to=2024-05-08", "no UTC offset"),
        ("from=last%20tuesday", "not an ISO 8601"),
        ("from=2024-05-08T00:00:00+02:00", "%2B"),  # the '+' arrives as a space
        ("from=2024-05-08T00:00:00Z&to=2024-05-08T00:00:00Z", "before"),
        ("from=2024-05-09T00:00:00Z&to=2024-05-08T00:00:00Z", "before"),
        ("from=2024-04-01T00:00:00Z&to=2024-05-08T00:00:00Z", "at most 31 days"),
        ("from=0001-01-01T00:00:00%2B01:00", "from 1970"),
        ("since=0", "Unknown query parameter"),
    ],
)
def test_bad_queries_are_refused_with_a_reason(supervisor, route, query, words):
    r = supervisor().get(f"{route}?{query}")
    assert r.status_code == 422 and r.json["error"]["code"] == "validation_error", r.get_data(as_text=True)
    assert words in r.json["error"]["message"]


def test_only_supervisors_may_read_them(client, make_agent, supervisor):
    agent = make_agent("alice")
    for route in ROUTES:
        r = agent.get(route)
        assert r.status_code == 403 and r.json["error"]["code"] == "supervisor_only"
        r = client.get(route)
        assert r.status_code == 401 and r.json["error"]["code"] == "not_authenticated"
        assert agent.get(f"{route}?from=").json["error"]["code"] == "supervisor_only"  # who first, then what
        assert supervisor().get(route).status_code == 200

"""The pure parts of the supervisor statistics (app.services.stats, app.services.stats_report):
percentiles, the outcome of each transfer status, targets, CSV cells, the period and its windows."""
from __future__ import annotations

import csv
import io
import random
import statistics
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app import states
from app.errors import ValidationFailed
from app.services.stats import MAX_SPAN, parse_instant, parse_period
from app.services.stats_report import (
    CSV_HEADER,
    OUTCOMES,
    CallRow,
    Names,
    Period,
    TransferRow,
    csv_cell,
    csv_filename,
    outcome_of,
    percentile,
    summarize,
    timing,
    write_csv,
)

CEST = timezone(timedelta(hours=2))
F = datetime(2024, 5, 8, tzinfo=CEST)  # local midnight as `from`
NOW = datetime(2024, 5, 8, 12, 30, tzinfo=UTC)


# -- percentiles -------------------------------------------------------------------------------------
def test_percentiles_by_linear_interpolation_hand_computed():
    values = list(range(1, 21))  # 1..20
    # p50: position 19 * 0.5 = 9.5, between the 10th (10) and 11th (11) values -> 10.5.
    assert percentile(values, 0.5) == 10.5
    # p95: position 19 * 0.95 = 18.05, between the 19th (19) and 20th (20) -> 19.05.
    assert percentile(values, 0.95) == pytest.approx(19.05)
    assert timing(values) == {"count": 20, "p50_s": 10.5, "p95_s": 19.05}
    # Order does not matter; one value is every percentile; two values interpolate.
    assert percentile([3, 1, 2], 0.5) == 2 and percentile([7.25], 0.95) == 7.25
    assert percentile([10, 20], 0.5) == 15 and percentile([10, 20], 0.95) == pytest.approx(19.5)
    assert percentile([0, 0, 0, 100], 0.95) == pytest.approx(85.0)  # position 2.85: 0 + 0.85 * 100


def test_percentiles_are_null_without_values_and_rounded_to_milliseconds():
    assert percentile([], 0.5) is None
    assert timing([]) == {"count": 0, "p50_s": None, "p95_s": None}
    assert timing([0.1, 0.1006]) == {"count": 2, "p50_s": 0.1, "p95_s": 0.101}  # 0.1003 and 0.10057


def test_percentiles_agree_with_the_standard_library_inclusive_method():
    rng = random.Random(7)
    for n in (2, 3, 5, 20, 101):
        values = [rng.uniform(0, 100) for _ in range(n)]
        cuts = statistics.quantiles(values, n=100, method="inclusive")  # cuts[k-1] is the k-th percentile
        assert percentile(values, 0.5) == pytest.approx(cuts[49])
        assert percentile(values, 0.95) == pytest.approx(cuts[94])


# -- outcomes ----------------------------------------------------------------------------------------
T = states.TransferStatus


@pytest.mark.parametrize(
    "status, reason_code, handed_over, outcome",
    [
        (T.COMPLETED, None, True, "completed"),
        (T.AGENT_A_LEFT, "agent_a_left", True, "completed"),  # the customer reached Agent B
        (T.AGENT_A_LEFT, "agent_a_left", False, "failed"),
        (T.DECLINED, "key_9", False, "declined"),
        (T.DECLINED, "no_input", False, "declined"),
        (T.NO_ANSWER, "no_answer", False, "no_answer"),
        (T.BUSY, "busy", False, "no_answer"),
        (T.NO_ANSWER, "machine", False, "machine"),
        (T.BUSY, "machine", False, "machine"),
        (T.CALLER_LEFT, "caller_left", False, "caller_left"),
        (T.CANCELLED, "cancelled", False, "cancelled"),
        (T.CANCELLED, "leg_canceled", False, "cancelled"),
        (T.FAILED, "dial_failed", False, "failed"),
        (T.FAILED, "machine", False, "failed"),  # only an unanswered leg is a machine
        (T.PENDING, None, False, "in_progress"),
        (T.RINGING, None, False, "in_progress"),
        (T.BRIEFING, None, False, "in_progress"),
    ],
)
def test_outcome_of_each_status(status, reason_code, handed_over, outcome):
    assert outcome_of(str(status), reason_code, handed_over) == outcome


def test_every_transfer_status_has_an_outcome_in_the_list():
    known = {key for key, _label in OUTCOMES}
    assert [key for key, _ in OUTCOMES] == ["completed", "declined", "no_answer", "machine", "caller_left", "cancelled", "failed", "in_progress"]
    for status in states.TransferStatus:
        for handed_over in (False, True):
            assert outcome_of(str(status), None, handed_over) in known
    assert all(label and label[0].isupper() for _key, label in OUTCOMES)


# -- CSV cells ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")'])
def test_a_cell_that_would_be_a_formula_gets_an_apostrophe(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value, text", [("Bob", "Bob"), ("a=b", "a=b"), (" =x", " =x"), ("", ""), (None, ""), ("12.500", "12.500"), ("'quoted", "'quoted")])
def test_other_cells_are_left_alone(value, text):
    assert csv_cell(value) == text


def _transfer(**kw) -> TransferRow:
    base = dict(
        id="t1", call_id="c1", from_agent_id="ann", to_agent_id=None, to_team=None, to_phone=None, status="completed",
        reason_code=None, requested_at=F, notified_at=None, answered_at=None, handed_over_at=None, bridged_at=None, ended_at=None,
    )
    return TransferRow(**dict(base, **kw))


NAMES = Names({"ann": "=Ann", "bob": "Bob", "carol": "@Carol"}, {"billing": "+Billing"})


def test_targets_teams_first_then_agents_then_masked_numbers():
    assert NAMES.target(_transfer(to_team="billing", to_agent_id="carol")) == ("team", "billing", "+Billing")
    assert NAMES.target(_transfer(to_agent_id="bob", to_phone="+14155550199")) == ("agent", "bob", "Bob")  # an offline agent's phone
    assert NAMES.target(_transfer(to_phone="+14155550199")) == ("phone", "••0199", "Phone ••0199")
    assert NAMES.target(_transfer(to_agent_id="gone")) == ("agent", "gone", "gone")  # a deleted agent: the id


def test_the_csv_parses_back_with_every_text_cell_guarded():
    rows = [
        _transfer(id="t1", to_agent_id="carol", notified_at=F + timedelta(seconds=0.25), answered_at=F + timedelta(seconds=2),
                  handed_over_at=F + timedelta(seconds=62.5), bridged_at=F + timedelta(seconds=63.75)),
        _transfer(id="t2", to_phone="+14155550199", status="no_answer", reason_code="machine", requested_at=F + timedelta(minutes=1)),
        _transfer(id="t3", to_team="billing", status="declined", reason_code="-x", notified_at=F - timedelta(seconds=1)),
    ]
    out = io.StringIO()
    write_csv(out, rows, NAMES)
    assert "\r\n" in out.getvalue() and "+14155550199" not in out.getvalue()
    parsed = list(csv.reader(io.StringIO(out.getvalue())))
    assert parsed[0] == list(CSV_HEADER)
    assert parsed[1] == ["t1", "c1", F.isoformat(), "'=Ann", "agent", "'@Carol", "completed", "", "0.250", "60.500", "1.250"]
    assert parsed[2] == ["t2", "c1", (F + timedelta(minutes=1)).isoformat(), "'=Ann", "phone", "Phone ••0199", "machine", "machine", "", "", ""]
    # A negative difference is unknown, not a negative number (which would also start with "-").
    assert parsed[3] == ["t3", "c1", F.isoformat(), "'=Ann", "team", "'+Billing", "declined", "'-x", "", "", ""]


# -- the period --------------------------------------------------------------------------------------
def test_an_instant_needs_an_offset():
    assert parse_instant("2024-05-08T00:00:00+02:00", "from") == F
    assert parse_instant("2024-05-07t22:00:00z", "from") == F  # RFC 3339 allows lowercase
    assert parse_instant("2024-05-07T22:00:00.123456789Z", "to") == datetime(2024, 5, 7, 22, 0, 0, 123456, tzinfo=UTC)
    assert parse_instant("2024-05-08T00:00:00+02:00", "from").utcoffset() == timedelta(hours=2)  # kept as given


@pytest.mark.parametrize(
    "raw, words",
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("2024-05-08T00:00:00", "no UTC offset"),
        ("2024-05-08", "no UTC offset"),
        ("yesterday", "not an ISO 8601"),
        ("2024-05-08T00:00:00 02:00", "%2B"),  # a '+' sent unencoded
        ("2024-05-08T25:00:00Z", "not an ISO 8601"),
        ("2024-05-08T23:59:60Z", "not an ISO 8601"),  # a leap second
        ("２０２４-05-08T00:00:00Z", "ISO 8601"),  # not ASCII
        ("2024-05-08T00:00:00+02:00" + " " * 50, "ISO 8601"),  # too long
        ("2024-05-08T00:00:00+02:00:30", "whole minutes"),
        ("0001-01-01T00:00:00+01:00", "from 1970 to 9998"),  # before year 1 in UTC
        ("9999-12-31T23:00:00-05:00", "from 1970 to 9998"),  # after 9999 in UTC
        ("1969-12-31T23:59:59Z", "from 1970 to 9998"),
    ],
)
def test_bad_instants_are_refused_saying_why(raw, words):
    with pytest.raises(ValidationFailed) as err:
        parse_instant(raw, "from")
    assert words in err.value.message and err.value.status == 422


def test_period_defaults_and_limits():
    assert parse_period(None, None, NOW) == Period(NOW - timedelta(hours=24), NOW)
    assert parse_period("2024-05-08T00:00:00+02:00", None, NOW) == Period(F, NOW)
    assert parse_period(None, "2024-05-08T00:00:00+02:00", NOW) == Period(F - timedelta(hours=24), F)
    assert parse_period("2024-04-01T00:00:00Z", "2024-05-02T00:00:00Z", NOW).end - parse_period("2024-04-01T00:00:00Z", "2024-05-02T00:00:00Z", NOW).start == MAX_SPAN
    for raw_from, raw_to, words in [
        ("2024-05-08T00:00:00+02:00", "2024-05-07T22:00:00Z", "before"),  # the same instant
        ("2024-05-09T00:00:00Z", "2024-05-08T00:00:00Z", "before"),
        ("2024-05-09T00:00:00Z", None, "before"),  # after now
        ("2024-04-01T00:00:00Z", "2024-05-02T00:00:01Z", "at most 31 days"),
        ("2024-03-01T00:00:00Z", None, "at most 31 days"),
    ]:
        with pytest.raises(ValidationFailed) as err:
            parse_period(raw_from, raw_to, NOW)
        assert words in err.value.message, (raw_from, raw_to)


def test_the_trend_is_seven_whole_days_ending_with_the_one_from_starts():
    period = Period(F, F + timedelta(hours=5))
    windows = period.windows()
    assert len(windows) == 7 and windows[-1] == (F, F + timedelta(hours=24))  # not cut at `to`
    assert windows[0][0] == F - timedelta(days=6)
    assert all(end - start == timedelta(hours=24) for start, end in windows)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert windows[0][0].isoformat() == "2024-05-02T00:00:00+02:00"  # in the offset `from` was given in
    assert csv_filename(Period(F, F + timedelta(hours=24))) == "transfers-2024-05-08-2024-05-09.csv"


def test_summarize_counts_and_times_by_period_and_window():
    def call(created, answer_s, status="completed", channel="web"):
        return CallRow(created, None if answer_s is None else created + timedelta(seconds=answer_s), status, channel)

    calls = [
        call(F + timedelta(hours=1), 10),
        call(F + timedelta(hours=2), 20, channel="phone"),
        call(F + timedelta(hours=3), None, status="abandoned"),
        call(F + timedelta(hours=4), -5),  # answered "before" it arrived: counted as answered, not timed
        call(F - timedelta(days=2), 40),  # the trend only
        call(F - timedelta(days=7), 80),  # neither
    ]
    transfers = [
        _transfer(id="a", to_agent_id="bob", notified_at=F + timedelta(seconds=1), answered_at=F + timedelta(seconds=5),
                  handed_over_at=F + timedelta(seconds=65), bridged_at=F + timedelta(seconds=67)),
        _transfer(id="b", to_agent_id="bob", status="declined", answered_at=F + timedelta(seconds=5), ended_at=F + timedelta(seconds=35)),
        _transfer(id="c", to_phone="+14155550199", status="briefing", answered_at=F + timedelta(seconds=9)),  # consult still going
        _transfer(id="d", to_team="billing", status="agent_a_left", requested_at=F - timedelta(days=2),
                  notified_at=F - timedelta(days=2) + timedelta(seconds=3)),
    ]
    report = summarize(Period(F, F + timedelta(hours=24)), calls, transfers, 2, NAMES)
    assert report["from"] == "2024-05-08T00:00:00+02:00" and report["to"] == "2024-05-09T00:00:00+02:00"
    assert report["calls"] == {"total": 4, "answered": 3, "abandoned": 1, "missed": 2, "by_channel": {"web": 3, "phone": 1}}
    assert report["transfers"]["total"] == 3
    assert [(o["outcome"], o["count"]) for o in report["transfers"]["by_outcome"]] == [
        ("completed", 1), ("declined", 1), ("no_answer", 0), ("machine", 0), ("caller_left", 0), ("cancelled", 0), ("failed", 0), ("in_progress", 1)]
    assert report["transfers"]["by_target"] == [
        {"kind": "agent", "id": "bob", "label": "Bob", "count": 2, "completed": 1},
        {"kind": "phone", "id": "••0199", "label": "Phone ••0199", "count": 1, "completed": 0},
    ]
    assert report["timings"] == {
        "time_to_answer": {"count": 2, "p50_s": 15.0, "p95_s": 19.5},
        "notify_latency": {"count": 1, "p50_s": 1.0, "p95_s": 1.0},
        "consult_length": {"count": 2, "p50_s": 45.0, "p95_s": 58.5},  # 60 and 30
        "handover_gap": {"count": 1, "p50_s": 2.0, "p95_s": 2.0},
    }
    trend = report["trend"]
    assert [w["day_start"] for w in trend] == [(F - timedelta(days=d)).isoformat() for d in range(6, -1, -1)]
    assert {k: v for k, v in trend[-1].items() if k not in ("day_start", "day_end")} == report["timings"]
    assert trend[4]["time_to_answer"] == {"count": 1, "p50_s": 40.0, "p95_s": 40.0}
    assert trend[4]["notify_latency"] == {"count": 1, "p50_s": 3.0, "p95_s": 3.0}
    empty = {"count": 0, "p50_s": None, "p95_s": None}
    assert all(w[name] == empty for i, w in enumerate(trend) if i not in (4, 6) for name in ("time_to_answer", "notify_latency"))

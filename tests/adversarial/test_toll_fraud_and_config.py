"""Toll fraud and weak production settings, as the review found them: premium-rate and satellite
numbers dialled by default, one stolen session multiplying paid calls, and a production start-up
that accepted a one-letter SECRET_KEY, plain-text cookies, ws:// LiveKit and `APP_ENV=prod`."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from app.config import load_settings, settings_problems
from app.errors import ConfigError
from app.models import Call
from tests.harness.server import ROOT
from tests.telephony import TELEPHONY, agent_on, agent_with_phone_caller, make_sim

# The review's numbers: US premium-rate, international networks (satellite), and a UK 09 number
# (one digit too long to exist, so refused as invalid), plus a real-length UK premium-rate one.
FRAUD_TARGETS = ("+19005550123", "+882123456789", "+4490912345678", "+449091234567")


def test_premium_and_satellite_numbers_are_never_dialled_even_with_no_prefix_list(make_app, rest):
    application = make_app(**TELEPHONY)  # TRANSFER_ALLOWED_PREFIXES unset: "anywhere ordinary"
    sim = make_sim(application, rest)
    a, call = agent_with_phone_caller(application, sim)
    for number in FRAUD_TARGETS:
        r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": number})
        assert r.status_code == 422 and r.json["error"]["code"] in ("number_not_allowed", "invalid_phone_number"), (number, r.json)
        assert r.json["error"]["code"] == "number_not_allowed" or number == "+4490912345678"
    assert sim.rest == []  # not one request reached Twilio
    # An agent's own phone number on file cannot be one either.
    with pytest.raises(Exception, match="premium-rate"):
        application.extensions["wt"].agents.add("mallory", "M", "mallory-password", "+19005550123")


def test_many_stolen_sessions_share_one_global_dial_budget(make_app, rest):
    application = make_app(**TELEPHONY, PHONE_DIAL_RATE_LIMIT="5/3600", PHONE_DIAL_GLOBAL_RATE_LIMIT="2/3600")
    sim = make_sim(application, rest)
    statuses = []
    for i in range(3):
        a = agent_on(application, f"agent{i}")
        caller = sim.call_in(f"+1415555010{i}")
        with application.extensions["wt"].db.reading() as s:
            call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
        if call.agent_id != a.id:
            continue
        a.post("/api/token", {"session_id": call.id})
        r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": "+442071838752"})
        statuses.append(r.status_code)
    assert statuses.count(201) == 2 and statuses[-1] == 429, statuses
    assert "by all agents together" in r.json["error"]["message"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SECRET_KEY": "x"}, "SECRET_KEY must be at least 32 bytes"),
        ({"PUBLIC_BASE_URL": ""}, "PUBLIC_BASE_URL must be the app's public https:// URL"),
        ({"SESSION_COOKIE_SECURE": "false"}, "SESSION_COOKIE_SECURE must be true"),
        ({"LIVEKIT_WS_URL": "ws://livekit.example.com"}, "LIVEKIT_WS_URL must be a wss:// URL"),
        ({"LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}, "must be real keys"),
        ({"TRANSFER_ALLOWED_PREFIXES": ""}, "TRANSFER_ALLOWED_PREFIXES"),
        ({"METRICS_TOKEN": ""}, "METRICS_TOKEN must be set in production"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be set in production"),
    ],
)
def test_production_refuses_each_weak_setting(env, expected):
    good = {
        "APP_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "PUBLIC_BASE_URL": "https://transfer.example.com",
        "SESSION_COOKIE_SECURE": "true",
        "LIVEKIT_WS_URL": "wss://livekit.example.com",
        "LIVEKIT_HTTP_URL": "https://livekit.example.com",
        "LIVEKIT_API_KEY": "APIabc123",
        "LIVEKIT_API_SECRET": "q" * 40,
        "DATABASE_URL": "postgresql://u:p@db.example.com/wt",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32,
        "TWILIO_PHONE_NUMBER": "+14155550100",
        "TRANSFER_ALLOWED_PREFIXES": "+1,+44",
        "METRICS_TOKEN": "m" * 32,
    }
    assert settings_problems(good) == []
    problems = settings_problems({**good, **env})
    assert any(expected in p for p in problems), problems
    with pytest.raises(ConfigError):
        load_settings({**good, **env})


def test_an_unknown_app_env_is_an_error_not_development():
    problems = settings_problems({"APP_ENV": "prod"})
    assert any("APP_ENV" in p for p in problems), problems
    with pytest.raises(ConfigError):
        load_settings({"APP_ENV": "prod"})


def test_check_config_lists_every_problem_at_once_and_the_server_refuses_to_start(tmp_path):
    env = {"PATH": os.environ["PATH"], "APP_ENV": "production", "SECRET_KEY": "x", "LIVEKIT_WS_URL": "ws://lk",
           "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "HOME": str(tmp_path)}
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    checked = subprocess.run([*flask, "check-config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 1
    for expected in ("SECRET_KEY", "PUBLIC_BASE_URL", "SESSION_COOKIE_SECURE", "LIVEKIT_WS_URL", "LIVEKIT_API_KEY"):
        assert expected in checked.stderr, checked.stderr
    started = subprocess.run([*flask, "init-db"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode != 0 and "SECRET_KEY" in started.stderr and "Traceback" not in started.stderr

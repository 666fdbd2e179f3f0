"""Operator commands through Flask's CLI runner."""
from __future__ import annotations

import json
from pathlib import Path

FIXTURE = Path(__file__).parents[1] / "fixtures" / "contexts" / "payment_declined_card.json"


def test_init_db_is_idempotent(app):
    runner = app.test_cli_runner()
    assert "up to date" in runner.invoke(args=["init-db"]).output
    assert "up to date" in runner.invoke(args=["init-db"]).output


def test_agents_add_list_and_demo(app):
    runner = app.test_cli_runner()
    demo = runner.invoke(args=["agents", "demo"])
    assert demo.exit_code == 0 and "agent-a  password:" in demo.output and "agent-b  password:" in demo.output
    password = demo.output.split("agent-a  password: ")[1].split()[0]
    assert app.test_client().post("/api/login", json={"agent_id": "agent-a", "password": password}).status_code == 200
    assert "already exist" in runner.invoke(args=["agents", "demo"]).output
    added = runner.invoke(args=["agents", "add", "zoe", "--name", "Zoe Q", "--password", "zoe-password", "--phone", "+14155550100"])
    assert added.exit_code == 0, added.output
    listing = runner.invoke(args=["agents", "list"]).output
    assert "zoe\tZoe Q\t+14155550100\toffline\t-" in listing
    dup = runner.invoke(args=["agents", "add", "zoe", "--name", "Z", "--password", "zoe-password"])
    assert dup.exit_code != 0 and "already exists" in dup.output
    bad = runner.invoke(args=["agents", "add", "Bad Id", "--name", "B", "--password", "short"])
    assert bad.exit_code != 0 and "Agent id" in bad.output
    badphone = runner.invoke(args=["agents", "add", "yan", "--name", "Y", "--password", "long-enough", "--phone", "555"])
    assert badphone.exit_code != 0 and "international form" in badphone.output
    premium = runner.invoke(args=["agents", "add", "yan", "--name", "Y", "--password", "long-enough", "--phone", "+19005550123"])
    assert premium.exit_code != 0 and "premium-rate" in premium.output


def test_summarize_prints_the_summary_json(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["summarize", str(FIXTURE)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) >= {"customer_name", "reason", "details", "steps_taken", "next_steps", "sentiment", "urgency", "text", "speech", "provider", "degraded"}
    assert out["customer_name"] == "Maria Lopez" and out["provider"] == "offline" and out["degraded"] is False
    assert "4111 1111 1111 1111" not in result.output and "INV-2231" in out["text"]
    broken = tmp_path / "broken.json"
    broken.write_text('{"entries": "nope"}')
    failed = app.test_cli_runner().invoke(args=["summarize", str(broken)])
    assert failed.exit_code != 0 and "not a context file" in failed.output

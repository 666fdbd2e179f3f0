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
    assert "supervisor  password:" in demo.output
    roles = {a.id: a.role for a in app.extensions["wt"].agents.all()}
    assert roles == {"agent-a": "agent", "agent-b": "agent", "supervisor": "supervisor"}
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


def test_teams_add_list_and_membership(app, services):
    runner = app.test_cli_runner()
    added = runner.invoke(args=["teams", "add", "billing", "--name", "Billing", "--keyword", "invoice", "--keyword", "Refund"])
    assert added.exit_code == 0, added.output
    assert runner.invoke(args=["teams", "add", "tech", "--name", "Technical Support"]).exit_code == 0
    dup = runner.invoke(args=["teams", "add", "billing", "--name", "B"])
    assert dup.exit_code != 0 and "already exists" in dup.output
    assert "Team id" in runner.invoke(args=["teams", "add", "Bad Id", "--name", "B"]).output

    both = runner.invoke(args=["agents", "add", "zoe", "--name", "Zoe", "--password", "zoe-password", "--team", "billing", "--team", "tech"])
    assert both.exit_code == 0 and "in billing, tech" in both.output, both.output
    unknown = runner.invoke(args=["agents", "add", "yan", "--name", "Yan", "--password", "yan-password", "--team", "sales"])
    assert unknown.exit_code != 0 and "No team with id sales" in unknown.output
    assert services.agents.get("yan") is None  # an unknown team refuses the whole account
    assert runner.invoke(args=["agents", "add", "kim", "--name", "Kim", "--password", "kim-password"]).exit_code == 0
    assert runner.invoke(args=["agents", "set-teams", "kim", "billing"]).output == "kim is in billing.\n"
    listing = runner.invoke(args=["teams", "list"]).output.splitlines()
    assert listing == ["billing\tBilling\tinvoice,refund\tkim,zoe", "tech\tTechnical Support\t-\tzoe"]

    assert runner.invoke(args=["agents", "set-teams", "zoe", "tech", "tech"]).output == "zoe is in tech.\n"
    assert runner.invoke(args=["agents", "set-teams", "kim"]).output == "kim is in no team.\n"
    assert runner.invoke(args=["teams", "list"]).output.splitlines() == ["billing\tBilling\tinvoice,refund\t-", "tech\tTechnical Support\t-\tzoe"]
    ghost = runner.invoke(args=["agents", "set-teams", "ghost", "tech"])
    assert ghost.exit_code != 0 and "No agent with id ghost" in ghost.output
    bad = runner.invoke(args=["agents", "set-teams", "zoe", "sales"])
    assert bad.exit_code != 0 and "No team with id sales" in bad.output
    assert runner.invoke(args=["teams", "list"]).output.splitlines()[1] == "tech\tTechnical Support\t-\tzoe"  # unchanged

"""Accounts under attack or in trouble: password guessing from many addresses or for many ids, a
flood of sign-ins meant to exhaust CPU, and the operator's answers to a leaked password or a
departed employee (disable, set-password, revoke-sessions), which must reach open dashboards."""
from __future__ import annotations

from sqlalchemy import text

from app.db import migrate
from tests.support import SSEReader, start_call


def _login(client, agent_id: str, password: str, address: str):
    return client.post("/api/login", json={"agent_id": agent_id, "password": password}, environ_base={"REMOTE_ADDR": address})


def test_failed_sign_ins_for_one_id_lock_it_from_every_address(make_app, services):
    app = make_app(LOGIN_AGENT_RATE_LIMIT="3/900")
    app.extensions["wt"].agents.add("alice", "Alice", "alice-password")
    app.extensions["wt"].agents.add("bob", "Bob", "bob-password")
    client = app.test_client()
    for i in range(3):
        r = _login(client, "alice", f"guess-{i}", f"198.51.100.{i}")
        assert r.status_code == 401 and r.json["error"]["code"] == "invalid_credentials"
    # Even the right password, from a fresh address: the id is locked, and says so (not "wrong").
    r = _login(client, "alice", "alice-password", "203.0.113.9")
    assert r.status_code == 429 and "for this agent id" in r.json["error"]["message"]
    assert int(r.headers["Retry-After"]) > 0
    # Other ids are untouched, and successful sign-ins never count towards the lock.
    for _ in range(4):
        assert _login(client, "bob", "bob-password", "198.51.100.1").status_code == 200


def test_the_address_limit_counts_every_agent_id_named(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3/60")
    client = app.test_client()
    for name in ("ann", "ben", "cal"):
        assert _login(client, name, "whatever-1", "192.0.2.7").status_code == 401
    r = _login(client, "dan", "whatever-1", "192.0.2.7")
    assert r.status_code == 429 and "from this address" in r.json["error"]["message"]
    assert _login(client, "dan", "whatever-1", "192.0.2.8").status_code == 401  # another address


def test_sign_ins_beyond_the_concurrency_limit_are_refused_before_hashing(make_app):
    app = make_app(LOGIN_CONCURRENCY=1)
    agents = app.extensions["wt"].agents
    agents.add("alice", "Alice", "alice-password")
    agents._checks.acquire()  # one password check in flight
    try:
        r = app.test_client().post("/api/login", json={"agent_id": "alice", "password": "alice-password"})
        assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
    finally:
        agents._checks.release()
    assert app.test_client().post("/api/login", json={"agent_id": "alice", "password": "alice-password"}).status_code == 200


def test_unknown_ids_are_checked_against_a_hash_of_the_configured_method(services):
    # Same method, same cost: a response time must not tell which ids exist.
    assert services.agents._dummy().startswith(services.settings.PASSWORD_HASH_METHOD.split(":")[0])


def _stream(agent) -> SSEReader:
    r = agent.client.get("/api/events", buffered=False)
    assert r.status_code == 200
    stream = SSEReader(r.response)
    stream.wait_for("ready")
    return stream


def test_disabling_an_account_signs_it_out_everywhere_and_stops_calls_and_transfers(app, client, make_agent, tasks):
    alice = make_agent("alice")
    bob = make_agent("bob")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["agents", "add", "carol", "--name", "Carol", "--password", "carol-password", "--phone", "+14155550123"]).exit_code == 0
    stream = _stream(bob)
    result = runner.invoke(args=["agents", "disable", "bob"])
    assert result.exit_code == 0, result.output
    ended = stream.wait_for("session_ended", timeout=5)
    assert ended["data"]["reason"] == "disabled"
    assert bob.get("/api/me").status_code == 401
    r = bob.client.post("/api/login", json={"agent_id": "bob", "password": bob.password})
    assert r.status_code == 401 and r.json["error"]["code"] == "invalid_credentials"
    assert "bob\tbob\t-\tdisabled" in runner.invoke(args=["agents", "list"]).output.replace("Bob", "bob")
    # A call is never routed to the disabled account (alice takes the first, the second waits).
    first = start_call(client, alice)
    second = client.post("/api/create-call", json={"customer_name": "Second Caller"})
    assert second.status_code == 201 and second.json["status"] == "queued", second.json
    # A transfer to a disabled account is refused, even one that would ring their phone.
    runner.invoke(args=["agents", "disable", "carol"])
    r = alice.post("/api/initiate-transfer", {"session_id": first["session_id"], "to_agent_id": "carol"})
    assert r.status_code == 409 and r.json["error"]["code"] == "agent_unavailable" and "disabled" in r.json["error"]["message"]
    # Enabled again, the old password works again.
    assert runner.invoke(args=["agents", "enable", "bob"]).exit_code == 0
    bob.login()
    assert bob.get("/api/me").status_code == 200
    assert runner.invoke(args=["agents", "disable", "nobody"]).exit_code != 0


def test_a_new_password_ends_every_session_of_the_agent(app, make_agent):
    bob = make_agent("bob")
    second_browser = type(bob)(app.test_client(), "bob", bob.password)
    second_browser.login()
    streams = [_stream(bob), _stream(second_browser)]
    result = app.test_cli_runner().invoke(args=["agents", "set-password", "bob"], input="a-brand-new-pass\na-brand-new-pass\n")
    assert result.exit_code == 0, result.output
    assert "a-brand-new-pass" not in result.output  # hidden input, never echoed
    for stream in streams:
        assert stream.wait_for("session_ended", timeout=5)["data"]["reason"] == "password_changed"
    assert bob.get("/api/me").status_code == 401 and second_browser.get("/api/me").status_code == 401
    assert bob.client.post("/api/login", json={"agent_id": "bob", "password": bob.password}).status_code == 401
    assert bob.client.post("/api/login", json={"agent_id": "bob", "password": "a-brand-new-pass"}).status_code == 200
    short = app.test_cli_runner().invoke(args=["agents", "set-password", "bob"], input="short\nshort\n")
    assert short.exit_code != 0 and "at least 8" in short.output


def test_revoke_sessions_signs_the_agent_out_but_keeps_the_account(app, make_agent):
    bob = make_agent("bob")
    result = app.test_cli_runner().invoke(args=["agents", "revoke-sessions", "bob"])
    assert result.exit_code == 0 and "1 session(s)" in result.output
    assert bob.get("/api/me").status_code == 401
    bob.login()
    assert bob.get("/api/me").status_code == 200


def test_agents_add_prompts_for_the_password_instead_of_taking_it_from_argv(app):
    result = app.test_cli_runner().invoke(args=["agents", "add", "dora", "--name", "Dora"], input="dora-password\ndora-password\n")
    assert result.exit_code == 0, result.output
    assert "dora-password" not in result.output
    assert app.test_client().post("/api/login", json={"agent_id": "dora", "password": "dora-password"}).status_code == 200


def test_the_disabled_column_is_added_to_a_database_from_before_it(services):
    db = services.db
    with db.transaction() as s:
        s.execute(text("ALTER TABLE agents DROP COLUMN disabled_at"))
        s.execute(text("DELETE FROM schema_migrations WHERE version = 3"))
    assert migrate(db) == ["3: agents.disabled_at"]
    services.agents.add("erin", "Erin", "erin-password")
    services.agents.disable("erin")
    assert [a.disabled_at is not None for a in services.agents.all() if a.id == "erin"] == [True]

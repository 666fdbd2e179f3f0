"""The pages blueprint over plain HTTP (no browser): routes, escaping, and the security headers
every page must carry. Fast; runs with the app tests' fixtures (LiveKit Twirp double)."""
from __future__ import annotations

import re

from app.pages import content_security_policy, livekit_origins


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_customer_page_and_its_policy(client, config):
    r = client.get("/")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    body = r.get_data(as_text=True)
    assert "<h1>Call Transfer System</h1>" in body
    assert 'href="/agent">Agent sign-in' in body
    assert "Open the agent console" not in body
    assert '<script type="module" src="/static/js/customer.js"></script>' in body
    assert "<script>" not in body  # no inline script anywhere: the policy forbids it

    csp = directives(r.headers["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    ws = config["LIVEKIT_WS_URL"]
    http = ws.replace("ws://", "http://", 1)
    assert csp["connect-src"] == ["'self'", ws, http]
    assert not any("unsafe" in v for values in csp.values() for v in values)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert "microphone=(self)" in r.headers["Permissions-Policy"]


def test_signed_in_agent_is_offered_the_console_with_the_name_escaped(app, client, services):
    services.agents.add("mallory", "<b>Mal</b>", "pw-mallory-123456")
    login = client.post("/api/login", json={"agent_id": "mallory", "password": "pw-mallory-123456"})
    assert login.status_code == 200
    body = client.get("/").get_data(as_text=True)
    assert "Open the agent console" in body
    assert "&lt;b&gt;Mal&lt;/b&gt;" in body
    assert "<b>Mal</b>" not in body


def test_agent_pages(client):
    console = client.get("/agent")
    dashboard = client.get("/agent-b")
    assert console.status_code == dashboard.status_code == 200
    console_body, dashboard_body = console.get_data(as_text=True), dashboard.get_data(as_text=True)
    assert "<h1>Agent Console</h1>" in console_body
    assert "<h1>Agent B Dashboard</h1>" in dashboard_body
    assert 'id="reset"' in dashboard_body and 'id="reset"' not in console_body
    for body in (console_body, dashboard_body):
        for label in ("Add Call Context", "Initiate Transfer", "Cancel Transfer", "Complete Transfer", "Accept Transfer"):
            assert label in body
    assert "Content-Security-Policy" in dashboard.headers


def test_vendored_livekit_client_is_served_as_javascript_with_its_license(client):
    r = client.get("/static/vendor/livekit-client/livekit-client.esm.js")
    assert r.status_code == 200
    assert r.mimetype in ("text/javascript", "application/javascript")
    assert b"export{" in r.get_data()[-20000:]
    license_text = client.get("/static/vendor/livekit-client/LICENSE").get_data(as_text=True)
    assert "Apache License" in license_text
    version = client.get("/static/vendor/livekit-client/VERSION").get_data(as_text=True)
    assert re.match(r"livekit-client \d+\.\d+\.\d+ \(Apache-2\.0\)", version)


def test_livekit_origins():
    assert livekit_origins("ws://localhost:7880") == ["ws://localhost:7880", "http://localhost:7880"]
    assert livekit_origins("wss://lk.example.com/") == ["wss://lk.example.com", "https://lk.example.com"]
    assert livekit_origins("https://lk.example.com") == ["https://lk.example.com", "wss://lk.example.com"]
    assert livekit_origins("not a url") == []
    assert "connect-src 'self';" in content_security_policy("")

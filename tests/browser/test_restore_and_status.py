"""What the dashboards read from the server instead of guessing: a ringing transfer restored from
/api/me after a refresh (events resume from its last_event_id), the customer's call status
(agent name, on hold, why it ended), a missed call, the customer dropping out and coming back
(customer_presence, from LiveKit's real webhooks), and a session ended elsewhere or by expiry."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.flows import (
    alice_bob_and_a_customer,
    call_with_agent_a,
    eventually,
    expect_audio_from,
    initiate_transfer_to,
    same_instant,
    sign_in,
    start_call,
    timer_start,
)

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert(1)>"


def iso_ms(value) -> str:
    """A stored timestamp as a page's Date.toISOString() writes it."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_ringing_transfer_is_restored_from_api_me_after_agent_b_refreshes(session):
    customer, a, b = call_with_agent_a(session)
    initiate_transfer_to(a.page, "Bob (bob) · available")
    alert = b.page.locator("#incoming-transfer")
    expect(alert).to_be_visible()

    # Bob's tab loads the dashboard afresh (what a refresh does; via about:blank so that every
    # request seen below belongs to the new page, none to the old one still finishing).
    b.page.goto("about:blank")
    urls: list[str] = []
    b.page.on("request", lambda request: urls.append(request.url))
    with b.page.expect_response(lambda r: urlsplit(r.url).path == "/api/me") as first_me:
        b.page.goto("/agent-b")
    me = first_me.value.json()
    expect(alert).to_be_visible()
    expect(alert.locator("#incoming-caller")).to_have_text("Jane Doe")
    expect(alert.locator("#incoming-from")).to_have_text("Alice")
    expect(alert.locator(".summary-text")).to_contain_text("Jane Doe")
    session.shot(b, "incoming-after-refresh")

    # It came from /api/me's pending_transfers, not from scanning the calls...
    [pending] = me["pending_transfers"]
    expect(alert).to_have_attribute("data-transfer-id", pending["transfer_id"])
    paths = [urlsplit(u).path for u in urls]
    # (The "Recent calls" panel reads the agent's *finished* calls, status=ended: not a search
    # for the ringing transfer.)
    scans = [u for u in urls if urlsplit(u).path.startswith("/api/calls") and parse_qs(urlsplit(u).query).get("status") != ["ended"]]
    assert not scans, f"Agent B's page still reads calls to find the transfer: {paths}"
    # ...and the event stream resumes from that answer's last_event_id.
    streams = [parse_qs(urlsplit(u).query) for u in urls if urlsplit(u).path == "/api/events"]
    assert streams and streams[0].get("since") == [str(me["last_event_id"])], f"event stream requests: {streams}"
    expect(b.page.locator("#feed-status")).to_have_attribute("data-mode", "sse")

    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(b.page.locator("#call-heading")).to_have_text("Briefing with Alice")
    expect_audio_from(b.page, "agent-alice", "Agent B hears Agent A after accepting the restored transfer")
    a.page.get_by_role("button", name="Complete Transfer").click()
    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect_audio_from(b.page, "customer-", "Agent B hears the customer")

    # Agent B's call time counts from reaching the customer: bridged_at (LiveKit's webhook saw
    # Bob in the customer's room), or handed_over_at until that is known.
    transfer = eventually(
        lambda: next((t for t in session.server.only_call()["transfers"] if t["bridged_at"]), None),
        "LiveKit reports Agent B in the customer's room (webhook → bridged_at)",
    )
    shown = timer_start(b.page)
    assert same_instant(shown, transfer["bridged_at"]) or same_instant(shown, transfer["handed_over_at"]), (
        f"B's timer counts from {shown}, expected bridged_at {transfer['bridged_at']} or handed_over_at {transfer['handed_over_at']}"
    )
    b.page.reload()
    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(b.page.locator("#call-timer")).to_have_attribute("data-since", iso_ms(transfer["bridged_at"]))


def test_customer_page_shows_the_agents_name_and_on_hold_from_its_status(session):
    """The customer's status (pushed over its stream; tests/browser/test_customer_push.py covers
    the polling fallback) names the agent, as text, and says when the caller is on hold."""
    a_name = f"Alice {PAYLOAD}"
    customer, a, b = call_with_agent_a(session, a_name=a_name)
    status = customer.page.locator("#call-status")
    expect(status).to_have_text(f"Connected with {a_name}")

    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(status).to_have_attribute("data-state", "on-hold")
    expect(status).to_contain_text("On hold")
    expect(status).to_contain_text(a_name)
    session.check_a11y(customer, "on-hold")
    session.shot(customer, "on-hold-with-agent-name")

    expect(b.page.locator("#incoming-from")).to_have_text(a_name)
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "briefing")
    expect(status).to_have_attribute("data-state", "on-hold")  # still on hold during the briefing
    a.page.get_by_role("button", name="Complete Transfer").click()
    expect(status).to_have_text("Connected with Bob")
    expect_audio_from(customer.page, "agent-bob", "the customer hears Agent B")
    assert customer.page.evaluate("() => window.wtDiagnostics.callStatus()")["agent_name"] == "Bob"
    for person in (customer, a, b):
        assert person.page.locator("img").count() == 0, f"{person.name}: an <img> element was created from the agent's name"

    # Ended by the agent: the customer is told so (end_reason from the status endpoint).
    b.page.get_by_role("button", name="End call").click()
    b.page.get_by_role("button", name="Yes, end call").click()
    expect(customer.page.locator("#ended-view")).to_be_visible()
    expect(customer.page.locator("#ended-text")).to_have_text("The agent ended the call. Thank you for calling.")


@pytest.mark.app_settings(AGENT_ANSWER_TIMEOUT_S=5)
def test_missed_call_sets_the_agent_away_and_goes_to_the_next_agent(session):
    server, customer, a, b = alice_bob_and_a_customer(session)
    refused: list[str] = []

    def unreachable(route):
        refused.append(route.request.url)
        route.abort()

    # Alice's console is open but cannot get into the call (its token requests never arrive),
    # so she never joins: after AGENT_ANSWER_TIMEOUT_S the server gives the call to Bob.
    a.page.route("**/api/token", unreachable)
    sign_in(a.page, "/agent", "alice")
    start_call(customer.page, "Jane Doe")
    expect(a.page.locator("#alert-text")).to_contain_text("New call from Jane Doe")
    sign_in(b.page, "/agent-b", "bob")

    alert = a.page.locator("#alert-text")
    expect(alert).to_contain_text("Missed call from Jane Doe", timeout=20_000)
    expect(alert).to_contain_text("Not joined within 5 seconds; you are now set to away.")
    expect(a.page.get_by_role("radio", name="Away", exact=True)).to_be_checked()
    expect(a.page.locator("#idle-view")).to_be_visible()
    expect(a.page.locator("#idle-text")).to_contain_text("You are away")
    assert refused, "the test did not actually keep Agent A out of the call"
    assert server.presence("alice") == "away"
    session.shot(a, "missed-call")
    session.check_a11y(a, "missed-call")

    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Bob")
    expect_audio_from(customer.page, "agent-bob", "the customer hears Agent B")
    expect_audio_from(b.page, "customer-", "Agent B hears the customer")
    state = server.only_call()
    assert (state["status"], state["agent_id"]) == ("active", "bob")


def test_customer_dropping_out_shows_reconnecting_until_they_return_or_the_call_ends(session):
    customer, a, _b = call_with_agent_a(session)
    banner = a.page.locator("#customer-presence")
    expect(banner).to_be_hidden()
    session_id = session.server.only_call()["session_id"]

    # The customer's tab goes elsewhere: livekit-server tells the app (webhook), the app tells
    # Agent A (customer_presence).
    customer.page.goto("about:blank")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Customer reconnecting…")
    expect(banner).to_contain_text("Jane Doe's connection dropped")
    expect(banner).to_contain_text("up to 30 s")
    session.shot(a, "customer-reconnecting")
    session.check_a11y(a, "customer-reconnecting")

    # Agent A's refresh keeps it (the call's timeline has the presence events).
    a.page.reload()
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(banner).to_be_visible()

    # The customer comes back in the same tab: their page restores the call.
    customer.page.goto("/")
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Alice")
    expect(banner).to_be_hidden()
    expect(a.page.locator("#notices")).to_contain_text("Jane Doe is back on the call.")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer again")

    # Gone again, this time for longer than the grace period: the call ends.
    customer.page.goto("about:blank")
    expect(banner).to_be_visible()
    session.server.age_customer_departure(session_id, 60)
    expect(a.page.locator("#alert-text")).to_contain_text("the customer did not reconnect in time")
    expect(a.page.locator("#idle-view")).to_be_visible()
    expect(banner).to_be_hidden()
    assert session.server.only_call()["end_reason"] == "customer_left"

    customer.page.goto("/")
    expect(customer.page.locator("#ended-view")).to_be_visible()
    expect(customer.page.locator("#ended-text")).to_contain_text("your connection was lost for too long")


def test_signing_out_in_one_tab_returns_the_others_to_sign_in(session):
    session.server.add_agent("alice", "Alice")
    a = session.person("agent-a")
    sign_in(a.page, "/agent", "alice")
    live = session.tab(a, "agent-a-second-tab")
    live.page.goto("/agent-b")
    expect(live.page.locator("#feed-status")).to_have_attribute("data-mode", "sse")
    polled = session.tab(a, "agent-a-polling-tab")
    polled.page.route("**/api/events*", lambda route: route.abort())
    polled.page.goto("/agent")
    expect(polled.page.locator("#feed-status")).to_have_attribute("data-mode", "polling")

    a.page.get_by_role("button", name="Sign out").click()
    expect(a.page.locator("#login-error")).to_have_text("You are signed out.")
    # The live stream says why (session_ended); the polling tab finds its session refused.
    expect(live.page.get_by_role("heading", name="Agent sign-in")).to_be_visible()
    expect(live.page.locator("#login-error")).to_have_text("You were signed out (in another tab or window). Sign in again.")
    expect(polled.page.get_by_role("heading", name="Agent sign-in")).to_be_visible()
    expect(polled.page.locator("#login-error")).to_have_text("Your session has ended. Sign in again.")
    session.check_a11y(live, "signed-out-elsewhere")


@pytest.mark.app_settings(SESSION_LIFETIME_S=6)
def test_expired_session_returns_to_sign_in(session):
    session.server.add_agent("alice", "Alice")
    a = session.person("agent-a")
    sign_in(a.page, "/agent", "alice")
    expect(a.page.locator("#feed-status")).to_have_attribute("data-mode", "sse")
    # The stream checks the session's expiry between heartbeats (SSE_HEARTBEAT_S=2 here).
    expect(a.page.get_by_role("heading", name="Agent sign-in")).to_be_visible(timeout=15_000)
    expect(a.page.locator("#login-error")).to_have_text("Your session expired. Sign in again.")

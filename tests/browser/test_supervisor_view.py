"""The supervisor view (/supervisor) through a whole warm transfer, in four browsers: Sue (a
supervisor) watches the queue fill, the call go to Alice, Alice consult Bob and hand over, and
today's outcome chart count it, all without reloading; on the way she listens in unseen and
unheard, whispers to Alice (the customer's browser is refused the track) and joins the call. An
agent who opens the page is told it is for supervisors. axe-core runs in every state and finds
nothing; a screenshot of each state is under artifacts/browser/<test>/."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.flows import accept_transfer, expect_audio_from, sign_in, start_call

pytestmark = pytest.mark.browser


def sign_in_supervisor(page, agent_id: str) -> None:
    sign_in(page, "/supervisor", agent_id, heading="Supervisor sign-in")


def no_violations(session, who, label: str) -> None:
    violations = session.check_a11y(who, label)  # fails on serious or critical ones itself
    assert violations == [], f"{label}: axe-core found {violations}"
    session.shot(who, label)


def test_the_supervisor_view_follows_a_whole_transfer_live(session):
    server = session.server
    server.add_agent("alice", "Alice")
    server.add_agent("bob", "Bob")
    server.add_agent("sue", "Sue", role="supervisor")
    sue, customer, a, b = (session.person(who) for who in ("supervisor", "customer", "agent-a", "agent-b"))

    sign_in_supervisor(sue.page, "sue")
    page = sue.page
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page ever reloads
    expect(page.locator("#feed-status")).to_have_attribute("data-mode", "sse")
    expect(page.locator("#queue-empty")).to_be_visible()
    expect(page.locator("#calls-empty")).to_be_visible()
    expect(page.locator("#agents-rows tr[data-agent='sue'] td").first).to_have_text("Away")  # signs in away
    expect(page.locator("#outcome-chart svg[role='img']")).to_be_visible()
    no_violations(session, sue, "empty-floor")

    # A customer calls while no agent is signed in: they wait in the queue, and the clock runs.
    start_call(customer.page, "Jane Doe")
    waiting = page.locator("#queue-rows tr")
    expect(waiting).to_have_count(1)
    expect(waiting.first).to_contain_text("Jane Doe")
    expect(page.locator("#queue-count")).to_have_text("1")
    expect(page.locator("#queue-longest")).not_to_have_text("–")
    no_violations(session, sue, "queue")

    # Alice signs in: the call goes to her, she answers, and it is a live call, talking.
    sign_in(a.page, "/agent", "alice")
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(page.locator("#queue-empty")).to_be_visible()
    row = page.locator("#calls-rows tr")
    expect(row).to_have_count(1)
    expect(row.first).to_have_attribute("data-state", "talking")
    expect(row.first).to_contain_text("Alice")
    expect(page.locator("#agents-rows tr[data-agent='alice']")).to_contain_text("Jane Doe")
    no_violations(session, sue, "talking")

    # Sue listens in: she hears the customer and Alice; nobody's page shows her.
    page.get_by_role("button", name="Listen: Jane Doe with Alice").click()
    expect(page.locator("#supervising-text")).to_contain_text("Nobody hears you")
    expect_audio_from(page, "customer-", "Sue hears the customer")
    expect_audio_from(page, "agent-alice", "Sue hears Alice")
    for who in (a, customer):
        seen = who.page.evaluate("() => window.wtDiagnostics.remotes().map((p) => p.identity)")
        assert "customer-" in str(seen) or "agent-alice" in str(seen), seen  # the lists are there...
        assert not [i for i in seen if i.startswith("supervisor-")], f"{who.name} sees the monitor: {seen}"  # ...without Sue
    no_violations(session, sue, "monitoring")

    # A whisper: Alice hears Sue; the customer's browser is refused her track.
    page.get_by_role("button", name="Whisper: Jane Doe with Alice").click()
    expect(page.locator("#supervising-text")).to_contain_text("Only they hear you")
    expect_audio_from(a.page, "supervisor-sue", "Alice hears Sue's whisper")
    # livekit-server refuses the customer's subscription: their client is told the track is not
    # allowed (RemoteTrackPublication.permissionStatus), and nothing of it has been received.
    customer.page.wait_for_function(
        "() => window.wtDiagnostics.remotes().some((p) => p.identity === 'supervisor-sue' && p.refused && !p.audio)")
    heard_by_customer = customer.page.evaluate(
        "async () => (await window.wtDiagnostics.audioStats()).received.filter((r) => r.identity.startsWith('supervisor-'))")
    assert heard_by_customer == [], f"the customer received the whisper: {heard_by_customer}"
    no_violations(session, sue, "whispering")

    # Barge: Sue joins; the customer hears her too.
    page.get_by_role("button", name="Join: Jane Doe with Alice").click()
    expect(page.locator("#supervising-text")).to_contain_text("Everyone hears you")
    expect_audio_from(customer.page, "supervisor-sue", "the customer hears Sue barge in")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#supervising")).to_be_hidden()

    # Alice consults Bob: on hold while he is rung, then in consult with him.
    sign_in(b.page, "/agent-b", "bob")
    accept_transfer(a, b)
    expect(row.first).to_have_attribute("data-state", "consult")
    expect(row.first.locator(".call-state")).to_have_text("Consult with Bob")
    no_violations(session, sue, "consult")

    a.page.get_by_role("button", name="Complete Transfer").click()
    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(row.first).to_have_attribute("data-state", "transferred")
    expect(row.first).to_contain_text("Bob")
    completed = page.locator("#outcome-chart g[data-key='completed']")
    expect(completed).to_have_attribute("data-value", "1", timeout=20_000)
    expect(page.locator("#target-chart g[data-key='agent']")).to_contain_text("Bob")
    expect(page.locator("#agents-rows tr[data-agent='alice'] td").nth(3)).to_have_text("1")  # transfers out
    no_violations(session, sue, "transferred")

    # The customer hangs up: no live calls; the figures count the hand-over.
    customer.page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#calls-empty")).to_be_visible()
    expect(page.locator("#timings-rows tr[data-timing='handover_gap'] td").first).to_have_text("1", timeout=20_000)
    no_violations(session, sue, "call-ended")
    assert page.evaluate("() => window.__sameDocument === true"), "the supervisor page reloaded"
    assert page.evaluate("() => window.wtDiagnostics.feedMode()") == "sse"

    # An agent on the page: told it is not for them, given no figures.
    a.page.goto("/supervisor")
    expect(a.page.get_by_role("heading", name="This page is for supervisors")).to_be_visible()
    expect(a.page.locator("#floor-view")).to_be_hidden()
    no_violations(session, a, "agent-refused")


def test_the_floor_still_updates_by_polling_when_its_stream_is_blocked(session):
    """A proxy that breaks Server-Sent Events: the page says it is polling, and a caller arriving
    still shows without a reload."""
    server = session.server
    server.add_agent("sue", "Sue", role="supervisor")
    sue, customer = session.person("supervisor"), session.person("customer")
    blocked: list[str] = []

    def abort(route):
        blocked.append(route.request.url)
        route.abort()

    sue.context.route("**/api/supervisor/events*", abort)
    sign_in_supervisor(sue.page, "sue")
    page = sue.page
    expect(page.locator("#feed-status")).to_have_attribute("data-mode", "polling")
    expect(page.locator("#feed-status")).to_have_text("Updates: every few seconds")
    start_call(customer.page, "Paula Poll")
    expect(page.locator("#queue-rows tr")).to_contain_text("Paula Poll")
    assert blocked, "the stream was never asked for"
    no_violations(session, sue, "polling")

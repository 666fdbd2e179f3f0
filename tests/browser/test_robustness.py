"""What goes wrong in real life: page refreshes, a blocked microphone, a missing device, and the
LiveKit server out of reach. Each must say clearly what is wrong and recover (a retry, or for an
agent's missing microphone, the call going on without them until they have one)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.flows import (
    call_with_agent_a,
    expect_audio_from,
    expect_hold_music,
    expect_no_hold_music,
    expect_not_in_a_room,
    sign_in,
    start_call,
)

pytestmark = pytest.mark.browser

# Replaces getUserMedia for audio with a failure of the given DOMException name while
# window.__wtMicFailure is set: what the browser does when the user blocks the microphone
# (NotAllowedError) or none is plugged in (NotFoundError).
FAIL_MICROPHONE = """(() => {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  window.__wtMicFailure = %r;
  navigator.mediaDevices.getUserMedia = (constraints) => {
    if (window.__wtMicFailure && constraints && constraints.audio) {
      return Promise.reject(new DOMException('microphone unavailable (test)', window.__wtMicFailure));
    }
    return original(constraints);
  };
})();"""


def test_customer_refresh_rejoins_the_same_call_and_hang_up_ends_it(session):
    customer, a, _b = call_with_agent_a(session)
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A")
    first = session.server.only_call()["session_id"]

    customer.page.reload()
    expect(customer.page.locator("#call-view")).to_be_visible()
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Alice")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A after a refresh")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer after the customer's refresh")
    assert session.server.only_call()["session_id"] == first  # the same call, not a new one

    customer.page.get_by_role("button", name="Hang up").click()
    expect(customer.page.locator("#ended-view")).to_be_visible()
    expect(customer.page.locator("#ended-text")).to_contain_text("You hung up")
    expect(a.page.locator("#alert-text")).to_contain_text("the customer hung up")
    expect(a.page.locator("#idle-view")).to_be_visible()
    # A refresh after the call ended does not resurrect it.
    customer.page.reload()
    expect(customer.page.locator("#start-view")).to_be_visible()
    assert session.server.only_call()["status"] == "completed"


def test_agent_refresh_mid_call_rejoins_the_customer(session):
    customer, a, _b = call_with_agent_a(session)
    a.page.reload()
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(a.page.locator("#context-list li", has_text="Call started with customer Jane Doe")).to_be_visible()
    expect_audio_from(a.page, "customer-", "Agent A hears the customer after a refresh")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A after A's refresh")


def test_customer_microphone_blocked_shows_why_and_recovers(session):
    session.server.add_agent("alice", "Alice")
    a = session.person("agent-a")
    customer = session.person("customer")
    customer.context.add_init_script(FAIL_MICROPHONE % "NotAllowedError")
    sign_in(a.page, "/agent", "alice")
    start_call(customer.page, "Jane Doe")

    problem = customer.page.locator("#mic-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("Microphone access is blocked")
    # Still in the call, listening.
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Alice")
    expect_audio_from(customer.page, "agent-alice", "the customer still hears Agent A")
    session.shot(customer, "microphone-blocked")
    session.check_a11y(customer, "microphone-blocked")

    customer.page.evaluate("() => { window.__wtMicFailure = null; }")
    customer.page.get_by_role("button", name="Retry microphone").click()
    expect(problem).to_be_hidden()
    expect_audio_from(a.page, "customer-", "Agent A hears the customer once the microphone is allowed")


def test_agent_without_a_microphone_is_told_and_recovers(session):
    """An agent's microphone that cannot start gives the call up (the customer must not wait in
    silence); with nobody else free, the customer waits on hold music until the agent, with a
    microphone now, is available again and gets the call back."""
    session.server.add_agent("alice", "Alice")
    a = session.person("agent-a")
    a.context.add_init_script(FAIL_MICROPHONE % "NotFoundError")
    customer = session.person("customer")
    sign_in(a.page, "/agent", "alice")
    start_call(customer.page, "Jane Doe")

    alert = a.page.locator("#alert-text")
    expect(alert).to_contain_text("Your microphone is not working: no microphone was found.")
    expect(alert).to_contain_text("The caller is on hold until another agent is free; you are set to Away.")
    expect(a.page.get_by_role("radio", name="Away", exact=True)).to_be_checked()
    expect(a.page.locator("#idle-view")).to_be_visible()
    expect_not_in_a_room(a.page)
    session.shot(a, "no-microphone")
    assert session.server.presence("alice") == "away"
    assert session.server.only_call()["status"] == "queued"

    status = customer.page.locator("#call-status")
    expect(status).to_have_attribute("data-state", "on-hold")
    expect(status).to_contain_text("please stay on the line")
    expect_hold_music(customer.page, "the customer waiting for an agent")
    session.shot(customer, "waiting-on-hold-music")

    a.page.evaluate("() => { window.__wtMicFailure = null; }")
    # click, then wait for the server's answer: a render in between may show the old presence for a moment
    a.page.get_by_role("radio", name="Available", exact=True).click()
    expect(a.page.get_by_role("radio", name="Available", exact=True)).to_be_checked()
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(a.page.locator("#mic-problem")).to_be_hidden()
    expect_audio_from(a.page, "customer-", "Agent A hears the customer with a microphone")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A once a microphone is there")
    expect_no_hold_music(customer.page, "the customer with Agent A again")
    expect(status).to_have_text("Connected with Alice")


def test_livekit_unreachable_shows_a_message_and_retry_connects(session):
    session.server.add_agent("alice", "Alice")
    a = session.person("agent-a")
    customer = session.person("customer")
    reachable = {"value": False}

    def livekit_socket(ws):
        if reachable["value"]:
            ws.connect_to_server()
        else:
            ws.close(code=1011, reason="unreachable (test)")

    # Only Agent A's view of the LiveKit server is cut: its signalling WebSocket is refused.
    a.page.route_web_socket(re.compile(r"^wss?://[^/]+/rtc"), livekit_socket)
    sign_in(a.page, "/agent", "alice")
    start_call(customer.page, "Jane Doe")

    problem = a.page.locator("#audio-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("cannot be reached")
    expect(a.page.locator("#audio-status")).to_contain_text("Not connected")
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    session.shot(a, "livekit-unreachable")
    session.check_a11y(a, "livekit-unreachable")

    reachable["value"] = True
    a.page.locator("#audio-problem").get_by_role("button", name="Retry").click()
    expect(problem).to_be_hidden(timeout=20_000)
    expect(a.page.locator("#audio-status")).to_contain_text("Connected, customer room")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer after the retry")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A after the retry")


def test_mute_stops_the_agents_audio_and_unmute_restores_it(session):
    customer, a, _b = call_with_agent_a(session)
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A")
    mute = a.page.get_by_role("button", name="Mute")
    mute.click()
    unmute = a.page.get_by_role("button", name="Unmute")
    expect(unmute).to_have_attribute("aria-pressed", "true")
    # The customer's side learns the track is muted (LiveKit signals it; the sender sends silence).
    customer.page.wait_for_function(
        "() => window.wtDiagnostics.remotes().some((p) => p.identity === 'agent-alice' && !p.audio)", timeout=10_000)
    unmute.click()
    expect(a.page.get_by_role("button", name="Mute")).to_have_attribute("aria-pressed", "false")
    customer.page.wait_for_function(
        "() => window.wtDiagnostics.remotes().some((p) => p.identity === 'agent-alice' && p.audio)", timeout=10_000)
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A after unmute")

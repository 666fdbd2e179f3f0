"""The microphone and the hold music, with real media: an agent who joins a room muted still
publishes a (muted) microphone track, which is what makes LiveKit SIP answer a phone caller; a
browser whose microphone cannot be opened gives the call to another agent; and the customer on
hold hears the worker's hold music (participant `hold-<call id>`), never the agents' consult."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.flows import (
    alice_bob_and_a_customer,
    call_with_agent_a,
    expect_audio_from,
    expect_hold_music,
    expect_no_hold_music,
    expect_not_in_a_room,
    expect_sending,
    expect_track_from,
    initiate_transfer_to,
    sign_in,
    start_call,
)

pytestmark = pytest.mark.browser

# What Chromium answers when the site's microphone permission is blocked. The browser under test
# runs with --use-fake-ui-for-media-stream, which grants every request (even one blocked through
# the DevTools protocol), so the refusal is installed in the page before any script runs.
DENY_MICROPHONE = """
MediaDevices.prototype.getUserMedia = function getUserMedia() {
  window.wtMicrophoneRequests = (window.wtMicrophoneRequests || 0) + 1;
  return Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
};
"""


def remote_track(stats: dict, identity_prefix: str) -> dict:
    [track] = [r for r in stats["received"] if r["identity"].startswith(identity_prefix)]
    return track


def test_an_agent_who_joins_a_room_muted_still_publishes_a_muted_microphone(session):
    customer, a, b = call_with_agent_a(session)
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A")

    a.page.get_by_role("button", name="Mute").click()
    expect(a.page.locator("#mute")).to_have_attribute("aria-pressed", "true")
    expect_sending(a.page, "call_", True, "Agent A muted with the customer")
    expect_track_from(customer.page, "agent-alice", True, "the customer sees Agent A muted")

    # The consult moves Agent A into the transfer room: she joins it muted.
    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(b.page.locator("#incoming-transfer")).to_be_visible()
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "briefing")
    expect(a.page.locator("#mute")).to_have_attribute("aria-pressed", "true")
    expect_sending(a.page, "transfer_", True, "Agent A, joined the transfer room muted")
    expect_track_from(b.page, "agent-alice", True, "Agent B sees Agent A's muted microphone")
    expect_audio_from(a.page, "agent-bob", "Agent A hears Agent B")

    # Back to the customer's room, still muted: the customer sees her track published, muted.
    a.page.get_by_role("button", name="Cancel Transfer").click()
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Alice")
    stats = expect_track_from(customer.page, "agent-alice", True, "the customer sees Agent A rejoin muted")
    expect_sending(a.page, "call_", True, "Agent A, rejoined the customer's room muted")
    expect_audio_from(a.page, "customer-", "Agent A, muted, still hears the customer")
    # Over that second and more of the customer's audio, no sound of Agent A's reached the
    # customer: her track was muted before its first frame (published unmuted and muted a moment
    # later, its first frames would carry the fake microphone's beep, counted here).
    muted = remote_track(customer.page.evaluate("() => window.wtDiagnostics.audioStats()"), "agent-alice")
    assert muted["trackSid"] == remote_track(stats, "agent-alice")["trackSid"]
    assert muted["totalAudioEnergy"] == 0, f"sound from muted Agent A reached the customer: {muted}"

    a.page.get_by_role("button", name="Unmute").click()
    expect(a.page.locator("#mute")).to_have_attribute("aria-pressed", "false")
    expect_sending(a.page, "call_", False, "Agent A unmuted")
    expect_track_from(customer.page, "agent-alice", False, "the customer sees Agent A unmuted")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A once she unmutes")
    unmuted = remote_track(customer.page.evaluate("() => window.wtDiagnostics.audioStats()"), "agent-alice")
    assert unmuted["trackSid"] == muted["trackSid"], "unmuting published a second track instead of unmuting the first"


def test_a_microphone_that_cannot_start_passes_the_call_to_another_agent(session):
    server, customer, a, b = alice_bob_and_a_customer(session)
    a.context.add_init_script(DENY_MICROPHONE)
    reports = []
    a.page.on("request", lambda r: reports.append(r) if urlsplit(r.url).path == "/api/microphone-failed" else None)
    sign_in(a.page, "/agent", "alice")
    sign_in(b.page, "/agent", "bob")

    # Neither has taken a call yet: routing picks by agent id, so Alice gets it.
    start_call(customer.page, "Jane Doe")
    expect(a.page.locator("#notices")).to_contain_text("New call from Jane Doe")
    alert = a.page.locator("#alert-text")
    expect(alert).to_contain_text("Your microphone is not working: access to it is blocked in this browser.")
    expect(alert).to_contain_text("The call has been passed to another agent; you are set to Away.")
    expect(a.page.get_by_role("radio", name="Away", exact=True)).to_be_checked()
    expect(a.page.locator("#idle-view")).to_be_visible()
    expect(a.page.locator("#idle-text")).to_contain_text("You are away")
    expect_not_in_a_room(a.page)
    session.shot(a, "microphone-failed")
    session.check_a11y(a, "microphone-failed")

    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Bob")
    expect_audio_from(customer.page, "agent-bob", "the customer hears Agent B")
    expect_audio_from(b.page, "customer-", "Agent B hears the customer")

    assert a.page.evaluate("() => window.wtMicrophoneRequests") >= 1, "Alice's page never asked for the microphone"
    state = server.only_call()
    assert (state["status"], state["agent_id"]) == ("active", "bob")
    assert server.presence("alice") == "away"
    assert server.presence("bob") == "available"
    # Reported once, for this call, with what went wrong.
    assert [r.post_data_json for r in reports] == [
        {"session_id": state["session_id"], "error": "access to it is blocked in this browser"}
    ]


def test_the_customer_hears_hold_music_during_a_consult_and_agent_a_after_a_cancel(session):
    customer, a, b = call_with_agent_a(session)
    status = customer.page.locator("#call-status")
    expect_no_hold_music(customer.page, "the customer with Agent A")

    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(status).to_have_attribute("data-state", "on-hold")
    expect_hold_music(customer.page, "the customer while the transfer rings")
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "briefing")
    expect_audio_from(b.page, "agent-alice", "Agent B hears Agent A in the briefing")
    expect_audio_from(a.page, "agent-bob", "Agent A hears Agent B in the briefing")
    # The consult is private: the customer hears the music and neither agent.
    expect_hold_music(customer.page, "the customer during the briefing")
    expect(status).to_have_attribute("data-state", "on-hold")
    expect(status).to_contain_text("Please stay on the line")
    remotes = customer.page.evaluate("() => window.wtDiagnostics.remotes()")
    assert [r["role"] for r in remotes] == ["hold"], f"the customer's room during the consult: {remotes}"
    session.shot(customer, "hold-music")
    session.check_a11y(customer, "hold-music")

    a.page.get_by_role("button", name="Cancel Transfer").click()
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect_no_hold_music(customer.page, "the customer after the cancel")
    expect(status).to_have_text("Connected with Alice")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A again")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer again")
    assert [t["status"] for t in session.server.only_call()["transfers"]] == ["cancelled"]

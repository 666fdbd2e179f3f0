"""The other ways a transfer goes: declined, cancelled, Agent B refreshing mid-briefing, and
Agent B's live channel (SSE) blocked so that notifications arrive by polling."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.flows import (
    accept_transfer,
    call_with_agent_a,
    expect_audio_from,
    expect_hold_music,
    expect_not_in_a_room,
    initiate_transfer_to,
)

pytestmark = pytest.mark.browser


def test_decline_returns_agent_a_to_the_customer(session):
    customer, a, b = call_with_agent_a(session)
    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(b.page.locator("#incoming-transfer")).to_be_visible()
    expect_hold_music(customer.page, "the customer while the transfer rings")
    b.page.get_by_label("Reason if you decline (optional)").fill("in a training session")
    b.page.get_by_role("button", name="Decline").click()

    expect(b.page.locator("#incoming-transfer")).to_be_hidden()
    expect(b.page.locator("#idle-view")).to_be_visible()
    status = a.page.locator("#transfer-status")
    expect(status).to_have_attribute("data-status", "declined")
    expect(status).to_contain_text("in a training session")
    expect(a.page.locator("#alert-text")).to_contain_text("declined")
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Alice")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer again")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A again")
    expect_not_in_a_room(b.page)
    session.shot(a, "declined")
    session.check_a11y(a, "declined")

    # A transfer can be retried with the same context; this time Bob bows out after the briefing.
    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(b.page.locator("#incoming-transfer")).to_be_visible()
    expect(b.page.locator("#incoming-summary")).to_contain_text("Jane Doe")
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect_audio_from(b.page, "agent-alice", "Agent B hears Agent A in the second briefing")
    b.page.get_by_role("button", name="Decline transfer").click()
    expect(b.page.locator("#idle-view")).to_be_visible()
    expect_not_in_a_room(b.page)
    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "declined")
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer after B bowed out")

    state = session.server.only_call()
    assert state["status"] == "active"
    assert [t["status"] for t in state["transfers"]] == ["declined", "declined"]


def test_cancel_during_briefing_returns_agent_a_and_releases_agent_b(session):
    customer, a, b = call_with_agent_a(session)
    accept_transfer(a, b)
    a.page.get_by_role("button", name="Cancel Transfer").click()

    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "cancelled")
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(b.page.locator("#alert-text")).to_contain_text("cancelled")
    expect(b.page.locator("#idle-view")).to_be_visible()
    expect_not_in_a_room(b.page)
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Alice")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer after cancelling")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A after the cancel")
    session.shot(a, "cancelled")
    session.shot(b, "cancelled")

    state = session.server.only_call()
    assert state["status"] == "active"
    assert [t["status"] for t in state["transfers"]] == ["cancelled"]


def test_agent_b_refresh_mid_briefing_restores_room_and_state(session):
    customer, a, b = call_with_agent_a(session)
    accept_transfer(a, b)

    # "Reset" clears the screen's messages and reloads from the server: the briefing survives it.
    expect(b.page.locator("#notices li")).not_to_have_count(0)
    b.page.get_by_role("button", name="Reset").click()
    expect(b.page.locator("#notices li")).to_have_count(0)
    expect(b.page.locator("#call-heading")).to_have_text("Briefing with Alice")
    expect_audio_from(b.page, "agent-alice", "Agent B still hears Agent A after Reset")

    b.page.reload()
    expect(b.page.locator("#call-heading")).to_have_text("Briefing with Alice")
    expect(b.page.locator("#summary-card .summary-text")).to_contain_text("Jane Doe")
    expect(b.page.locator("#call-timer-label")).to_have_text("Briefing time")
    expect_audio_from(b.page, "agent-alice", "Agent B hears Agent A after the refresh")
    expect_audio_from(a.page, "agent-bob", "Agent A hears Agent B after B's refresh")
    expect_hold_music(customer.page, "the customer on hold")
    session.shot(b, "briefing-after-refresh")


    a.page.get_by_role("button", name="Complete Transfer").click()
    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Bob")
    expect_audio_from(b.page, "customer-", "Agent B hears the customer")
    expect_audio_from(customer.page, "agent-bob", "the customer hears Agent B")

    # And a refresh with the customer restores "Customer Call Active" in the customer room.
    b.page.reload()
    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect_audio_from(b.page, "customer-", "Agent B hears the customer after a second refresh")


def test_sse_blocked_falls_back_to_polling(session):
    blocked = []

    def block_sse(b):
        def abort(route):
            blocked.append(route.request.url)
            route.abort()

        b.context.route("**/api/events*", abort)

    customer, a, b = call_with_agent_a(session, b_setup=block_sse)
    expect(b.page.locator("#feed-status")).to_have_attribute("data-mode", "polling")
    expect(b.page.locator("#feed-status")).to_contain_text("checking every 2 s")
    assert blocked, "the test did not actually block Agent B's SSE stream"

    initiate_transfer_to(a.page, "Bob (bob) · available")
    alert = b.page.locator("#incoming-transfer")
    # Polling every 2 s: allow a few intervals, still far below the ring timeout.
    expect(alert).to_be_visible(timeout=8_000)
    expect(alert.locator("#incoming-caller")).to_have_text("Jane Doe")
    session.shot(b, "incoming-by-polling")
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect_audio_from(b.page, "agent-alice", "Agent B hears Agent A (polling mode)")

    a.page.get_by_role("button", name="Complete Transfer").click()
    # transfer_completed reaches B by polling too, and B joins the customer.
    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active", timeout=8_000)
    expect_audio_from(b.page, "customer-", "Agent B hears the customer (polling mode)")
    expect(b.page.locator("#feed-status")).to_have_attribute("data-mode", "polling")


def test_cancel_while_agent_b_is_still_joining(session):
    """Agent A cancels the moment Agent B accepts: B's browser may still be connecting to a
    transfer room that is being deleted. Neither page may get stuck."""
    customer, a, b = call_with_agent_a(session)
    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(b.page.locator("#incoming-transfer")).to_be_visible()
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "briefing")
    a.page.get_by_role("button", name="Cancel Transfer").click()

    expect(b.page.locator("#idle-view")).to_be_visible(timeout=20_000)
    expect_not_in_a_room(b.page)
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer after the cancel")
    expect_audio_from(customer.page, "agent-alice", "the customer hears Agent A after the cancel")
    assert [t["status"] for t in session.server.only_call()["transfers"]] == ["cancelled"]

"""A transfer to a team, in five browsers: Alice (Agent A) with a customer transfers to team
Billing; both of its members, Bob and Carol, see it ring on their Agent B dashboards; Bob accepts,
Carol's dashboard clears with a message, and the transfer completes to Bob."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.flows import expect_audio_from, sign_in, start_call

pytestmark = pytest.mark.browser


def test_team_transfer_first_member_to_accept_takes_it(session):
    server = session.server
    for agent_id, name in (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")):
        server.add_agent(agent_id, name)
    server.services.teams.add("billing", "Billing", ("invoice", "refund"))
    server.services.teams.add("tech", "Technical Support", ("router",))
    server.services.teams.set_agent_teams("bob", ("billing",))
    server.services.teams.set_agent_teams("carol", ("billing", "tech"))
    customer, a, b, c = (session.person(who) for who in ("customer", "agent-a", "agent-b", "agent-c"))

    sign_in(a.page, "/agent", "alice")
    start_call(customer.page, "Jane Doe")
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer")
    a.page.get_by_label("Note for the record (and for the next agent)").fill("Customer wants a refund of invoice INV-2231.")
    a.page.get_by_role("button", name="Add context").click()
    # Signed in after the call went to Alice, so routing gave it to her.
    sign_in(b.page, "/agent-b", "bob")
    sign_in(c.page, "/agent-b", "carol")

    # Teams come first; the draft summary's suggestion (the note says refund and invoice) is chosen.
    a.page.get_by_role("button", name="Refresh list").click()
    expect(a.page.get_by_label("A team")).to_be_checked()
    team = a.page.get_by_label("Team (the first available member to accept takes the call)")
    expect(team).to_have_value("billing", timeout=20_000)
    expect(team.locator("option[value='billing']")).to_have_text("Billing · 2 available · suggested")
    expect(team.locator("option[value='tech']")).to_have_text("Technical Support · 1 available")
    session.check_a11y(a, "team-target")
    a.page.get_by_role("button", name="Initiate Transfer").click()
    expect(a.page.locator("#transfer-status")).to_contain_text("waiting for team Billing to answer")

    for member in (b, c):
        expect(member.page.locator("#incoming-transfer")).to_be_visible()
        expect(member.page.locator("#incoming-team")).to_contain_text("Team Billing")
        expect(member.page.locator("#incoming-caller")).to_have_text("Jane Doe")
    session.shot(c, "team-transfer-ringing")

    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(b.page.locator("#call-heading")).to_have_text("Briefing with Alice")
    expect(c.page.locator("#incoming-transfer")).to_be_hidden()
    expect(c.page.locator("#alert-text")).to_have_text("Bob took the transfer of Jane Doe; it is no longer offered to you.")
    expect(c.page.locator("#idle-view")).to_be_visible()
    session.check_a11y(c, "team-transfer-taken")
    session.shot(c, "team-transfer-taken")

    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "briefing")
    expect(a.page.locator("#call-heading")).to_have_text("Briefing Bob")
    expect_audio_from(b.page, "agent-alice", "Bob hears Alice in the briefing")
    expect_audio_from(a.page, "agent-bob", "Alice hears Bob in the briefing")

    complete = a.page.get_by_role("button", name="Complete Transfer")
    expect(complete).to_be_enabled()
    complete.click()
    expect(a.page.locator("#alert-text")).to_have_text("Transfer completed: Bob has the customer.")
    expect(b.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(customer.page.locator("#call-status")).to_have_text("Connected with Bob")
    expect_audio_from(customer.page, "agent-bob", "the customer hears Bob")

    state = server.only_call()
    assert state["agent_id"] == "bob" and state["status"] == "transferred"
    assert [(t["status"], t["to_agent_id"]) for t in state["transfers"]] == [("completed", "bob")]

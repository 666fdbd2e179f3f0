"""Text from customers, agents and LLMs is shown as text; the summary editor and the phone
transfer form say what the server answered; the pages work by keyboard and on a narrow screen."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.flows import call_with_agent_a, initiate_transfer_to, sign_in

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert(1)>"
NOTE = f"Customer typed {PAYLOAD} into the chat"


def assert_no_injected_markup(person) -> None:
    page = person.page
    assert page.locator("img").count() == 0, f"{person.name}: an <img> element was created from text"
    assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0


def test_context_summary_and_names_render_as_text(session):
    customer, a, b = call_with_agent_a(session, customer_name=f"Eve {PAYLOAD}")
    expect(a.page.locator("#call-customer")).to_contain_text(PAYLOAD)

    a.page.get_by_label("Note for the record (and for the next agent)").fill(NOTE)
    a.page.get_by_role("button", name="Add context").click()
    expect(a.page.locator("#context-list li", has_text=NOTE)).to_be_visible()

    # Agent A edits the summary (GET/PUT /api/calls/<id>/summary) to contain the payload too.
    a.page.get_by_role("button", name="Edit summary").click()
    editor = a.page.get_by_label("Summary Agent B will see")
    expect(editor).to_be_visible()
    edited = f"Eve reports a chat widget problem. Pasted text: {PAYLOAD}"
    editor.fill(edited)
    a.page.get_by_role("button", name="Save summary").click()
    expect(a.page.locator("#summary-message")).to_have_text("Summary saved. This is what the next agent will see.")
    expect(a.page.locator("#summary-card .summary-text")).to_have_text(edited)
    expect(a.page.locator("#summary-card")).to_contain_text("Edited by alice")

    initiate_transfer_to(a.page, "Bob (bob) · available")
    alert = b.page.locator("#incoming-transfer")
    expect(alert).to_be_visible()
    expect(alert.locator("#incoming-caller")).to_have_text(f"Eve {PAYLOAD}")
    expect(alert.locator(".summary-text")).to_have_text(edited)  # the edited summary is what B sees
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(b.page.locator("#context-list li", has_text=NOTE)).to_be_visible()
    session.shot(b, "payload-as-text")

    for person in (customer, a, b):
        assert_no_injected_markup(person)
    # No alert() dialog ran: the session fixture fails the test on any dialog.


def test_summary_editor_reports_an_unavailable_endpoint(session):
    _customer, a, _b = call_with_agent_a(session)

    def not_there(route):
        route.fulfill(status=404, content_type="application/json",
                      body='{"error": {"code": "not_found", "message": "No such route."}}')

    # Servers without the summary route (older deployments) answer 404: say so clearly.
    a.page.route("**/api/calls/*/summary", not_there)
    a.page.get_by_role("button", name="Edit summary").click()
    expect(a.page.locator("#summary-message")).to_contain_text("Editing the summary is not available on this server")
    expect(a.page.locator("#summary-message")).to_contain_text("404")
    expect(a.page.get_by_label("Summary Agent B will see")).to_be_hidden()


def test_phone_transfer_form_validates_and_shows_the_servers_answer(session):
    _customer, a, _b = call_with_agent_a(session)
    a.page.get_by_label("A phone number").check()
    phone = a.page.get_by_label("Phone number (E.164, e.g. +14155550100)")
    phone.fill("555-0100")
    a.page.get_by_role("button", name="Initiate Transfer").click()
    expect(a.page.locator("#transfer-error")).to_contain_text("international form")
    expect(phone).to_be_focused()

    phone.fill("+14155550100")
    a.page.get_by_role("button", name="Initiate Transfer").click()
    error = a.page.locator("#transfer-error")
    expect(error).to_contain_text("The transfer did not start")
    expect(error).to_contain_text("Twilio")  # this server has no Twilio credentials
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    session.shot(a, "phone-transfer-refused")


def test_keyboard_only_start_and_sign_in_with_visible_focus(session):
    session.server.add_agent("alice", "Alice")
    customer = session.person("customer")
    a = session.person("agent-a")

    page = customer.page
    page.goto("/")
    # The page's one job: the name field has focus on arrival.
    expect(page.get_by_label("Your name")).to_be_focused()
    page.keyboard.type("Kim Keyboard")
    page.keyboard.press("Tab")
    start = page.get_by_role("button", name="Start New Call")
    expect(start).to_be_focused()
    outline = start.evaluate("(el) => getComputedStyle(el).outlineStyle")
    assert outline not in ("", "none"), f"no visible focus ring on the focused button: {outline!r}"
    page.keyboard.press("Enter")
    # Nobody is signed in yet: the caller waits in the queue, with hold music, and is told so.
    expect(page.locator("#call-status")).to_have_attribute("data-state", "on-hold")
    expect(page.locator("#call-status")).to_contain_text("finding an agent")

    agent = a.page
    agent.goto("/agent")
    expect(agent.get_by_label("Agent ID")).to_be_focused()
    agent.keyboard.type("alice")
    agent.keyboard.press("Tab")
    agent.keyboard.type("browser-test-password")
    agent.keyboard.press("Enter")
    expect(agent.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(page.locator("#call-status")).to_have_text("Connected with Alice")
    # Keyboard to the context box and submit with Ctrl+Enter.
    agent.get_by_label("Note for the record (and for the next agent)").focus()
    agent.keyboard.type("Added by keyboard")
    agent.keyboard.press("Control+Enter")
    expect(agent.locator("#context-list li", has_text="Added by keyboard")).to_be_visible()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}], ids=["desktop", "narrow"])
def test_pages_fit_the_window(session, viewport):
    session.server.add_agent("alice", "Alice")
    session.server.add_agent("bob", "Bob")
    customer = session.person("customer", viewport=viewport)
    a = session.person("agent-a", viewport=viewport)
    b = session.person("agent-b", viewport=viewport)
    sign_in(a.page, "/agent", "alice")
    customer.page.goto("/")
    customer.page.get_by_label("Your name").fill("Jane Doe")
    customer.page.get_by_role("button", name="Start New Call").click()
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    sign_in(b.page, "/agent-b", "bob")
    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(b.page.locator("#incoming-transfer")).to_be_visible()

    label = f"{viewport['width']}x{viewport['height']}"
    for person in (customer, a, b):
        overflow = person.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{person.name} scrolls sideways by {overflow}px at {label}"
        session.shot(person, label)
        session.check_a11y(person, label)


def test_presence_and_sign_out(session):
    _customer, a, b = call_with_agent_a(session)
    a.page.get_by_role("button", name="Refresh list").click()
    target = a.page.get_by_label("Agent", exact=True)
    expect(target.locator("option", has_text="Bob (bob) · available")).to_be_enabled()
    # click, then wait for the server's answer: a render in between may show the old presence for a moment
    b.page.get_by_role("radio", name="Away", exact=True).click()
    expect(b.page.get_by_role("radio", name="Away", exact=True)).to_be_checked()
    expect(b.page.locator("#notices")).to_contain_text("You are away")
    a.page.get_by_role("button", name="Refresh list").click()
    expect(target.locator("option", has_text="Bob (bob) · away")).to_be_disabled()
    b.page.reload()
    expect(b.page.get_by_role("radio", name="Away", exact=True)).to_be_checked()
    # click, then wait for the server's answer: a render in between may show the old presence for a moment
    b.page.get_by_role("radio", name="Available", exact=True).click()
    expect(b.page.get_by_role("radio", name="Available", exact=True)).to_be_checked()
    a.page.get_by_role("button", name="Refresh list").click()
    expect(target.locator("option", has_text="Bob (bob) · available")).to_be_enabled()

    b.page.get_by_role("button", name="Sign out").click()
    expect(b.page.get_by_role("heading", name="Agent sign-in")).to_be_visible()
    expect(b.page.locator("#login-error")).to_have_text("You are signed out.")
    b.page.reload()
    expect(b.page.get_by_role("heading", name="Agent sign-in")).to_be_visible()

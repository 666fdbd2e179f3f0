"""The customer page's status pushed over its status stream (issue 13, item 3): with the polling
route blocked the customer still sees every step of a transfer; with the stream blocked, polling
still does the job."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.flows import accept_transfer, call_with_agent_a

pytestmark = pytest.mark.browser

BLOCKED_CHECK = "url => fetch(url).then(() => 'answered', () => 'blocked')"


def _blocker(pattern: str, seen: list[str], requested: list[str] | None = None):
    def setup(person):
        def abort(route):
            seen.append(route.request.url)
            route.abort()

        person.context.route(pattern, abort)
        if requested is not None:
            person.page.on("request", lambda request: requested.append(request.url))

    return setup


def _transfer_and_end(session, customer, a, b) -> None:
    status = customer.page.locator("#call-status")
    accept_transfer(a, b)
    expect(status).to_have_attribute("data-state", "on-hold")
    expect(status).to_contain_text("On hold")
    session.shot(customer, "on-hold")
    a.page.get_by_role("button", name="Complete Transfer").click()
    expect(status).to_have_text("Connected with Bob")
    b.page.get_by_role("button", name="End call").click()
    b.page.get_by_role("button", name="Yes, end call").click()
    expect(customer.page.locator("#ended-view")).to_be_visible()
    expect(customer.page.locator("#ended-text")).to_have_text("The agent ended the call. Thank you for calling.")


def test_customer_status_over_sse_with_polling_blocked(session):
    polled: list[str] = []
    requested: list[str] = []
    customer, a, b = call_with_agent_a(session, customer_setup=_blocker("**/api/calls/*/status", polled, requested))
    view = customer.page.locator("#call-view")
    expect(view).to_have_attribute("data-feed", "sse")
    sid = customer.page.evaluate("() => window.wtDiagnostics.callStatus().session_id")
    # The block is real: the status route cannot be reached from this page.
    assert customer.page.evaluate(BLOCKED_CHECK, f"/api/calls/{sid}/status") == "blocked"
    # The key is in no URL the page opened: the stream is authenticated by its HttpOnly cookie.
    key = customer.page.evaluate("() => JSON.parse(sessionStorage.getItem('wt.customer.call')).customer_key")
    assert customer.page.evaluate("() => document.cookie") == ""  # HttpOnly: not readable by scripts
    assert any(url.endswith(f"/api/calls/{sid}/events") for url in requested)
    assert [url for url in requested if key in url] == []

    _transfer_and_end(session, customer, a, b)
    assert customer.page.evaluate("() => window.wtDiagnostics.statusFeed()") is None  # stopped with the call
    assert [url for url in requested if key in url] == []


def test_customer_status_by_polling_with_the_stream_blocked(session):
    streamed: list[str] = []
    customer, a, b = call_with_agent_a(session, customer_setup=_blocker("**/api/calls/*/events", streamed))
    expect(customer.page.locator("#call-view")).to_have_attribute("data-feed", "polling")
    assert streamed, "the test did not actually block the customer's status stream"
    _transfer_and_end(session, customer, a, b)

"""Steps shared by the browser tests: sign in, start a call, and check that audio really flows.

Audio checks read WebRTC statistics through `window.wtDiagnostics.audioStats()` (the pages'
support hook): "flowing" means the RTP bytes received from a given participant grow by a real
amount and carry audio energy, measured in the page while we wait. Waiting is always a
condition polled with a deadline (Playwright's expect / wait_for_function, the in-page loop
below for the asynchronous getStats(), or `eventually` for database state no page shows), never
a sleep.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from playwright.sync_api import Page, expect

AGENT_PASSWORD = "browser-test-password"  # every agent AppServer.add_agent creates (conftest.py)
AUDIO_TIMEOUT_MS = 20_000
# Opus from Chromium's fake microphone runs at roughly 5 kB/s: 6 kB is over a second of audio.
MIN_NEW_BYTES = 6_000

# Conditions are polled inside the page (page.evaluate awaits the promise); Playwright's
# wait_for_function does not await an async predicate, so it cannot be used with getStats().
_WAIT_FOR_STATS = """async ([check, arg, timeoutMs]) => {
  // Agent audio is recognised by the role the page gives it and by identity, so that a wrong
  // role (an agent taken for hold music) cannot hide it.
  const notAnAgent = (r) => r.role !== 'agent' && !r.identity.startsWith('agent-');
  const conditions = {
    rising: (stats, [prefix, base, minBytes]) => stats.received.some((r) => r.identity.startsWith(prefix)
      && r.bytesReceived - (base[r.trackSid] || 0) >= minBytes && r.totalAudioEnergy > 0),
    // The hold participant's track rising with energy, and nobody else's audio arriving.
    holdOnly: (stats, [base, minBytes]) => stats.state === 'connected' && stats.received.every(notAnAgent)
      && stats.received.some((r) => r.role === 'hold' && r.identity.startsWith('hold-')
        && r.bytesReceived - (base[r.trackSid] || 0) >= minBytes && r.totalAudioEnergy > 0),
    noHold: (stats) => stats.state === 'connected' && stats.received.every((r) => r.role !== 'hold' && !r.identity.startsWith('hold-')),
    // A track of this participant is subscribed, and muted or not as expected.
    published: (stats, [prefix, muted]) => stats.received.some((r) => r.identity.startsWith(prefix) && r.muted === muted),
    // This page is in a room of this kind (call_ or transfer_) and publishes its microphone,
    // muted or not as expected.
    sending: (stats, [roomPrefix, muted]) => stats.state === 'connected' && (stats.room || '').startsWith(roomPrefix)
      && stats.sent !== null && stats.sent.muted === muted,
  };
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = await window.wtDiagnostics.audioStats();
    if (conditions[check](stats, arg)) return { ok: true, stats };
    if (performance.now() > deadline) return { ok: false, stats };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}"""


T = TypeVar("T")


def eventually(check: Callable[[], T], what: str, timeout_s: float = 20.0, every_s: float = 0.05) -> T:
    """Poll a server-side condition (a database read) until it is truthy, with a deadline: the
    Python-side counterpart of Playwright's expect for state no page shows."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what} (last value {value!r})")
        time.sleep(every_s)


def timer_start(page: Page) -> datetime:
    """When the call timer on an agent's page counts from (its data-since, ISO in UTC)."""
    since = page.locator("#call-timer").get_attribute("data-since")
    assert since, "the call timer is not running"
    return datetime.fromisoformat(since.replace("Z", "+00:00"))


def same_instant(shown: datetime, stored: datetime | None) -> bool:
    """A page's Date (millisecond precision) shows this stored timestamp."""
    return stored is not None and abs((shown - stored).total_seconds()) < 0.001


def _wait_for_stats(page: Page, check: str, arg, timeout_ms: int = AUDIO_TIMEOUT_MS) -> dict:
    return page.evaluate(_WAIT_FOR_STATS, [check, arg, timeout_ms])


def sign_in(page: Page, path: str, agent_id: str, heading: str = "Agent sign-in") -> None:
    page.goto(path)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    page.get_by_label("Agent ID").fill(agent_id)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#agent-bar")).to_be_visible()
    expect(page.locator("#agent-name")).to_contain_text(agent_id)


def start_call(page: Page, name: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Call Transfer System")).to_be_visible()
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Start New Call").click()
    expect(page.locator("#call-view")).to_be_visible()


def received_bytes(page: Page) -> dict[str, int]:
    """Bytes received so far per remote track (a re-joined participant gets a new track)."""
    stats = page.evaluate("() => window.wtDiagnostics.audioStats()")
    return {r["trackSid"]: r["bytesReceived"] for r in stats["received"]}


def expect_audio_from(page: Page, identity_prefix: str, who: str) -> None:
    """`page` is receiving audio from a participant whose identity starts with the prefix, and
    the byte counter keeps rising (measured from now, so earlier traffic does not count)."""
    base = received_bytes(page)
    result = _wait_for_stats(page, "rising", [identity_prefix, base, MIN_NEW_BYTES])
    assert result["ok"], f"{who}: no audio rising from {identity_prefix}* within {AUDIO_TIMEOUT_MS} ms; stats before {base}, after {result['stats']}"


def expect_hold_music(page: Page, who: str) -> None:
    """`page` (the customer) hears the hold music: the worker's `hold-…` participant's audio
    keeps arriving with energy, and no agent's audio reaches it."""
    base = received_bytes(page)
    result = _wait_for_stats(page, "holdOnly", [base, MIN_NEW_BYTES])
    assert result["ok"], f"{who}: expected hold music and no agent audio within {AUDIO_TIMEOUT_MS} ms; stats before {base}, after {result['stats']}"


def expect_no_hold_music(page: Page, who: str) -> None:
    """Connected, and the hold participant and its track are gone from `page`'s room."""
    result = _wait_for_stats(page, "noHold", None)
    assert result["ok"], f"{who}: the hold music is still in the room: {result['stats']}"
    page.wait_for_function("() => window.wtDiagnostics.remotes().every((p) => p.role !== 'hold' && !p.identity.startsWith('hold-'))", timeout=AUDIO_TIMEOUT_MS)


def expect_track_from(page: Page, identity_prefix: str, muted: bool, who: str) -> dict:
    """`page` has subscribed to an audio track of the participant, published muted (or not)."""
    result = _wait_for_stats(page, "published", [identity_prefix, muted])
    assert result["ok"], f"{who}: no {'muted' if muted else 'unmuted'} track from {identity_prefix}* within {AUDIO_TIMEOUT_MS} ms: {result['stats']}"
    return result["stats"]


def expect_sending(page: Page, room_prefix: str, muted: bool, who: str) -> dict:
    """`page` is in a room whose name starts with `room_prefix` and publishes its microphone
    track there, muted (or not)."""
    result = _wait_for_stats(page, "sending", [room_prefix, muted])
    assert result["ok"], f"{who}: expected a published {'muted' if muted else 'unmuted'} microphone, got {result['stats']}"
    return result["stats"]


def expect_not_in_a_room(page: Page) -> None:
    page.wait_for_function("() => window.wtDiagnostics.audioState() === 'idle'", timeout=AUDIO_TIMEOUT_MS)


def alice_bob_and_a_customer(session):
    """The usual cast: agents Alice and Bob, and three browsers (customer, agent-a, agent-b)."""
    session.server.add_agent("alice", "Alice")
    session.server.add_agent("bob", "Bob")
    return session.server, session.person("customer"), session.person("agent-a"), session.person("agent-b")


def initiate_transfer_to(page: Page, agent_label: str) -> None:
    page.get_by_role("button", name="Refresh list").click()
    page.get_by_label("Agent", exact=True).select_option(label=agent_label)
    page.get_by_role("button", name="Initiate Transfer").click()


def call_with_agent_a(session, customer_name: str = "Jane Doe", b_options: dict | None = None, b_setup=None, a_name: str = "Alice", customer_setup=None):
    """Alice (Agent A, display name `a_name`) with a customer on a live call, Bob (Agent B)
    signed in on /agent-b.

    Bob signs in after the call is assigned, so routing gives the call to Alice. `b_setup`
    runs on Bob's page before it loads (e.g. to intercept routes), `customer_setup` on the
    customer's before the call starts."""
    session.server.add_agent("alice", a_name)
    session.server.add_agent("bob", "Bob")
    customer = session.person("customer")
    if customer_setup is not None:
        customer_setup(customer)
    a = session.person("agent-a")
    b = session.person("agent-b", **(b_options or {}))
    sign_in(a.page, "/agent", "alice")
    start_call(customer.page, customer_name)
    expect(a.page.locator("#call-heading")).to_have_text("Customer Call Active")
    expect(customer.page.locator("#call-status")).to_have_attribute("data-state", "with-agent")
    expect_audio_from(a.page, "customer-", "Agent A hears the customer")
    if b_setup is not None:
        b_setup(b)
    sign_in(b.page, "/agent-b", "bob")
    return customer, a, b


def accept_transfer(a, b) -> None:
    """Alice transfers to Bob; Bob accepts; both are in the transfer room hearing each other."""
    initiate_transfer_to(a.page, "Bob (bob) · available")
    expect(b.page.locator("#incoming-transfer")).to_be_visible()
    b.page.get_by_role("button", name="Accept Transfer").click()
    expect(b.page.locator("#call-heading")).to_have_text("Briefing with Alice")
    expect(a.page.locator("#transfer-status")).to_have_attribute("data-status", "briefing")
    expect_audio_from(b.page, "agent-alice", "Agent B hears Agent A in the briefing")
    expect_audio_from(a.page, "agent-bob", "Agent A hears Agent B in the briefing")

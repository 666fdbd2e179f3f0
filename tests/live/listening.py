"""Listening windows for the live scenarios: who heard which tone over the same stretch of time.

Every party sends its own tone: the phone customer and Agent B's phone (SIP legs, see
steps.SIP_TONES) and the agents in the browser (LiveKit participants). A window is taken
at the same time from each hearer: the next LISTEN_S seconds a participant receives from a
given remote participant, and the next LISTEN_S seconds each phone records (minus SKIP_S at
the start, which may predate a track that was only just subscribed).
"""
from __future__ import annotations

import asyncio

from livekit import rtc

from tests.live.app_env import LiveEnv
from tests.live.audio import ToneReport, analyse
from tests.live.participant import RATE, ToneParticipant
from tests.live.sip_legs import LiveLeg

LISTEN_S = 2.0
SKIP_S = 0.5
SETTLE_S = 0.5
TIMEOUT_S = 15.0


def sip_role(role: str):
    """Test-side recognition of a SIP participant, by the attributes the trunk mapped."""
    return lambda p: p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP and p.attributes.get("wt_role") == role


def by_identity(identity: str):
    return lambda p: p.identity == identity


def remote(env: LiveEnv, participant: ToneParticipant, predicate, what: str) -> str:
    """The identity of the first remote participant matching `predicate`, once audio from it flows."""
    found = env.loop.run(participant.wait_participant(predicate, TIMEOUT_S, what))
    env.loop.run(participant.record(found.identity, SETTLE_S, TIMEOUT_S))
    return found.identity


def listen(env: LiveEnv, freqs: list[float], participants: dict[str, tuple[ToneParticipant, str]],
           phones: dict[str, LiveLeg]) -> dict[str, ToneReport]:
    """Reports keyed by the given names: what each participant heard from its identity, and
    what each phone recorded, over one shared window."""
    marks = {name: leg.recording.length() for name, leg in phones.items()}

    async def record_all():
        return await asyncio.gather(*(p.record(identity, LISTEN_S, TIMEOUT_S) for p, identity in participants.values()))

    reports = {}
    for name, samples in zip(participants, env.loop.run(record_all(), TIMEOUT_S + 5), strict=True):
        reports[name] = analyse(samples, RATE, freqs)
    for name, leg in phones.items():
        env.wait_until(leg.recording.ready, TIMEOUT_S, f"the {name} phone's recording started")
        rate = leg.recording.rate
        end = marks[name] + int(LISTEN_S * rate)
        env.wait_until(lambda leg=leg, end=end: leg.recording.length() >= end, TIMEOUT_S, f"{LISTEN_S:g}s recorded by the {name} phone")
        reports[name] = analyse(leg.recording.samples()[marks[name] + int(SKIP_S * rate):end], rate, freqs)
    for name, report in reports.items():
        print(f"[heard] {name}: {report}")  # shown with -s, and with a failing test's output
    return reports

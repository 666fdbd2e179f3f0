"""Agent B's phone leg: what may be dialled, and what happens to the leg when a transfer moves on.

What to do with the leg (cancel it, hang it up, redirect it with new TwiML) depends on the state
the transfer is in, so it is decided inside the transaction that changes that state and recorded
in a `LegPlan`. The Twilio REST calls run after the commit (never inside a transaction) and are
best effort: if Twilio cannot be reached the leg still ends, because every webhook on that leg
checks the transfer first and the LiveKit rooms it could be bridged into are deleted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

import twiml
from app import states
from app.errors import ConfigError, Forbidden, TelephonyNotConfigured, TwilioError
from app.gateways.twilio import TwilioGateway
from app.models import Call, Transfer

log = logging.getLogger(__name__)

INTO_CALL_INTRO = "You are now connected to the caller."


@dataclass(frozen=True)
class LegAction:
    """One REST request on a leg: `status` (canceled/completed) ends it, `twiml` redirects it."""

    transfer_id: str
    call_sid: str
    status: str | None = None
    twiml: str | None = None


def leg_answered(t: Transfer) -> bool:
    """Someone picked the phone up: Twilio said so, or Agent B pressed 1 (only possible once answered)."""
    return t.leg_status == "in-progress" or t.answered_at is not None


class PhoneLegs:
    def __init__(self, gateway: TwilioGateway | None, voice: twiml.Voice, trunk: twiml.SipTrunk | None, settings):
        self.gateway = gateway
        self.voice = voice
        self.trunk = trunk
        self.public_base_url = settings.PUBLIC_BASE_URL
        self.allowed_prefixes = settings.TRANSFER_ALLOWED_PREFIXES
        self.own_number = settings.TWILIO_PHONE_NUMBER

    @classmethod
    def from_config(cls, settings, gateway: TwilioGateway | None) -> "PhoneLegs":
        """Voice and SIP trunk from the environment; a malformed one stops start-up (ConfigError)
        instead of failing on a live call."""
        try:
            voice = twiml.Voice(settings.TWILIO_VOICE, settings.TWILIO_LANGUAGE)
            trunk = None
            if settings.LIVEKIT_SIP_HOST:
                trunk = twiml.SipTrunk(
                    host=settings.LIVEKIT_SIP_HOST,
                    username=settings.LIVEKIT_SIP_USERNAME or None,
                    password=settings.LIVEKIT_SIP_PASSWORD or None,
                )
        except ValueError as err:
            raise ConfigError(f"Telephony settings: {err}") from err
        return cls(gateway, voice, trunk, settings)

    # -- before dialling -------------------------------------------------------------------
    def missing_settings(self) -> list[str]:
        missing = [] if self.gateway is not None else ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER"]
        if not self.public_base_url:
            missing.append("PUBLIC_BASE_URL")  # Twilio needs absolute callback URLs
        if self.trunk is None:
            missing.append("LIVEKIT_SIP_HOST")  # Agent B is bridged into LiveKit over SIP
        return missing

    def check_can_dial(self, number: str) -> TwilioGateway:
        """The gateway to dial `number` with, or the typed reason it may not be dialled."""
        missing = self.missing_settings()
        if missing:
            raise TelephonyNotConfigured("Phone transfers need Twilio and LiveKit SIP: set " + ", ".join(missing) + ".")
        if number == self.own_number:
            raise Forbidden("That is this service's own number: the call would come straight back in.", code="number_not_allowed")
        if self.allowed_prefixes and not number.startswith(self.allowed_prefixes):
            raise Forbidden(
                "That number is outside the prefixes phone transfers may dial (TRANSFER_ALLOWED_PREFIXES).",
                code="number_not_allowed",
            )
        return self.gateway

    # -- decisions (inside a transaction; pure) ----------------------------------------------
    def teardown(self, t: Transfer, *, caller_left: bool = False) -> LegAction | None:
        """End the leg of a transfer that has just ended. `t` must be freshly loaded.

        Not yet answered: `canceled` (stops the ringing). Answered: `completed` hangs up; but when
        the caller left, Agent B is told so first (redirect to `caller_left`, which hangs up)."""
        if not t.to_phone or not t.twilio_call_sid or t.leg_status in states.LEG_FINAL:
            return None
        if not leg_answered(t):
            return LegAction(t.id, t.twilio_call_sid, status="canceled")
        if caller_left:
            return LegAction(t.id, t.twilio_call_sid, twiml=twiml.inline_twiml(twiml.caller_left(self.voice)))
        return LegAction(t.id, t.twilio_call_sid, status="completed")

    def into_call_room(self, t: Transfer, call: Call) -> LegAction:
        """Move Agent B's leg out of the transfer room into the customer's room."""
        if self.trunk is None:
            raise TelephonyNotConfigured("LIVEKIT_SIP_HOST is not set, so Agent B's phone cannot be bridged.")
        response = twiml.agent_bridge(
            voice=self.voice, trunk=self.trunk, room=call.room_name, call_id=call.id, transfer_id=t.id, intro=INTO_CALL_INTRO
        )
        return LegAction(t.id, t.twilio_call_sid, twiml=twiml.inline_twiml(response))

    def goodbye(self, t: Transfer, response) -> LegAction | None:
        if not t.twilio_call_sid:
            return None
        return LegAction(t.id, t.twilio_call_sid, twiml=twiml.inline_twiml(response))

    # -- doing it (after commit) -------------------------------------------------------------
    def perform(self, action: LegAction) -> None:
        """Run one action; typed Twilio errors propagate (used where the caller must know)."""
        if self.gateway is None:
            raise TelephonyNotConfigured("Twilio is not configured, so Agent B's phone leg cannot be changed.")
        if action.twiml is not None:
            self.gateway.redirect(action.call_sid, action.twiml)
        else:
            self.gateway.end(action.call_sid, action.status)

    def run(self, actions: Iterable[LegAction | None]) -> None:
        """Best effort: a failure is logged; the leg's own webhooks end it (see module doc)."""
        for action in actions:
            if action is None:
                continue
            try:
                self.perform(action)
            except (TwilioError, TelephonyNotConfigured) as err:
                log.warning("phone leg %s of transfer %s not updated: %s", action.call_sid, action.transfer_id, err.message)


@dataclass
class LegPlan:
    """Leg actions decided inside one transaction, to run once it has committed."""

    legs: PhoneLegs | None
    actions: list[LegAction] = field(default_factory=list)

    def teardown(self, t: Transfer, *, caller_left: bool = False) -> None:
        if self.legs is not None and t.to_phone:
            action = self.legs.teardown(t, caller_left=caller_left)
            if action is not None:
                self.actions.append(action)

    def move_into_call(self, t: Transfer, call: Call) -> None:
        if self.legs is None or not t.twilio_call_sid:
            return
        try:
            self.actions.append(self.legs.into_call_room(t, call))
        except TelephonyNotConfigured as err:
            # Never block the state change on configuration: the leg ends with its room instead.
            log.error("cannot move phone leg of transfer %s into the call: %s", t.id, err.message)

    def add(self, action: LegAction | None) -> None:
        if action is not None:
            self.actions.append(action)

    def run(self) -> None:
        if self.legs is not None and self.actions:
            self.legs.run(self.actions)
        self.actions = []

"""Agent B's phone leg: what may be dialled, and what happens to the leg when a transfer moves on.

What to do with the leg (cancel it, hang it up, redirect it with new TwiML) depends on the state
the transfer is in, so it is decided inside the transaction that changes that state and recorded
there as a task (`app.services.effects`); a worker makes the Twilio REST request after the
commit, with retries. If Twilio cannot be reached for long the leg still ends: every webhook on
that leg checks the transfer first, and the LiveKit rooms it could be bridged into are deleted.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import twiml
from app import states
from app.errors import ConfigError, TelephonyNotConfigured, ValidationFailed
from app.gateways.twilio import TwilioGateway
from app.models import Call, Transfer, utcnow
from app.services import effects
from app.services.effects import LegAction
from app.services.phone_numbers import dialable
from app.services.twilio_urls import WebhookUrls

log = logging.getLogger(__name__)

INTO_CALL_INTRO = "You are now connected to the caller."
# How long Agent B's <Dial><Sip> may ring before Twilio gives up (Twilio's default is 30 s, plus
# its own 5 s buffer). LiveKit SIP answers as soon as someone in the room publishes audio, and
# the other party is always there first, so a bridge that rings this long has failed.
BRIDGE_DIAL_TIMEOUT_S = 30
# After the hand-over, the transfer room (which Agent B's old SIP leg is still in) is deleted once
# LiveKit reports that leg in the customer's room, or after this long at most.
BRIDGE_WAIT_S = 20


def leg_answered(t: Transfer) -> bool:
    """Someone picked the phone up: Twilio said so, or Agent B pressed 1 (only possible once answered)."""
    return t.leg_status == "in-progress" or t.answered_at is not None


class PhoneLegs:
    def __init__(self, gateway: TwilioGateway | None, voice: twiml.Voice, trunk: twiml.SipTrunk | None, settings):
        self.gateway = gateway
        self.voice = voice
        self.trunk = trunk
        self.public_base_url = settings.PUBLIC_BASE_URL
        self.urls = WebhookUrls(settings.PUBLIC_BASE_URL)
        self.allowed_prefixes = settings.TRANSFER_ALLOWED_PREFIXES
        self.own_number = settings.TWILIO_PHONE_NUMBER

    @classmethod
    def from_config(cls, settings, gateway: TwilioGateway | None) -> PhoneLegs:
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
                    edge=settings.TWILIO_SIP_EDGE or None,
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
        number = dialable(number)  # also a stored agent's phone, checked again before every dial
        if number == self.own_number:
            raise ValidationFailed("That is this service's own number: the call would come straight back in.", code="number_not_allowed")
        if self.allowed_prefixes and not number.startswith(self.allowed_prefixes):
            raise ValidationFailed(
                "That number is outside the prefixes phone transfers may dial (TRANSFER_ALLOWED_PREFIXES).",
                code="number_not_allowed",
            )
        return self.gateway

    # -- decisions (pure) ----------------------------------------------------------------------
    def teardown(self, t: Transfer, *, caller_left: bool = False) -> LegAction | None:
        """How to end the leg of a transfer that has just ended. `t` must be freshly loaded.

        Not yet answered: `canceled` (stops the ringing). Answered: `completed` hangs up; but when
        the caller left, Agent B is told so first (redirect to `caller_left`, which hangs up)."""
        if not t.to_phone or not t.twilio_call_sid or t.leg_status in states.LEG_FINAL:
            return None
        if not leg_answered(t):
            return LegAction(t.id, t.twilio_call_sid, "teardown", status="canceled")
        if caller_left:
            return LegAction(t.id, t.twilio_call_sid, "caller_left", twiml=twiml.inline_twiml(twiml.caller_left(self.voice)))
        return LegAction(t.id, t.twilio_call_sid, "teardown", status="completed")

    def bridge(self, t: Transfer, room: str, *, intro: str, into_call: bool):
        """Agent B's `<Dial><Sip>` into `room`, reporting its end to the bridge webhook."""
        if self.trunk is None:
            raise TelephonyNotConfigured("LIVEKIT_SIP_HOST is not set, so Agent B's phone cannot be bridged.")
        return twiml.agent_bridge(
            voice=self.voice, trunk=self.trunk, room=room, call_id=t.call_id, transfer_id=t.id, intro=intro,
            dial_action_url=self.urls.transfer_bridge(t.id, into_call=into_call) if self.public_base_url else None,
            timeout_s=BRIDGE_DIAL_TIMEOUT_S,
        )

    def into_call_room(self, t: Transfer, call: Call) -> LegAction:
        """Move Agent B's leg out of the transfer room into the customer's room."""
        response = self.bridge(t, call.room_name, intro=INTO_CALL_INTRO, into_call=True)
        return LegAction(t.id, t.twilio_call_sid, "move_into_call", twiml=twiml.inline_twiml(response))

    def goodbye(self, t: Transfer, response) -> LegAction | None:
        if not t.twilio_call_sid:
            return None
        return LegAction(t.id, t.twilio_call_sid, "goodbye", twiml=twiml.inline_twiml(response))

    # -- inside a transaction: what to do with the leg, as tasks --------------------------------
    def schedule_teardown(self, s, t: Transfer, *, caller_left: bool = False, then: list[dict] | tuple = ()) -> bool:
        """End the leg after commit, then run `then`. False (nothing scheduled) if there is no leg."""
        action = self.teardown(t, caller_left=caller_left) if t.to_phone else None
        if action is None:
            return False
        effects.update_leg(s, action, then)
        return True

    def schedule_move(self, s, t: Transfer, call: Call) -> None:
        """Redirect the leg into the customer's room, then delete the transfer room once LiveKit has
        Agent B there (deleting it first would end the leg before Twilio applied the redirect)."""
        if not t.twilio_call_sid:
            effects.delete_room(s, t.transfer_room)  # nothing to move: the leg never reported its SID
            return
        cleanup = effects.delete_room_step(t.transfer_room, wait_for_bridge=t.id, bridge_deadline=utcnow() + timedelta(seconds=BRIDGE_WAIT_S))
        try:
            action = self.into_call_room(t, call)
        except TelephonyNotConfigured as err:
            # Never block the state change on configuration: the leg ends with its room instead.
            log.error("cannot move phone leg of transfer %s into the call: %s", t.id, err.message)
            effects.delete_room(s, t.transfer_room)
            return
        effects.update_leg(s, action, [cleanup])

    def schedule_goodbye(self, s, t: Transfer, response) -> None:
        action = self.goodbye(t, response)
        if action is not None:
            effects.update_leg(s, action)

    # -- doing it (the worker, after commit) -------------------------------------------------
    def perform(self, action: LegAction) -> None:
        """Run one action; typed Twilio errors propagate (the worker retries or records them)."""
        if self.gateway is None:
            raise TelephonyNotConfigured("Twilio is not configured, so Agent B's phone leg cannot be changed.")
        if action.twiml is not None:
            self.gateway.redirect(action.call_sid, action.twiml)
        else:
            self.gateway.end(action.call_sid, action.status)

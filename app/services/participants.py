"""Who is who in a LiveKit room, from a webhook's ParticipantInfo.

Never by a guessed identity such as LiveKit SIP's `sip_<number>`:
- SIP participants (kind SIP) by the attributes the inbound trunk maps from Twilio's X-WT-*
  headers (app.gateways.livekit_sip): `wt_role` customer or agent_b, `wt_call`, which must be
  the room's own call, and `wt_transfer` for Agent B's leg.
- Browser participants by the identity in the token the app minted: `customer-<call id>` or
  `agent-<agent id>`; the worker's hold audio by `hold-<call id>`; a supervisor by
  `supervisor-<agent id>` (with the supervision its token was for), never as an agent.
The names (attributes, roles, identities) are the wire contract's, app.protocol.
"""
from __future__ import annotations

from dataclasses import dataclass

from livekit.protocol.models import ParticipantInfo
from sqlalchemy import or_

from app.gateways.livekit import Participant
from app.models import Call
from app.protocol import (
    ATTR_CALL,
    ATTR_ROLE,
    ATTR_SUPERVISION,
    ATTR_TRANSFER,
    ROLE_AGENT_B,
    ROLE_CUSTOMER,
    customer_identity,
    hold_identity,
    parse_identity,
)


@dataclass(frozen=True)
class Who:
    role: str  # customer | agent | agent_b | hold | supervisor | other
    sip: bool = False
    agent_id: str | None = None
    transfer_id: str | None = None
    supervision_id: str | None = None


def identify(participant: ParticipantInfo, call_id: str) -> Who:
    """Who a webhook's participant is in the rooms of call `call_id`."""
    attrs = dict(participant.attributes)
    if participant.kind == ParticipantInfo.Kind.SIP:
        if attrs.get(ATTR_CALL) != call_id:
            return Who("other", sip=True)
        role = attrs.get(ATTR_ROLE)
        if role == ROLE_CUSTOMER:
            return Who("customer", sip=True)
        if role == ROLE_AGENT_B:
            return Who("agent_b", sip=True, transfer_id=attrs.get(ATTR_TRANSFER) or None)
        return Who("other", sip=True)
    if participant.identity == customer_identity(call_id):
        return Who("customer")
    if participant.identity == hold_identity(call_id):
        return Who("hold")
    minted = parse_identity(participant.identity)
    if minted is not None and minted[0] == "agent":
        return Who("agent", agent_id=minted[1])
    if minted is not None and minted[0] == "supervisor":
        return Who("supervisor", agent_id=minted[1], supervision_id=attrs.get(ATTR_SUPERVISION) or None)
    return Who("other")


def agent_b_leg_in(participants: list[Participant], transfer_id: str) -> bool:
    """Whether Agent B's phone leg of this transfer is among `participants` (RoomService's list)."""
    return any(
        p.kind == "sip" and p.attributes.get(ATTR_ROLE) == ROLE_AGENT_B and p.attributes.get(ATTR_TRANSFER) == transfer_id
        for p in participants
    )


def since_ms(participant: ParticipantInfo) -> int:
    """When this LiveKit session of the participant began: orders a customer's sessions."""
    return int(participant.joined_at_ms or participant.joined_at * 1000)


def newer_session(participant: ParticipantInfo):
    """SQL condition: this session of the customer began after the newest one the call has seen."""
    return or_(Call.customer_since_ms.is_(None), Call.customer_since_ms < since_ms(participant))

"""Who a team transfer is offered to, inside the caller's transaction (docs/architecture.md §3).

A team transfer is offered to the members who are free when it starts (Agent A excepted): one
`transfer_offers` row each. The first of them to accept takes it (app.services.transfers sets
`to_agent_id` with a conditional UPDATE, so of two concurrent accepts exactly one wins); the
others are told `transfer_taken`. A member who declines is no longer offered it, and the
transfer rings on for the rest; once every member offered has declined it ends `declined`.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import TransferOffer, utcnow


def offer(s: Session, transfer_id: str, agent_ids: list[str]) -> None:
    s.add_all(TransferOffer(transfer_id=transfer_id, agent_id=agent_id) for agent_id in agent_ids)


def offered(s: Session, transfer_id: str) -> list[str]:
    """The members the transfer is still offered to (those who have not declined)."""
    query = select(TransferOffer.agent_id).where(TransferOffer.transfer_id == transfer_id, TransferOffer.declined_at.is_(None))
    return list(s.scalars(query.order_by(TransferOffer.agent_id)))


def offer_of(s: Session, transfer_id: str, agent_id: str) -> TransferOffer | None:
    return s.get(TransferOffer, (transfer_id, agent_id), populate_existing=True)


def decline(s: Session, transfer_id: str, agent_id: str) -> bool:
    """This member no longer wants it. False if they had already declined (a no-op)."""
    result = s.execute(
        update(TransferOffer)
        .where(TransferOffer.transfer_id == transfer_id, TransferOffer.agent_id == agent_id, TransferOffer.declined_at.is_(None))
        .values(declined_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1

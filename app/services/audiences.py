"""Who is told about a call: the audience of an event every agent on the call should see
(docs/architecture.md §8).

One answer, so that a note, a transcript line, an edited summary, the customer's presence and the
call's end reach the same people:
- every agent whose current call it is (`agents.active_call_id`): the owner, Agent B once they
  have accepted, an agent still leaving after a hand-over;
- the call's owner (`calls.agent_id`) even when their slot says otherwise: the agent answerable
  for the call must not miss its end because of a release that raced the event;
- both ends of an open transfer, so a ringing Agent B (who has not claimed the call yet) sees
  the context they are about to take over.

Events addressed to one party stay explicit where they are emitted (an assignment to its agent,
`transfer_accepted` to Agent A, a summary draft to the owner alone).
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Call
from app.repo import agents_in_call, open_transfer


def call_audience(s: Session, call: Call) -> set[str]:
    """The agent ids to address an event about `call` to, read inside the caller's transaction
    (so before a change that releases them, if the ones released should still be told)."""
    audience = set(agents_in_call(s, call.id))
    audience.add(call.agent_id)
    transfer = open_transfer(s, call.id)
    if transfer is not None:
        audience |= {transfer.from_agent_id, transfer.to_agent_id}
    audience.discard(None)  # no owner yet; a phone Agent B has no agent id
    return audience

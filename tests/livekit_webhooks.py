"""LiveKit webhooks in app tests: POST /livekit/webhook signed exactly as livekit-server signs them
(the Twirp double's `webhook()`), and participants joining and leaving the double's rooms."""
from __future__ import annotations

from livekit.protocol import models


def post(client, body: str, authorization: str | None):
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.post("/livekit/webhook", data=body, headers=headers, content_type="application/webhook+json")


def send(client, double, event: str, *, room: str, participant=None, event_id: str | None = None):
    body, token = double.webhook(event, room=room, participant=participant, event_id=event_id)
    r = post(client, body, token)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["outcome"]


def join(double, room: str, identity: str, *, at_ms: int | None = None, **kw) -> models.ParticipantInfo:
    info = double.join(room, identity, **kw)
    if at_ms is not None:
        info.joined_at_ms = at_ms
    return info


def session(identity: str, sid: str, at_ms: int) -> models.ParticipantInfo:
    """A participant session as LiveKit describes it in a webhook (for out-of-order tests)."""
    return models.ParticipantInfo(sid=sid, identity=identity, joined_at=at_ms // 1000, joined_at_ms=at_ms)


def leave(double, room: str, identity: str) -> None:
    with double._lock:
        double.rooms[room].participants.pop(identity, None)


def row(services, model, id_):
    with services.db.reading() as s:
        return s.get(model, id_)

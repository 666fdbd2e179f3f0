"""The LiveKit gateway against the local Twirp double: real requests, real JWTs, real errors."""
from __future__ import annotations

import multiprocessing
import socket
import time

import pytest
from livekit import api as lk

from app.errors import LiveKitFailed, LiveKitUnavailable
from app.gateways.livekit import LiveKitGateway, agent_identity, customer_identity

_open: list[LiveKitGateway] = []


def _gateway(double, **kw) -> LiveKitGateway:
    params = dict(http_url=double.url, ws_url="ws://x", api_key=double.api_key, api_secret=double.api_secret, timeout_s=2.0)
    params.update(kw)
    gateway = LiveKitGateway(**params)
    _open.append(gateway)
    return gateway


@pytest.fixture
def double(livekit_double):
    livekit_double.reset()
    yield livekit_double
    while _open:
        _open.pop().close()


def test_create_list_delete_room_with_the_grants_each_call_needs(double):
    gw = _gateway(double, empty_timeout_s=120)
    gw.create_room("call_abc", max_participants=3, metadata={"wt_call": "abc"})
    created = double.calls("CreateRoom")[0]
    assert created.request.name == "call_abc"
    assert created.request.empty_timeout == 120 and created.request.max_participants == 3
    assert created.grants.room_create is True and not created.grants.room_join
    assert gw.list_rooms() == ["call_abc"]
    assert double.calls("ListRooms")[0].grants.room_list is True
    assert gw.delete_room("call_abc") is True
    assert gw.delete_room("call_abc") is False  # already gone is not an error
    assert gw.list_rooms() == []


def test_participants_are_listed_and_removed_with_a_room_scoped_admin_grant(double):
    gw = _gateway(double)
    gw.create_room("call_p")
    double.join("call_p", "customer-p", name="Jane", attributes={"wt_role": "customer"})
    double.join("call_p", "agent-alice")
    people = gw.list_participants("call_p")
    assert {p.identity for p in people} == {"customer-p", "agent-alice"}
    assert next(p for p in people if p.identity == "customer-p").attributes == {"wt_role": "customer"}
    recorded = double.calls("ListParticipants")[0]
    assert recorded.grants.room_admin and recorded.grants.room == "call_p"
    assert gw.remove_participant("call_p", "agent-alice") is True
    assert gw.remove_participant("call_p", "agent-alice") is False
    assert [p.identity for p in gw.list_participants("call_p")] == ["customer-p"]


def test_server_errors_are_typed(double):
    gw = _gateway(double)
    double.fail_next("CreateRoom", 500, "internal", "boom")
    with pytest.raises(LiveKitUnavailable) as err:
        gw.create_room("call_x")
    assert double.url in err.value.message and "internal" in err.value.message
    double.fail_next("CreateRoom", 400, "invalid_argument", "bad name")
    with pytest.raises(LiveKitFailed) as err:
        gw.create_room("call_x")
    assert "bad name" in err.value.message and err.value.status == 503


def test_wrong_secret_is_rejected_by_the_server_and_reported(double):
    gw = _gateway(double, api_secret="not-the-right-secret-at-all-000000")
    with pytest.raises(LiveKitFailed) as err:
        gw.create_room("call_y")
    assert "unauthenticated" in err.value.message
    assert double.rooms == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_a_503_naming_the_url():
    url = f"http://127.0.0.1:{_free_port()}"
    gw = LiveKitGateway(http_url=url, ws_url="ws://x", api_key="k", api_secret="s" * 32, timeout_s=1.0)
    _open.append(gw)
    started = time.monotonic()
    with pytest.raises(LiveKitUnavailable) as err:
        gw.create_room("call_z")
    assert url in err.value.message and err.value.code == "livekit_unavailable"
    assert time.monotonic() - started < 5


def test_tokens_grant_one_room_for_a_short_time(double):
    gw = _gateway(double, token_ttl_s=600)
    verifier = lk.TokenVerifier(double.api_key, double.api_secret)
    now = time.time()
    claims = verifier.verify(gw.customer_token("abc", "call_abc", "Jane"))
    assert claims.identity == customer_identity("abc") and claims.name == "Jane"
    assert claims.video.room == "call_abc" and claims.video.room_join
    assert not claims.video.room_admin and not claims.video.room_create and not claims.video.room_list
    assert claims.video.can_publish_sources == ["microphone"]
    assert claims.attributes == {"wt_role": "customer", "wt_call": "abc"}
    import jwt

    exp = jwt.decode(gw.customer_token("abc", "call_abc", "Jane"), options={"verify_signature": False})["exp"]
    assert now + 590 <= exp <= now + 610

    agent = verifier.verify(gw.agent_token("alice", "Alice", "transfer_abc_1234", "abc", "agent_a"))
    assert agent.identity == agent_identity("alice") and agent.video.room == "transfer_abc_1234"


def test_a_customer_token_is_never_minted_for_a_transfer_room(double):
    gw = _gateway(double)
    with pytest.raises(ValueError):
        gw.customer_token("abc", "transfer_abc_1234", "Jane")
    with pytest.raises(ValueError):
        gw.agent_token("alice", "Alice", "some_other_room", "abc", "owner")


def _child_creates_room(gw: LiveKitGateway, name: str, out) -> None:
    try:
        gw.create_room(name)
        out.put("ok")
    except Exception as err:  # report the failure to the parent instead of dying silently
        out.put(repr(err))


def test_gateway_keeps_working_in_a_forked_child(double):
    """gunicorn --preload forks after the parent may have used the gateway."""
    gw = _gateway(double)
    gw.create_room("call_parent")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_creates_room, args=(gw, "call_child", out))
    child.start()
    child.join(20)
    assert out.get(timeout=1) == "ok"
    assert {"call_parent", "call_child"} <= set(double.rooms)
    gw.create_room("call_parent_again")
    assert "call_parent_again" in double.rooms

"""Races between agents: exactly one of two conflicting requests wins, the loser gets a 409."""
from __future__ import annotations

import threading

import pytest

from tests.support import AgentClient, call_status, start_call, start_transfer, stored_call


def _race(*actions):
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(i, action):
        barrier.wait()
        results[i] = action()

    threads = [threading.Thread(target=run, args=(i, act)) for i, act in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return [r.status_code for r in results], results


def transfer_status(app, transfer_id: str) -> str:
    from app.models import Transfer

    with app.extensions["wt"].db.reading() as s:
        return s.get(Transfer, transfer_id).status


def _second_session(app, agent: AgentClient) -> AgentClient:
    tab = AgentClient(app.test_client(), agent.id, agent.password)
    tab.login()
    return tab


@pytest.mark.parametrize("round_", range(4))
def test_complete_versus_decline(app, client, make_agent, round_):
    a, b = make_agent(f"a{round_}"), make_agent(f"b{round_}")
    call = start_call(client, a)
    t = start_transfer(a, call, b.id)
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    codes, _ = _race(
        lambda: a.post("/api/complete-transfer", {"transfer_id": t["id"]}),
        lambda: b.post("/api/decline-transfer", {"transfer_id": t["id"]}),
    )
    assert sorted(codes) == [200, 409], codes
    status = stored_call(app.extensions["wt"], call["session_id"]).status
    if codes[0] == 200:
        assert status == "transferred"
    else:
        assert status == "active"


@pytest.mark.parametrize("round_", range(4))
def test_complete_versus_cancel_from_two_tabs(app, client, make_agent, round_):
    a, b = make_agent(f"a{round_}"), make_agent(f"b{round_}")
    tab = _second_session(app, a)
    call = start_call(client, a)
    t = start_transfer(a, call, b.id)
    b.post("/api/accept-transfer", {"transfer_id": t["id"]})
    codes, results = _race(
        lambda: a.post("/api/complete-transfer", {"transfer_id": t["id"]}),
        lambda: tab.post("/api/cancel-transfer", {"transfer_id": t["id"]}),
    )
    assert sorted(codes) == [200, 409], codes
    loser = results[codes.index(409)]
    assert loser.json["error"]["code"] == "invalid_state"
    final = transfer_status(app, t["id"])
    assert final == ("completed" if codes[0] == 200 else "cancelled")


def test_accept_versus_cancel(app, client, make_agent):
    """Cancel is allowed from ringing and from briefing, so both may succeed (accept first) —
    but the transfer always ends cancelled, and Bob is never left holding the call."""
    for i in range(4):
        a, b = make_agent(f"a{i}"), make_agent(f"b{i}")
        call = start_call(client, a)
        t = start_transfer(a, call, b.id)
        codes, _ = _race(
            lambda b=b, t=t: b.post("/api/accept-transfer", {"transfer_id": t["id"]}),
            lambda a=a, t=t: a.post("/api/cancel-transfer", {"transfer_id": t["id"]}),
        )
        assert codes in ([200, 200], [409, 200]), codes
        assert a.get(f"/api/calls/{call['session_id']}").json["call"]["transfers"][0]["status"] == "cancelled"
        assert b.get("/api/me").json["agent"]["busy"] is False
        assert call_status(a, call["session_id"]) == "active"


def test_two_new_calls_never_get_the_same_agent(app, make_agent):
    make_agent("solo")
    codes, results = _race(*[lambda: app.test_client().post("/api/create-call", json={"customer_name": "C"}) for _ in range(4)])
    assert codes == [201] * 4
    assigned = [r.json["agent_id"] for r in results]
    assert assigned.count("solo") == 1 and assigned.count(None) == 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_callers_arriving_together_each_get_a_free_agent(app, make_agent):
    """Found by the load run: concurrent arrivals read the same longest-idle agents, queued on the
    first one's row lock, and gave up once it was taken, so callers waited while agents idled."""
    # More callers than the 25 agents the old code read per arrival, and agents to spare.
    agents = [make_agent(f"agent{i:02d}") for i in range(40)]
    clients = [app.test_client() for _ in range(32)]
    codes, results = _race(*[
        (lambda c=c, i=i: c.post("/api/create-call", json={"customer_name": f"Caller {i}"}))
        for i, c in enumerate(clients)
    ])
    assert codes == [201] * 32, codes
    assigned = [r.json["agent_id"] for r in results]
    assert None not in assigned, assigned  # nobody sent to the queue while agents were free
    assert len(set(assigned)) == 32  # and no agent given two callers
    assert len(agents) - len(set(assigned)) == 8

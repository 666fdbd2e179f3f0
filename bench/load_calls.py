"""Load run: many concurrent simulated calls with transfers, against gunicorn, a worker process
and a database, while hundreds of SSE streams are open. Prints figures; asserts nothing.

What runs: gunicorn (2 gthread workers) and `flask --app app worker` (bench.common.running_app),
the LiveKit Twirp double, agents created through the services layer and signed in over HTTP.
Every agent's dashboard holds one or two `/api/events` streams (at most SSE_STREAMS_PER_SESSION
per login, SSE_STREAMS_PER_AGENT per agent; more logins where needed), read continuously by one
asyncio thread; the simulated agents act on what those streams deliver (`call_assigned`,
`transfer_requested`, `transfer_failed`), as the dashboard does.

Each call, on a thread of its own, arrives over a ramp and then all of them are live at once:
- phone: a signed `/twilio/voice` webhook (the hold loop followed by `?held=1` if it is queued),
  the caller's SIP leg joining the room (a signed LiveKit `participant_joined`), live
  transcription lines (`/twilio/transcription`);
- web: `POST /api/create-call`, the customer joining the room (LiveKit webhook);
then Agent A joins (`/api/token`, LiveKit webhook), adds notes (`/api/add-context`), and plays one
scenario: a dashboard transfer (`/api/initiate-transfer` to a free agent) that is accepted and
completed (Agent B then joins the customer), accepted then declined, declined, cancelled
(ringing or briefing), never answered (the ring timer), or ended by the customer hanging up
mid-transfer (ringing or briefing); or a plain hang-up by the agent (`/api/end-call`) or the
customer (`/twilio/status` completed, the dial action and LiveKit's `participant_left` for a
phone caller; `/api/end-call` with the customer key for a web customer). Phone calls that end
get Twilio's late callbacks too, which must change nothing.

After the calls: the worker is given time to run every task it has (timers included), then the
database is read: calls by final status, transfers by outcome, stuck states (calls or transfers
not final, agents still holding a call, tasks not run, rooms left in LiveKit), and every context
entry the API accepted is looked for in `GET /api/calls/<id>` (lost entries). Each SSE stream's
events are compared with the events the database holds for its agent (lost deliveries).
Printed beside the figures, to read them by: the machine's load and the CPU each process used,
PostgreSQL backends waiting on locks (and on which statement), callers queued although agents
were free, and what the server's and the worker's logs say.

Database: PostgreSQL whenever BENCH_DATABASE_URL is set (a PostgreSQL server URL): the run
creates a database of its own on that server (`wt_load_<pid>_<hex>`) and drops it at the end
(`--keep-db` keeps it); without it, SQLite in a temporary directory. Twilio webhooks are signed
for the URL they are posted to (PUBLIC_BASE_URL is unset, so the app checks that one). Phone-number transfers are not part of the run
(Twilio's REST API is unreachable from the worker process); Agent B is always a dashboard agent.

Usage:
  BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:54329/postgres .venv/bin/python -m bench.load_calls
      [--calls 200] [--streams 500] [--agents N] [--seed 1] [--ring-timeout 15] [--answer-timeout S]
      [--ramp 8] [--spread 4] [--think 0.6] [--keep-db]
Without BENCH_DATABASE_URL the same run goes to SQLite. A default run takes about two minutes
(set-up ~10 s, calls ~45-60 s, the worker's last timers, the checks).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import add_agents, describe, percentile, running_app
from bench.load_client import (
    API,
    CONTROL_EVENTS,
    EventHub,
    Http,
    LiveKitWebhooks,
    Login,
    Poller,
    Stats,
    StreamPool,
    StreamState,
    TwilioWebhooks,
    agent_request,
    login,
)

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "bench-load-auth-token-0123456789"
OUR_NUMBER = "+15550001111"
PASSWORD = "load-agent-password"
FINAL_CALL = ("completed", "abandoned", "failed")
OPEN_TRANSFER = ("pending", "ringing", "briefing")

# name, weight, the transfer outcome it should end in (None: no transfer)
SCENARIOS = [
    ("complete", 28, "completed"),
    ("accept_decline", 10, "declined"),
    ("decline", 8, "declined"),
    ("cancel", 8, "cancelled"),
    ("cancel_briefing", 6, "cancelled"),
    ("no_answer", 6, "no_answer"),
    ("caller_left_ringing", 6, "caller_left"),
    ("caller_left_briefing", 6, "caller_left"),
    ("hangup_agent", 11, None),
    ("hangup_customer", 11, None),
]
EXPECTED_OUTCOME = {name: outcome for name, _, outcome in SCENARIOS}
SIP_ROOM = re.compile(r"sip:(call_[A-Za-z0-9_-]+)@")
# Markers in context text: consonants only, so redaction (digits, spoken digits) never touches them.
MARKER_LETTERS = "bcdfghjkmnpqrstvwxz"


class Abort(Exception):
    """This call's script cannot go on (recorded; the call is then ended by its customer)."""


# -- the shared state of a run ---------------------------------------------------------------------
class FreeAgents:
    """Agents the simulation believes free to be Agent B: never an assigned Agent A, never the
    target of an open transfer. The server assigns new callers to never-assigned agents in id
    order, so Agent B is taken from the other end of the list."""

    def __init__(self, ids: list[str]):
        self._free = set(ids)
        self._cond = threading.Condition()

    def busy(self, agent_id: str) -> None:
        with self._cond:
            self._free.discard(agent_id)

    def give(self, agent_id: str) -> None:
        with self._cond:
            self._free.add(agent_id)
            self._cond.notify()

    def take(self, exclude: set[str], timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                choices = sorted(self._free - exclude)
                if choices:
                    agent_id = choices[-1]
                    self._free.discard(agent_id)
                    return agent_id
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)


@dataclass
class CallRecord:
    index: int
    channel: str
    scenario: str
    end_by: str
    call_id: str | None = None
    room: str | None = None
    call_sid: str | None = None
    caller: str | None = None
    customer_key: str | None = None
    sip_participant: object = None
    agent_a: str | None = None
    owner: str | None = None
    entry_ids: list[int] = field(default_factory=list)
    transcript_markers: list[str] = field(default_factory=list)
    transfers: list[str] = field(default_factory=list)
    outcome_note: str | None = None  # why the scenario went another way (no free agent, a conflict)
    problems: list[str] = field(default_factory=list)
    ended: bool = False


class Run:
    def __init__(self, base: str, double, stats: Stats, hub: EventHub, logins: dict[str, Login], agents: list[str],
                 services, *, ring_timeout: int, think: float):
        self.http = Http(base, stats)
        self.stats = stats
        self.hub = hub
        self.logins = logins
        self.free = FreeAgents(agents)
        self.twilio = TwilioWebhooks(self.http, AUTH_TOKEN)
        self.livekit = LiveKitWebhooks(self.http, double)
        self.services = services
        self.ring_timeout = ring_timeout
        self.think = think
        self.records: list[CallRecord] = []
        self.delivery: dict[str, list[float]] = {"call_assigned": [], "transfer_requested": [], "transfer_failed (ring timeout)": []}  # the last: after the deadline
        self.notes: Counter = Counter()
        self.queued_free: list[int] = []
        self.queued_samples: list[str] = []
        self._lock = threading.Lock()
        self.live = 0
        self.peak = 0
        self.machine: dict = {}
        self.tasks_at_end: dict = {}
        self.scenario_start = 0.0
        self.scenario_spread = 0.0

    def count(self, key: str) -> None:
        with self._lock:
            self.notes[key] += 1

    def delivered(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.delivery[kind].append(seconds)

    def enter(self) -> None:
        with self._lock:
            self.live += 1
            self.peak = max(self.peak, self.live)

    def leave(self) -> None:
        with self._lock:
            self.live -= 1

    def pause(self, rng: random.Random, scale: float = 1.0) -> None:
        time.sleep(rng.uniform(0.5, 1.5) * self.think * scale)  # simulated talk/think time between actions

    # -- helpers ---------------------------------------------------------------------------------
    def agent(self, rec: CallRecord, who: str, label: str, path: str, body: dict | None, expect=(200,), method: str = "POST"):
        answer = agent_request(self.http, self.logins[who], label, method, path, body)
        if answer.status not in expect:
            self.stats.unexpected_answer(label, answer, f"call {rec.index} {rec.scenario} as {who}")
        return answer

    def queued_while_free(self, rec: CallRecord, what: str) -> None:
        """A caller was queued: how many agents were free (available, holding no call, not
        awaited by a transfer) right then, by the database."""
        from sqlalchemy import func, select

        from app.models import Agent, Transfer

        with self.services.db.reading() as s:
            awaited = select(Transfer.to_agent_id).where(Transfer.to_agent_id.is_not(None), Transfer.status.in_(["pending", "ringing"]))
            free = s.scalar(select(func.count()).select_from(Agent).where(
                Agent.presence == "available", Agent.active_call_id.is_(None), Agent.id.not_in(awaited)))
        with self._lock:
            self.queued_free.append(free)
            if len(self.queued_samples) < 5:
                self.queued_samples.append(f"call {rec.index} ({rec.call_id or rec.call_sid}): {what} while {free} agents were free")

    def assigned_agent(self, call_id: str) -> str | None:
        from app.models import Call

        with self.services.db.reading() as s:
            call = s.get(Call, call_id)
            return call.agent_id if call is not None else None


def error_code(answer) -> str | None:
    error = answer.json.get("error") if isinstance(answer.json, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def marker(rng: random.Random) -> str:
    return "".join(rng.choice(MARKER_LETTERS) for _ in range(8))


# -- one call ---------------------------------------------------------------------------------------
def caller_params(rec: CallRecord, status: str) -> dict:
    return {"AccountSid": ACCOUNT_SID, "CallSid": rec.call_sid, "From": rec.caller, "To": OUR_NUMBER,
            "CallStatus": status, "Direction": "inbound", "ApiVersion": "2010-04-01"}


def arrive_phone(run: Run, rec: CallRecord) -> None:
    rec.call_sid = "CA" + uuid.uuid4().hex
    rec.caller = f"+1415555{rec.index % 10000:04d}"
    sent = time.monotonic()
    r = run.twilio.post("twilio /voice", "/twilio/voice", caller_params(rec, "ringing"))
    deadline = time.monotonic() + 120
    while True:
        if r.status != 200 or not isinstance(r.body, str):
            raise Abort(f"/twilio/voice answered {r.status}: {str(r.body)[:200]}")
        found = SIP_ROOM.search(r.body)
        if found:
            rec.room = found.group(1)
            rec.call_id = rec.room[len("call_"):]
            break
        if "<Redirect" not in r.body or time.monotonic() > deadline:
            raise Abort(f"/twilio/voice: neither a bridge nor the hold loop: {r.body[:200]}")
        run.count("phone callers answered with the hold loop (rounds)")
        run.queued_while_free(rec, "phone caller sent to the hold loop")
        time.sleep(1.0)  # one round of Twilio's hold music, then its <Redirect>
        sent = time.monotonic()
        r = run.twilio.post("twilio /voice (after hold)", "/twilio/voice?held=1", caller_params(rec, "in-progress"))
    # The caller's SIP leg reaches the room (LiveKit SIP maps the X-WT-* headers to attributes).
    attrs = {"wt_call": rec.call_id, "wt_role": "customer", "sip.callStatus": "active"}
    rec.sip_participant = run.livekit.participant(rec.room, f"sip_{rec.caller}", sip=True, attributes=attrs)
    run.livekit.post("participant_joined", rec.room, rec.sip_participant)
    seen = run.hub.wait("call_assigned", rec.call_id, 30)
    if seen is None:
        rec.problems.append("call_assigned never reached any agent's dashboard within 30 s")
        rec.agent_a = run.assigned_agent(rec.call_id)
        if rec.agent_a is None:
            raise Abort("no agent assigned after 30 s")
    else:
        rec.agent_a = seen.agent_id
        run.delivered("call_assigned", seen.at - sent)


def arrive_web(run: Run, rec: CallRecord) -> None:
    sent = time.monotonic()
    r = run.http.send("api create-call", API, "POST", "/api/create-call", json={"customer_name": f"Load Caller {rec.index}"})
    if r.status != 201:
        run.stats.unexpected_answer("api create-call", r, f"call {rec.index}")
        raise Abort(f"create-call answered {r.status}")
    body = r.json
    rec.call_id, rec.room, rec.customer_key = body["session_id"], body["room_name"], body["customer_key"]
    run.livekit.joined(rec.room, f"customer-{rec.call_id}")
    if body["agent_id"] is None:
        run.count("web calls queued at create-call")
        run.queued_while_free(rec, "web call queued at create-call")
    seen = run.hub.wait("call_assigned", rec.call_id, 30 if body["agent_id"] is None else 10, agent_id=body["agent_id"])
    if seen is None:
        rec.problems.append("call_assigned never reached the agent's dashboard")
        rec.agent_a = body["agent_id"] or run.assigned_agent(rec.call_id)
        if rec.agent_a is None:
            raise Abort("no agent assigned after 30 s")
    else:
        rec.agent_a = seen.agent_id
        run.delivered("call_assigned", seen.at - sent)


def join_call_room(run: Run, rec: CallRecord, who: str, label: str) -> None:
    r = run.agent(rec, who, label, "/api/token", {"session_id": rec.call_id})
    if r.status != 200:
        raise Abort(f"{who} could not join: {r.status} {str(r.body)[:200]}")
    if r.json.get("room_name") != rec.room:
        rec.problems.append(f"{who} was given room {r.json.get('room_name')} instead of {rec.room}")
    run.livekit.joined(rec.room, f"agent-{who}")


def add_note(run: Run, rec: CallRecord, who: str, rng: random.Random) -> None:
    text = f"Note by {who}: customer {marker(rng)} says the parcel arrived damaged and wants a replacement"
    r = run.agent(rec, who, "api add-context", "/api/add-context", {"session_id": rec.call_id, "text": text}, expect=(201,))
    if r.status == 201:
        rec.entry_ids.append(int(r.json["entry"]["id"]))


def add_transcript(run: Run, rec: CallRecord, rng: random.Random, seq: int) -> None:
    mark = marker(rng)
    params = dict(caller_params(rec, "in-progress"), TranscriptionEvent="transcription-content", Final="true",
                  Track="inbound_track", TranscriptionSid="GT" + uuid.uuid4().hex, SequenceId=str(seq),
                  TranscriptionData=json.dumps({"transcript": f"I am calling about parcel {mark} that came broken", "confidence": 0.93}))
    r = run.twilio.post("twilio /transcription", "/twilio/transcription", params)
    if r.status == 200:
        rec.transcript_markers.append(mark)
    else:
        run.stats.unexpected_answer("twilio /transcription", r, f"call {rec.index}")


def talk(run: Run, rec: CallRecord, who: str, rng: random.Random, notes: int, transcripts: int = 0) -> None:
    steps = ["note"] * notes + ["transcript"] * (transcripts if rec.channel == "phone" else 0)
    rng.shuffle(steps)
    for n, step in enumerate(steps):
        run.pause(rng, 0.5)
        if step == "note":
            add_note(run, rec, who, rng)
        else:
            add_transcript(run, rec, rng, n + 1)


def customer_hangs_up(run: Run, rec: CallRecord) -> None:
    """The customer goes: Twilio's status callback (then the dial action and LiveKit's
    participant_left, late), or the web customer's own end-call."""
    if rec.channel == "phone":
        run.twilio.post("twilio /status", "/twilio/status", caller_params(rec, "completed"))
        run.twilio.post("twilio /dial-action", "/twilio/dial-action",
                        dict(caller_params(rec, "completed"), DialCallStatus="completed", DialCallSid="CA" + uuid.uuid4().hex))
        if rec.sip_participant is not None:
            p = rec.sip_participant
            p.attributes["sip.callStatus"] = "hangup"
            run.livekit.post("participant_left", rec.room, p)
    else:
        r = run.http.send("api end-call (customer)", API, "POST", "/api/end-call", json={"session_id": rec.call_id},
                          headers={"X-Customer-Key": rec.customer_key})
        if r.status != 200:
            run.stats.unexpected_answer("api end-call (customer)", r, f"call {rec.index} {rec.scenario}")
        left = run.livekit.participant(rec.room, f"customer-{rec.call_id}")
        run.livekit.post("participant_left", rec.room, left)
    rec.ended = True


def agent_ends(run: Run, rec: CallRecord) -> None:
    r = run.agent(rec, rec.owner, "api end-call", "/api/end-call", {"session_id": rec.call_id})
    if r.status != 200:
        raise Abort(f"end-call by {rec.owner}: {r.status} {str(r.body)[:200]}")
    rec.ended = True
    if rec.channel == "phone":
        # The room is gone, so is the SIP leg: Twilio's <Dial> ends, then the call.
        run.twilio.post("twilio /dial-action", "/twilio/dial-action",
                        dict(caller_params(rec, "in-progress"), DialCallStatus="completed", DialCallSid="CA" + uuid.uuid4().hex))
        run.twilio.post("twilio /status", "/twilio/status", caller_params(rec, "completed"))


def start_transfer(run: Run, rec: CallRecord) -> tuple[str, str, str, float] | None:
    """Initiate to a free dashboard agent: (transfer id, transfer room, Agent B, its requested_at as
    a Unix time), or None."""
    tried: set[str] = {rec.owner}
    refused: list[str] = []
    try:
        for _ in range(3):
            b = run.free.take(tried, timeout=5)
            if b is None:
                rec.outcome_note = "no free agent for Agent B"
                return None
            tried.add(b)
            sent = time.monotonic()
            r = run.agent(rec, rec.owner, "api initiate-transfer", "/api/initiate-transfer",
                          {"session_id": rec.call_id, "to_agent_id": b}, expect=(201, 409))
            if r.status == 201:
                transfer = r.json["transfer"]
                rec.transfers.append(transfer["id"])
                run.livekit.joined(transfer["transfer_room"], f"agent-{rec.owner}")
                seen = run.hub.wait("transfer_requested", transfer["id"], 15, agent_id=b)
                if seen is None:
                    rec.problems.append(f"transfer_requested for {transfer['id']} never reached {b}'s dashboard")
                else:
                    run.delivered("transfer_requested", seen.at - sent)
                requested = datetime.fromisoformat(transfer["requested_at"]).timestamp()
                return transfer["id"], transfer["transfer_room"], b, requested
            refused.append(b)
            if r.status == 409 and error_code(r) == "agent_unavailable":
                run.count("initiate 409 agent_unavailable (Agent B just got a call), another agent tried")
                continue
            if r.status == 409:
                run.stats.unexpected_answer("api initiate-transfer", r, f"call {rec.index} {rec.scenario}")
            rec.outcome_note = f"initiate-transfer answered {r.status} {error_code(r)}"
            return None
        rec.outcome_note = "three agents in a row were unavailable"
        return None
    finally:
        for b in refused:
            run.free.give(b)


def back_to_customer(run: Run, rec: CallRecord, rng: random.Random) -> None:
    """After a transfer that did not hand over, Agent A returns to the customer's room."""
    join_call_room(run, rec, rec.owner, "api token (back from consult)")
    talk(run, rec, rec.owner, rng, notes=rng.randint(0, 1), transcripts=rng.randint(0, 1))


def accept(run: Run, rec: CallRecord, tid: str, troom: str, b: str, rng: random.Random) -> bool:
    r = run.agent(rec, b, "api accept-transfer", "/api/accept-transfer", {"transfer_id": tid}, expect=(200, 409))
    if r.status != 200:
        run.count(f"accept-transfer {r.status} {error_code(r)}: Agent A cancels instead")
        if r.status != 409:
            rec.problems.append(f"accept {tid}: {r.status} {str(r.body)[:200]}")
        return False
    run.livekit.joined(troom, f"agent-{b}")
    if rng.random() < 0.5:
        run.pause(rng, 0.5)
        add_note(run, rec, b, rng)  # Agent B asks something during the briefing
    return True



def accepted_or_withdrawn(run: Run, rec: CallRecord, tid: str, troom: str, b: str, rng: random.Random) -> bool:
    """Agent B accepts; if that fails Agent A withdraws the transfer and goes back to the caller."""
    if accept(run, rec, tid, troom, b, rng):
        return True
    run.agent(rec, rec.owner, "api cancel-transfer", "/api/cancel-transfer", {"transfer_id": tid})
    run.free.give(b)
    back_to_customer(run, rec, rng)
    rec.outcome_note = "Agent B could not accept"
    return False

def play(run: Run, rec: CallRecord, rng: random.Random) -> None:
    scenario = rec.scenario
    if scenario.startswith("hangup_"):
        return
    started = start_transfer(run, rec)
    if started is None:
        run.count(f"transfer not started ({rec.outcome_note})")
        return
    tid, troom, b, requested = started
    run.pause(rng)
    if scenario == "complete":
        if not accepted_or_withdrawn(run, rec, tid, troom, b, rng):
            return
        run.pause(rng)
        r = run.agent(rec, rec.owner, "api complete-transfer", "/api/complete-transfer", {"transfer_id": tid})
        if r.status != 200:
            raise Abort(f"complete {tid}: {r.status} {str(r.body)[:200]}")
        run.free.give(rec.owner)
        rec.owner = b
        join_call_room(run, rec, b, "api token (Agent B to the customer)")
        talk(run, rec, b, rng, notes=rng.randint(0, 1), transcripts=rng.randint(0, 1))
        return
    if scenario in ("accept_decline", "cancel_briefing", "caller_left_briefing"):
        if not accepted_or_withdrawn(run, rec, tid, troom, b, rng):
            return
        run.pause(rng)
    if scenario in ("accept_decline", "decline"):
        run.agent(rec, b, "api decline-transfer", "/api/decline-transfer", {"transfer_id": tid, "reason": "Not my area"})
        run.free.give(b)
        back_to_customer(run, rec, rng)
    elif scenario in ("cancel", "cancel_briefing"):
        run.agent(rec, rec.owner, "api cancel-transfer", "/api/cancel-transfer", {"transfer_id": tid})
        run.free.give(b)
        back_to_customer(run, rec, rng)
    elif scenario == "no_answer":
        seen = run.hub.wait("transfer_failed", tid, run.ring_timeout + 30, agent_id=rec.owner)
        if seen is None:
            rec.problems.append(f"transfer_failed (no answer) for {tid} never reached Agent A within the ring timeout + 30 s")
        else:
            run.delivered("transfer_failed (ring timeout)", seen.wall - requested - run.ring_timeout)
        run.free.give(b)
        back_to_customer(run, rec, rng)
    elif scenario.startswith("caller_left"):
        customer_hangs_up(run, rec)
        run.free.give(b)


def run_call(run: Run, rec: CallRecord, arrival: float, seed: str) -> None:
    rng = random.Random(seed)
    time.sleep(max(0.0, arrival - time.monotonic()))  # this call's place on the arrival ramp
    run.enter()
    try:
        (arrive_phone if rec.channel == "phone" else arrive_web)(run, rec)
        run.free.busy(rec.agent_a)
        rec.owner = rec.agent_a
        join_call_room(run, rec, rec.agent_a, "api token (answer)")
        talk(run, rec, rec.owner, rng, notes=rng.randint(1, 3), transcripts=rng.randint(1, 2))
        # Every call is live before the first scenario starts: the load is all of them at once.
        time.sleep(max(0.0, run.scenario_start + rng.uniform(0, run.scenario_spread) - time.monotonic()))
        play(run, rec, rng)
        if not rec.ended:
            run.pause(rng)
            if rec.end_by == "agent":
                agent_ends(run, rec)
            else:
                customer_hangs_up(run, rec)
    except Abort as err:
        rec.problems.append(str(err))
    except Exception as err:  # the simulation itself failed: recorded, the call is still ended
        rec.problems.append(f"{type(err).__name__}: {err}"[:300])
    finally:
        if not rec.ended and rec.call_id is not None:
            try:
                customer_hangs_up(run, rec)
            except Exception as err:
                rec.problems.append(f"could not end the call: {err!r}"[:300])
        if rec.owner:
            run.free.give(rec.owner)
        run.leave()


# -- the run ------------------------------------------------------------------------------------------
@dataclass
class Options:
    calls: int = 200
    streams: int = 500
    agents: int | None = None
    seed: int = 1
    ring_timeout: int = 15
    answer_timeout: int | None = None  # AGENT_ANSWER_TIMEOUT_S; None: the app's default
    ramp: float = 8.0
    spread: float = 4.0
    think: float = 0.6
    database_url: str | None = None  # None: BENCH_DATABASE_URL (a fresh database on it) or SQLite
    fresh_database: bool = True
    keep_db: bool = False
    quiet: bool = False


@dataclass
class Report:
    calls: int = 0
    by_channel: Counter = field(default_factory=Counter)
    call_status: Counter = field(default_factory=Counter)
    transfer_outcome: Counter = field(default_factory=Counter)
    scenario_outcomes: Counter = field(default_factory=Counter)
    stuck_calls: list = field(default_factory=list)
    stuck_transfers: list = field(default_factory=list)
    agents_holding_calls: list = field(default_factory=list)
    tasks_not_run: Counter = field(default_factory=Counter)
    failed_tasks: list = field(default_factory=list)
    rooms_left: list = field(default_factory=list)
    context_added: int = 0
    context_lost: list = field(default_factory=list)
    five_xx: Counter = field(default_factory=Counter)
    server_errors: list = field(default_factory=list)
    apologies: list = field(default_factory=list)
    streams_requested: int = 0
    streams_ready: int = 0
    streams_refused: Counter = field(default_factory=Counter)
    streams_min_open: int = 0
    streams_ended_early: list = field(default_factory=list)
    events_expected: int = 0
    events_lost: int = 0
    events_lost_samples: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    log_errors: dict = field(default_factory=dict)
    log_paths: list = field(default_factory=list)
    webhook_p99_ms: float = float("nan")
    lines: list = field(default_factory=list)

    @property
    def stuck(self) -> int:
        return len(self.stuck_calls) + len(self.stuck_transfers)


def _fresh_postgres(server_url: str) -> tuple[str, callable]:
    import psycopg

    parts = urlsplit(server_url)
    admin = urlunsplit(parts._replace(scheme="postgresql"))
    name = f"wt_load_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def _plan(opts: Options) -> list[CallRecord]:
    rng = random.Random(opts.seed)
    names = [name for name, _, _ in SCENARIOS]
    weights = [weight for _, weight, _ in SCENARIOS]
    records = []
    for i in range(opts.calls):
        scenario = rng.choices(names, weights)[0]
        end_by = {"hangup_agent": "agent", "hangup_customer": "customer"}.get(scenario, rng.choice(["agent", "customer"]))
        records.append(CallRecord(index=i, channel=rng.choice(["phone", "web"]), scenario=scenario, end_by=end_by))
    return records


def _stream_logins(http: Http, dashboards: dict[str, Login], streams: int, per_session: int = 2, per_agent: int = 6) -> list[Login]:
    """Spread `streams` over the agents: at most `per_session` on one login (more logins where an
    agent needs more), at most `per_agent` per agent."""
    agents = sorted(dashboards)
    if streams > per_agent * len(agents):
        raise SystemExit(f"{streams} streams need at least {math.ceil(streams / per_agent)} agents (SSE_STREAMS_PER_AGENT={per_agent})")
    share = {a: 0 for a in agents}
    for n in range(streams):
        share[agents[n % len(agents)]] += 1
    out: list[Login] = []
    for a in agents:
        for k in range(share[a]):
            session_no = k // per_session
            who = dashboards[a] if session_no == 0 else login(http, a, PASSWORD)
            out.append(who)
    return out


def _wait_drained(services, timeout: float) -> tuple[float, Counter, dict]:
    """Until no task but the periodic jobs is pending or running (timers included). Also returns
    what was left when the calls ended: kind -> (count, seconds until the last one is due)."""

    from sqlalchemy import func, select

    from app.models import Task

    start = time.monotonic()
    with services.db.reading() as s:
        rows = s.execute(select(Task.kind, func.count(), func.max(Task.due_at)).where(
            Task.state.in_(["pending", "running"]), ~Task.kind.like("periodic.%")).group_by(Task.kind)).all()
    now = datetime.now(UTC)
    at_end = {kind: (n, (due.replace(tzinfo=due.tzinfo or UTC) - now).total_seconds()) for kind, n, due in rows}
    while True:
        with services.db.reading() as s:
            rows = s.execute(
                select(Task.kind, Task.state, func.count()).where(Task.state.in_(["pending", "running"]), ~Task.kind.like("periodic.%"))
                .group_by(Task.kind, Task.state)
            ).all()
        left = Counter({f"{kind} ({state})": n for kind, state, n in rows})
        if not left or time.monotonic() - start > timeout:
            return time.monotonic() - start, left, at_end
        time.sleep(0.25)  # the worker runs them in its own time; we look again


def _final_state(run: Run, report: Report, double) -> None:
    from sqlalchemy import select

    from app.models import Agent, Call, ContextEntry, Task, Transfer

    with run.services.db.reading() as s:
        calls = list(s.scalars(select(Call)))
        transfers = list(s.scalars(select(Transfer)))
        report.call_status = Counter(c.status for c in calls)
        report.transfer_outcome = Counter(t.status for t in transfers)
        report.stuck_calls = [f"{c.id} {c.channel} {c.status} agent={c.agent_id}" for c in calls if c.status not in FINAL_CALL]
        report.stuck_transfers = [f"{t.id} call={t.call_id} {t.status} {t.from_agent_id}->{t.to_agent_id}" for t in transfers if t.status in OPEN_TRANSFER]
        report.agents_holding_calls = [f"{a.id} holds {a.active_call_id}" for a in s.scalars(select(Agent).where(Agent.active_call_id.is_not(None)))]
        report.failed_tasks = [f"{t.kind} #{t.id} attempts={t.attempts}: {(t.last_error or '')[:200]}" for t in s.scalars(select(Task).where(Task.state == "failed"))]
        outcome_of = {t.id: t.status for t in transfers}
        owner_of = {c.id: c.agent_id for c in calls}
        entries: dict[str, list[ContextEntry]] = {}
        for e in s.scalars(select(ContextEntry)):
            entries.setdefault(e.call_id, []).append((e.id, e.text))
    for rec in run.records:
        outcomes = [outcome_of.get(t, "?") for t in rec.transfers]
        report.scenario_outcomes[(rec.scenario, ",".join(outcomes) or "-")] += 1
    report.rooms_left = sorted(name for name in list(double.rooms) if name.startswith(("call_", "transfer_")))
    # Lost context: every entry the API accepted (201) or the transcription webhook stored, as the
    # call's final owner reads the call through the API.
    for rec in run.records:
        if rec.call_id is None or not (rec.entry_ids or rec.transcript_markers):
            continue
        report.context_added += len(rec.entry_ids) + len(rec.transcript_markers)
        owner = owner_of.get(rec.call_id)
        texts: list[str]
        ids: set[int]
        if owner in run.logins:
            r = agent_request(run.http, run.logins[owner], "api calls/<id>", "GET", f"/api/calls/{rec.call_id}")
            if r.status == 200:
                context = r.json["call"]["context"]
                ids, texts = {int(e["id"]) for e in context}, [e["text"] for e in context]
            else:
                run.stats.unexpected_answer("api calls/<id>", r, f"call {rec.index} read by its owner {owner}")
                ids, texts = {i for i, _ in entries.get(rec.call_id, [])}, [t for _, t in entries.get(rec.call_id, [])]
        else:
            ids, texts = {i for i, _ in entries.get(rec.call_id, [])}, [t for _, t in entries.get(rec.call_id, [])]
        for entry_id in rec.entry_ids:
            if entry_id not in ids:
                report.context_lost.append(f"call {rec.call_id}: note #{entry_id} (201) missing")
        for mark in rec.transcript_markers:
            if not any(mark in t for t in texts):
                report.context_lost.append(f"call {rec.call_id}: transcript line '{mark}' (200) missing")


def _sse_losses(run: Run, pool: StreamPool, report: Report, settle_s: float = 10.0) -> None:
    """Each open stream must have every event the database holds for its agent after its ready id."""
    from sqlalchemy import select

    from app.models import Event

    open_streams = [st for st in pool.streams if st.ready_id is not None and st.ended is None]
    if not open_streams:
        return
    low = min(st.ready_id for st in open_streams)
    with run.services.db.reading() as s:
        rows = s.execute(select(Event.id, Event.audience).where(Event.id > low, Event.audience.is_not(None), Event.type.not_in(list(CONTROL_EVENTS)))).all()
    per_agent: dict[str, list[int]] = {}
    for event_id, audience in rows:
        per_agent.setdefault(audience, []).append(event_id)

    def missing() -> list[tuple[StreamState, list[int]]]:
        out = []
        for st in open_streams:
            want = [i for i in per_agent.get(st.agent_id, ()) if i > st.ready_id]
            gone = [i for i in want if i not in st.ids]
            if gone:
                out.append((st, gone))
        return out

    deadline = time.monotonic() + settle_s
    gaps = missing()
    while gaps and time.monotonic() < deadline:
        time.sleep(0.2)  # the last events may still be on their way
        gaps = missing()
    report.events_expected = sum(len([i for i in per_agent.get(st.agent_id, ()) if i > st.ready_id]) for st in open_streams)
    report.events_lost = sum(len(g) for _, g in gaps)
    report.events_lost_samples = [f"{st.agent_id} (ready id {st.ready_id}): missing event ids {g[:10]}" for st, g in gaps[:10]]



def _cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) so far of this process and of each child process group (gunicorn
    with its workers, the worker process), from /proc; empty where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    out: dict[str, float] = {}
    groups: dict[int, str] = {}
    stats = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        ppid, pgid, cpu = int(fields[1]), int(fields[2]), (int(fields[11]) + int(fields[12])) / tick
        stats[int(entry)] = (pgid, cpu)
        if ppid == me:
            groups[int(entry)] = "gunicorn" if "gunicorn" in cmd else "worker process" if " worker" in cmd else "other"
    for pid, (pgid, cpu) in stats.items():
        if pid == me:
            out["bench client (this process, incl. the LiveKit double)"] = cpu
        elif pgid in groups:
            out[groups[pgid]] = out.get(groups[pgid], 0.0) + cpu
    return out


def _scan_logs(paths: list[Path]) -> dict:
    found = {}
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
        errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
        warnings = Counter(line.split(": ", 1)[0].split(" WARNING ", 1)[-1] for line in lines if " WARNING " in line)
        found[path.name] = {"tracebacks": tracebacks, "errors": errors, "warnings": warnings}
    return found


def run(opts: Options) -> Report:
    """The whole load run; returns the figures (and prints them unless `quiet`)."""
    report = Report()
    say = (lambda *_: None) if opts.quiet else print
    drop_db = None
    db_url = opts.database_url
    if db_url is None:
        server = os.environ.get("BENCH_DATABASE_URL", "")
        if server.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")) and opts.fresh_database:
            db_url, drop_db = _fresh_postgres(server)
        elif server:
            db_url = server
        else:
            db_url = f"sqlite:///{tempfile.mkdtemp(prefix='wt-load-')}/load.db"
    agents_n = opts.agents or max(math.ceil(opts.calls * 1.6) + 4, math.ceil(opts.streams / 6))
    env = {
        "DATABASE_URL": db_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "LIVEKIT_SIP_HOST": "127.0.0.1:5060",
        "LIVEKIT_SIP_USERNAME": "twilio",
        "LIVEKIT_SIP_PASSWORD": "sip-password",
        "TRANSFER_RING_TIMEOUT_S": str(opts.ring_timeout),
    }
    if opts.answer_timeout is not None:
        env["AGENT_ANSWER_TIMEOUT_S"] = str(opts.answer_timeout)
    try:
        with running_app(env) as (server, server_env, double):
            _run_against(server, server_env, double, opts, agents_n, report, say)
        report.log_errors = _scan_logs(report.log_paths)
        _print_end(report, say)
    finally:
        if drop_db is not None and not opts.keep_db:
            drop_db()
    return report


def _run_against(server, server_env: dict, double, opts: Options, agents_n: int, report: Report, say) -> None:
    from app import create_app

    t_setup = time.monotonic()
    agent_ids = [f"agent{i:04d}" for i in range(agents_n)]
    add_agents(server_env, [(a, PASSWORD) for a in agent_ids])
    stats = Stats()
    hub = EventHub()
    setup_http = Http(server.url, stats)
    dashboards: dict[str, Login] = {}
    lock = threading.Lock()

    def sign_in(chunk: list[str]) -> None:
        for a in chunk:
            who = login(setup_http, a, PASSWORD)
            with lock:
                dashboards[a] = who

    threads = [threading.Thread(target=sign_in, args=(agent_ids[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stream_logins = _stream_logins(setup_http, dashboards, opts.streams)
    pool = StreamPool(server.url, hub)
    services = create_app({k: v for k, v in server_env.items() if k != "PATH"}).extensions["wt"]
    poller = None
    try:
        pool.open(stream_logins)
        report.streams_requested = len(stream_logins)
        report.streams_ready = sum(1 for st in pool.streams if st.ready_id is not None)
        report.streams_refused = Counter(st.error or str(st.status) for st in pool.streams if st.status != 200 or st.ready_id is None)
        with_stream = {st.agent_id for st in pool.streams if st.ready_id is not None}
        poller = Poller(setup_http, hub, [dashboards[a] for a in agent_ids if a not in with_stream])
        setup_s = time.monotonic() - t_setup
        setup_requests = sum(sum(c.values()) for c in stats.statuses.values())

        # -- the calls ------------------------------------------------------------------------
        run_ = Run(server.url, double, stats, hub, dashboards, agent_ids, services, ring_timeout=opts.ring_timeout, think=opts.think)
        run_.records = _plan(opts)
        with stats._lock:  # sign-in figures are set-up, not load
            stats.latency.clear()
            stats.statuses.clear()
        start = time.monotonic() + 0.5
        run_.scenario_start = start + opts.ramp + 1.0
        run_.scenario_spread = opts.spread
        min_open = [pool.open_count]
        watching = threading.Event()
        db_samples: list[tuple[int, int, int]] = []  # PostgreSQL backends: active, waiting on a lock, idle in transaction
        lock_waits: Counter = Counter()  # (wait event, statement) of backends waiting on a lock, summed over samples
        blockers: Counter = Counter()  # (state, last statement) of the backends they wait for
        load_before = os.getloadavg()
        cpu_before = _cpu_seconds()

        def watch() -> None:
            from sqlalchemy import text

            while not watching.wait(0.5):
                min_open[0] = min(min_open[0], pool.open_count)
                if services.db.is_postgres:
                    with services.db.reading() as s:
                        row = s.execute(text(
                            "SELECT count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                            "count(*) FILTER (WHERE state LIKE 'idle in transaction%') FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).one()
                    db_samples.append(tuple(row))
                    if row[1]:
                        with services.db.reading() as s:
                            waits = s.execute(text(
                                "SELECT w.wait_event, regexp_replace(left(w.query, 110), '\\s+', ' ', 'g'), b.state, "
                                "regexp_replace(left(b.query, 110), '\\s+', ' ', 'g') "
                                "FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) "
                                "JOIN pg_stat_activity b ON b.pid = bp.pid "
                                "WHERE w.datname = current_database() AND w.wait_event_type = 'Lock'")).all()
                        for wait_event, waiting, state, blocker in waits:
                            lock_waits[(wait_event, waiting)] += 1
                            blockers[(state, blocker)] += 1

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        threads = []
        for rec in run_.records:
            arrival = start + rec.index * opts.ramp / max(1, opts.calls)
            t = threading.Thread(target=run_call, args=(run_, rec, arrival, f"{opts.seed}:{rec.index}"), name=f"call-{rec.index}", daemon=True)
            t.start()
            threads.append(t)
        limit = time.monotonic() + opts.ramp + opts.spread + opts.ring_timeout + 180
        for t in threads:
            t.join(max(0.0, limit - time.monotonic()))
        calls_s = time.monotonic() - start
        unfinished = [t.name for t in threads if t.is_alive()]
        watching.set()
        watcher.join()
        report.streams_min_open = min(min_open[0], pool.open_count)
        cpu_after = _cpu_seconds()
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
        run_.machine = {"load_before": load_before, "load_after": os.getloadavg(), "db_samples": db_samples, "lock_waits": lock_waits, "blockers": blockers, "cpu": cpu, "wall": calls_s}

        # -- after the calls --------------------------------------------------------------------
        drain_s, left, at_end = _wait_drained(services, timeout=opts.ring_timeout + 60)
        report.tasks_not_run = left
        run_.tasks_at_end = at_end
        _final_state(run_, report, double)
        _sse_losses(run_, pool, report)
        report.streams_ended_early = [f"{st.agent_id}: {st.ended} {st.error or ''}".strip() for st in pool.streams if st.ready_id is not None and st.ended]
        report.calls = len(run_.records)
        report.by_channel = Counter(r.channel for r in run_.records)
        report.five_xx = stats.five_xx()
        report.server_errors = list(stats.server_errors)
        report.apologies = list(stats.apologies)
        report.problems = [f"call {r.index} ({r.channel}, {r.scenario}, {r.call_id}): {p}" for r in run_.records for p in r.problems]
        report.problems += [f"{name}: still running after the time limit" for name in unfinished]
        report.log_paths = [server.log_path, server.log_path.parent / "worker.log"]
        _print(report, run_, stats, opts, agents_n, server_env, setup_s, setup_requests, calls_s, drain_s, say)
    finally:
        if poller is not None:
            poller.stop()
        pool.close()
        services.close()


def _print(report: Report, run_: Run, stats: Stats, opts: Options, agents_n: int, env: dict, setup_s: float,
           setup_requests: int, calls_s: float, drain_s: float, say) -> None:
    def out(line: str = "") -> None:
        report.lines.append(line)
        say(line)

    db = env["DATABASE_URL"]
    db_name = db.split(":")[0] + (f" ({urlsplit(db).path.lstrip('/')})" if db.startswith("postgres") else "")
    out(f"load run: {report.calls} calls ({report.by_channel['phone']} phone, {report.by_channel['web']} web), {agents_n} agents, "
        f"{report.streams_requested} SSE streams; seed {opts.seed}; ring timeout {opts.ring_timeout}s; db: {db_name}; "
        f"gunicorn 2 gthread workers + 1 worker process")
    out(f"set-up {setup_s:.1f}s ({setup_requests} requests); calls phase {calls_s:.1f}s, peak {run_.peak} calls live at once; "
        f"worker drained {drain_s:.1f}s after the last call")
    if run_.tasks_at_end:
        out("tasks pending when the last call ended (the worker ran them all before the checks): " + ", ".join(
            f"{kind} x{n} (last due in {due:.0f}s)" for kind, (n, due) in sorted(run_.tasks_at_end.items())))
    machine = run_.machine
    if machine:
        out(f"machine: {os.cpu_count()} CPUs; load average (1 min) {machine['load_before'][0]:.1f} before the calls, "
            f"{machine['load_after'][0]:.1f} after (everything else running on this machine counts too)")
        if machine["cpu"]:
            out(f"CPU used during the {machine['wall']:.0f}s of calls: " + ", ".join(
                f"{name} {sec:.1f}s ({sec / machine['wall']:.0%} of a core)" for name, sec in sorted(machine["cpu"].items())))
        samples = machine["db_samples"]
        if samples:
            out(f"PostgreSQL backends during the calls (every 0.5 s): active p50 {percentile([a for a, _, _ in samples], 50):.0f} "
                f"max {max(a for a, _, _ in samples)}; waiting on a lock p50 {percentile([w for _, w, _ in samples], 50):.0f} "
                f"max {max(w for _, w, _ in samples)}; idle in transaction max {max(i for _, _, i in samples)}")
            for (event, statement), n in machine["lock_waits"].most_common(3):
                out(f"  waiting ({event}), in {n} backend-samples: {statement}")
            for (state, statement), n in machine["blockers"].most_common(3):
                out(f"  ...behind a backend {state}, in {n}: {statement}")
    if run_.queued_free:
        out(f"callers queued although agents were free: {sum(1 for n in run_.queued_free if n > 0)} of {len(run_.queued_free)} "
            f"(free agents at that moment: min {min(run_.queued_free)}, max {max(run_.queued_free)})")
        for line in run_.queued_samples:
            out(f"  e.g. {line}")
    out(f"SSE streams: {report.streams_ready} of {report.streams_requested} open"
        + (f" (refused: {dict(report.streams_refused)})" if report.streams_refused else "")
        + f"; fewest open during the calls: {report.streams_min_open}; ended early: {len(report.streams_ended_early)}; "
          f"events lost: {report.events_lost} of {report.events_expected} deliveries")
    out(f"calls by final status: {dict(sorted(report.call_status.items()))}")
    out(f"transfers by outcome: {dict(sorted(report.transfer_outcome.items()))} (total {sum(report.transfer_outcome.values())})")
    out("scenarios -> transfer outcomes: " + ", ".join(f"{s}->{o}: {n}" for (s, o), n in sorted(report.scenario_outcomes.items())))
    mismatched = sum(n for (s, o), n in report.scenario_outcomes.items() if EXPECTED_OUTCOME[s] is not None and o != EXPECTED_OUTCOME[s])
    if mismatched:
        out(f"  scenarios that ended another way than planned: {mismatched} (see notes)")
    out(f"stuck states: {report.stuck} (calls not final {len(report.stuck_calls)}, transfers not final {len(report.stuck_transfers)}); "
        f"agents still holding a call: {len(report.agents_holding_calls)}; tasks left: {sum(report.tasks_not_run.values())}; "
        f"failed tasks: {len(report.failed_tasks)}; LiveKit rooms left: {len(report.rooms_left)}")
    for line in (report.stuck_calls + report.stuck_transfers + report.agents_holding_calls)[:10]:
        out(f"  stuck: {line}")
    for kind, n in report.tasks_not_run.items():
        out(f"  task left: {kind} x{n}")
    for line in report.failed_tasks[:5]:
        out(f"  failed task: {line}")
    if report.rooms_left:
        out(f"  rooms left: {report.rooms_left[:5]}")
    out(f"context entries: {report.context_added} added, {len(report.context_lost)} lost")
    for line in report.context_lost[:10]:
        out(f"  lost: {line}")
    five = sum(report.five_xx.values())
    out(f"HTTP 5xx: {five}" + (" " + ", ".join(f"{label} {status} x{n}" for (label, status), n in report.five_xx.items()) if five else ""))
    for line in report.server_errors[:10]:
        out(f"  5xx: {line}")
    out(f"Twilio webhooks answered with the apology TwiML: {len(report.apologies)}")
    for line in report.apologies[:5]:
        out(f"  apology: {line}")
    out(f"webhook latency while {report.streams_min_open}+ SSE streams were open:")
    for label in sorted(stats.latency):
        if stats.kind.get(label) == "webhook":
            out("  " + describe(label, stats.latency[label]))
    out("  " + describe("all webhooks", stats.by_kind("webhook")))
    out("API latency:")
    for label in sorted(stats.latency):
        if stats.kind.get(label) == API:
            out("  " + describe(label, stats.latency[label]))
    out("  " + describe("all API requests", stats.by_kind(API)))
    out("event delivery (request sent -> the event read from the agent's stream; for the ring timeout: its deadline -> Agent A reads it):")
    for kind, values in run_.delivery.items():
        if values:
            out("  " + describe(kind, values))
    statuses = Counter()
    for counts in stats.statuses.values():
        for status, n in counts.items():
            statuses[status] += n
    out(f"responses by status: {dict(sorted(statuses.items()))}; connection retries: {stats.retries}")
    for line in stats.transport_errors[:3]:
        out(f"  no answer: {line}")
    for (label, status), n in sorted(stats.unexpected_count.items()):
        out(f"  not the usual answer: {label} {status} x{n}")
    for line in stats.unexpected[:8]:
        out(f"    e.g. {line}")
    for key, n in sorted(run_.notes.items()):
        out(f"  note: {key}: {n}")
    out(f"simulation problems: {len(report.problems)}")
    for line in report.problems[:15]:
        out(f"  {line}")
    report.webhook_p99_ms = percentile([v * 1000 for v in stats.by_kind("webhook")], 99)


def _print_end(report: Report, say) -> None:
    """After the server and the worker have stopped: what their logs say, and the summary line."""
    def out(line: str = "") -> None:
        report.lines.append(line)
        say(line)

    for name, found in report.log_errors.items():
        top = ", ".join(f"{k} x{n}" for k, n in found["warnings"].most_common(4))
        out(f"{name}: {found['tracebacks']} tracebacks, {len(found['errors'])} ERROR lines; warnings: {sum(found['warnings'].values())}"
            + (f" ({top})" if top else ""))
        for line in found["errors"][:5]:
            out(f"  {line[:300]}")
    out(f"SUMMARY calls={report.calls} transfers={sum(report.transfer_outcome.values())} stuck={report.stuck} "
        f"lost_context={len(report.context_lost)} 5xx={sum(report.five_xx.values())} webhook_p99={report.webhook_p99_ms:.1f}ms "
        f"streams_open={report.streams_min_open}")


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--streams", type=int, default=500, help="SSE streams open during the calls")
    parser.add_argument("--agents", type=int, default=None, help="default: 1.6 per call (+4), at least streams/6")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ring-timeout", type=int, default=15, help="TRANSFER_RING_TIMEOUT_S (the no-answer scenario waits it out)")
    parser.add_argument("--answer-timeout", type=int, default=None, help="AGENT_ANSWER_TIMEOUT_S (default: the app's)")
    parser.add_argument("--ramp", type=float, default=8.0, help="seconds over which the calls arrive")
    parser.add_argument("--spread", type=float, default=4.0, help="seconds over which the scenarios start once all calls are live")
    parser.add_argument("--think", type=float, default=0.6, help="mean seconds between one caller's actions")
    parser.add_argument("--keep-db", action="store_true", help="keep the fresh PostgreSQL database")
    args = parser.parse_args(argv)
    return run(Options(calls=args.calls, streams=args.streams, agents=args.agents, seed=args.seed, ring_timeout=args.ring_timeout, answer_timeout=args.answer_timeout,
                       ramp=args.ramp, spread=args.spread, think=args.think, keep_db=args.keep_db))


if __name__ == "__main__":
    main()

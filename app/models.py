"""Durable state (docs/architecture.md §4): agents, their sessions, calls, context, transfers, summaries, events.

Everything a restart must not lose lives in these tables. Statuses are plain strings whose values
come from `app.states`; they are changed only through `app.repo.transition`, never assigned.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Always timezone-aware UTC in Python, whatever the backend stores (SQLite keeps naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    # offline | available | away. "Busy" is derived: active_call_id is set.
    presence: Mapped[str] = mapped_column(String(16), default="offline")
    # The one call this agent is part of. Claimed with a conditional UPDATE so two workers can
    # never hand the same agent two calls.
    active_call_id: Mapped[str | None] = mapped_column(String(32), index=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A disabled account cannot sign in and is never given calls (flask --app app agents disable).
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "agent" or "supervisor" (app.protocol.ACCOUNT_ROLES): supervisors take calls too, and may
    # supervise others' (app.services.supervision). Migration 9 fills it in for older rows.
    role: Mapped[str] = mapped_column(String(16), default="agent")


class AgentSession(Base):
    """Server-side login sessions, so logout and expiry are real and survive restarts."""

    __tablename__ = "agent_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie secret
    agent_id: Mapped[str] = mapped_column(String(64), ForeignKey("agents.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The newest event id when the session began: "pending notifications" start here.
    first_event_id: Mapped[int] = mapped_column(Integer, default=0)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the API's session_id
    room_name: Mapped[str] = mapped_column(String(64), unique=True)
    customer_name: Mapped[str] = mapped_column(String(120))
    customer_key_hash: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))  # web | phone
    twilio_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    caller_number: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("agents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)  # supervisor statistics read by period
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(64))
    # When `status` last changed (app.repo.transition): the supervisor view's "time in state".
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    # The customer's presence in the room, as LiveKit's webhooks report it. `customer_sid` and
    # `customer_since_ms` identify the customer's newest LiveKit session, so a late "left" for
    # an older session (a web customer who refreshed) changes nothing. `customer_left_at` is
    # set while the newest session is gone; a web customer's call ends once it is older than
    # CUSTOMER_RECONNECT_GRACE_S.
    customer_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    customer_sid: Mapped[str | None] = mapped_column(String(64))
    customer_since_ms: Mapped[int | None] = mapped_column(BigInteger)
    customer_left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The agent handling the call dropped out of its rooms (crash, network) at this time; after
    # AGENT_RECONNECT_GRACE_S without coming back they are taken out as if they had left.
    owner_left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    owner_left_agent: Mapped[str | None] = mapped_column(String(64))
    # Set when an agent stopped talking to the customer without handing over (a missed
    # assignment, the owner leaving): from then until the next agent answers, the customer is
    # waiting in the room and hears hold audio (app.worker.hold).
    requeued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A phone caller is in Twilio's hold loop (our queue TwiML), not bridged into the room: once
    # an agent is assigned, the worker redirects their call to be bridged at once.
    in_hold_loop: Mapped[bool | None] = mapped_column(Boolean, default=False)
    # How the caller's bridge into LiveKit ended when it failed (phone calls): Twilio's
    # DialCallStatus, the SIP response LiveKit SIP gave (DialSipResponseCode) and Twilio's
    # ErrorCode. Shown to operators in the timeline; see app.services.sip_diagnostics.
    bridge_status: Mapped[str | None] = mapped_column(String(16))
    sip_response_code: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_calls_status_created", "status", "created_at"),
        Index("ix_calls_customer_left", "customer_left_at"),
        Index("ix_calls_owner_left", "owner_left_at"),
    )


class Recording(Base):
    """A recording Twilio made of a phone caller's bridge (`<Dial record>`, RECORDING_ENABLED).

    A table rather than columns on calls: Twilio reports each recording on its own (one callback
    per RecordingSid), and a caller bridged twice (sent back to the hold loop after an answered
    bridge) would have two. The media stays at Twilio; its URL is derived from the sid and the
    account (app.gateways.twilio), so nothing here is a link anyone could use without our
    credentials. Deleted at Twilio and here after RECORDING_RETENTION_DAYS, and before its call
    is (app.services.recordings).
    """

    __tablename__ = "recordings"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)  # Twilio's RecordingSid (RE...)
    call_id: Mapped[str] = mapped_column(String(32), ForeignKey("calls.id"), index=True)
    # RecordingStatus: in-progress, completed, absent (too short or silent), failed; only moved
    # forward, so a late or repeated callback cannot undo a completed one.
    status: Mapped[str] = mapped_column(String(16))
    duration_s: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(32))  # RecordingSource: DialVerb
    error_code: Mapped[str | None] = mapped_column(String(16))  # ErrorCode (16101 too short, 16102 silent)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Supervision(Base):
    """A supervisor in a call's room: monitoring, whispering to the agent, or barging in.

    Open while `ended_at` is null; ended by `POST /api/supervise/end`, by the supervisor's
    participant leaving the room (LiveKit's webhook), or by a new supervision of theirs. Each end
    is a conditional UPDATE on `ended_at IS NULL`, so `supervision_ended` is written once whichever
    way comes first (app.services.supervision)."""

    __tablename__ = "supervisions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32), ForeignKey("calls.id"), index=True)
    supervisor_id: Mapped[str] = mapped_column(String(64), ForeignKey("agents.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))  # monitor | whisper | barge
    # The agent a whisper is for (the only identity allowed to subscribe to the supervisor's track).
    whisper_to: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))


class ContextEntry(Base):
    __tablename__ = "context_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(32), ForeignKey("calls.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))  # agent id, "customer" or "system"
    source: Mapped[str] = mapped_column(String(16))  # note | transcript | system
    text: Mapped[str] = mapped_column(Text)  # redacted
    raw_text: Mapped[str | None] = mapped_column(Text)  # only with STORE_RAW_CONTEXT
    # Idempotency key from the producer (e.g. a transcription event id); unique per call.
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ux_context_external", "call_id", "external_id", unique=True),)


class Summary(Base):
    __tablename__ = "summaries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(32), ForeignKey("calls.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # draft | transfer | edited
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(64))
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    degraded_reason: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    speech: Mapped[str] = mapped_column(Text)
    structured: Mapped[dict] = mapped_column(JSON)
    covering_entry_id: Mapped[int] = mapped_column(Integer, default=0)
    edited_by: Mapped[str | None] = mapped_column(String(64))
    supersedes_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32), ForeignKey("calls.id"), index=True)
    from_agent_id: Mapped[str] = mapped_column(String(64), ForeignKey("agents.id"))
    to_agent_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("agents.id"))
    to_phone: Mapped[str | None] = mapped_column(String(20))
    # A transfer to a team (app.services.team_offers): offered to the team's free members, and
    # `to_agent_id` stays null until one of them accepts; from then on it is a transfer to them.
    to_team: Mapped[str | None] = mapped_column(String(64), ForeignKey("teams.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    transfer_room: Mapped[str] = mapped_column(String(96), unique=True)
    summary_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("summaries.id"))
    reason: Mapped[str | None] = mapped_column(String(255))
    # Machine-readable why, next to the human `reason`: machine, no_input, key_9, hung_up, ...
    reason_code: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(32))
    # The SIP response LiveKit SIP gave Agent B's bridge, when it failed (DialSipResponseCode).
    sip_response_code: Mapped[int | None] = mapped_column(Integer)
    # Agent B's phone leg (phone transfers only): its Twilio SID and the furthest call progress
    # Twilio has reported (queued < initiated < ringing < in-progress < a final status). Only
    # ever moved forward, so late or repeated status callbacks cannot make it go back.
    twilio_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    leg_status: Mapped[str | None] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)  # supervisor statistics read by period
    # When Agent B was first told (migration 10): the transfer_requested event written to one of
    # their event streams (app.sse; for a team, the first member's), or their phone call placed
    # with Twilio (app.services.phone_transfers). Set once (`repo.mark_notified`); null when
    # nobody was reached, or for transfers from before the column.
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the customer was handed to Agent B (complete, or Agent A leaving mid-briefing)...
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # ...and when LiveKit reported Agent B actually in the customer's room (time to human).
    bridged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When `status` last changed (app.repo.transition), as for calls.
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        # Belt and braces for the state machine: at most one open transfer per call.
        Index(
            "ux_transfers_one_open",
            "call_id",
            unique=True,
            sqlite_where=text("status IN ('pending','ringing','briefing')"),
            postgresql_where=text("status IN ('pending','ringing','briefing')"),
        ),
    )


class Team(Base):
    """A group of agents a transfer can be addressed to (`flask --app app teams add`). `keywords`
    help the offline summarizer suggest the team for a call (app.summaries.team_match)."""

    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    keywords: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AgentTeam(Base):
    """Membership: an agent may belong to any number of teams."""

    __tablename__ = "agent_teams"

    agent_id: Mapped[str] = mapped_column(String(64), ForeignKey("agents.id"), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), ForeignKey("teams.id"), primary_key=True, index=True)


class TransferOffer(Base):
    """A team member a team transfer was offered to (the free members when it started). A member
    who declines is no longer offered; the transfer ends `declined` once every one has."""

    __tablename__ = "transfer_offers"

    transfer_id: Mapped[str] = mapped_column(String(32), ForeignKey("transfers.id"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), ForeignKey("agents.id"), primary_key=True, index=True)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Event(Base):
    """One row per recipient (audience = agent id), or one with no audience for the timeline
    only. Rows written by one emit share `event_key`, so a call's timeline lists each once."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(32), index=True)
    audience: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # AUTOINCREMENT on SQLite: without it a new row takes max(id)+1, so once pruning deletes the
    # newest rows ids are handed out again, below what every dispatcher and browser (Last-Event-ID)
    # has already seen, and those events are never delivered. PostgreSQL sequences never go back.
    __table_args__ = (
        Index("ix_events_audience_id", "audience", "id"),
        # The floor and the statistics count one type of event over a period (call_missed).
        Index("ix_events_type_created_at", "type", "created_at"),
        {"sqlite_autoincrement": True},
    )


class LiveKitWebhookEvent(Base):
    """LiveKit webhook deliveries already applied, by LiveKit's event id: a retried or replayed
    delivery is recognised and skipped. Rows are pruned after WEBHOOK_EVENT_RETENTION (the
    signed token of a delivery is only valid for minutes, so an older replay is refused anyway)."""

    __tablename__ = "livekit_webhook_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class EventStream(Base):
    """One open Server-Sent Events stream, on any process: the per-session and per-agent stream
    limits count these rows (app.sse). A row whose process died is the oldest of its agent and
    the first one closed; rows older than a session lifetime are deleted."""

    __tablename__ = "event_streams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    # The agent's login (AgentSession.id). The column keeps its first name; the attribute says
    # what it holds, apart from the API's session_id, which names a call.
    login_id: Mapped[str] = mapped_column("session_id", String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CustomerStream(Base):
    """One open status stream of a web customer (GET /api/calls/<id>/events), on any process: the
    per-call limit (SSE_STREAMS_PER_CALL) counts these rows (app.services.streams). A row whose
    process died is the call's oldest and the first one closed; rows older than a session
    lifetime are deleted."""

    __tablename__ = "customer_streams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RateLimitWindow(Base):
    """Fixed-window counters shared by every worker (rate limits must not live in one process)."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)


class SummaryLease(Base):
    """Who is refreshing a call's draft summary right now: one refresh in flight per call, across
    every worker and instance. A lease that outlives its holder simply expires."""

    __tablename__ = "summary_leases"

    call_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(96))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Task(Base):
    """A side effect or timer waiting to run (the transactional outbox; docs/architecture.md).

    Written in the same transaction as the state change that causes it, so it exists if and only
    if that change does; run by a worker (`flask --app app worker`) that claims it with a lease.
    `dedupe_key` makes "at most one pending task of this kind for this thing" (a draft refresh per
    call, one instance of each periodic job): enqueueing again updates or keeps the pending one.
    """

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(48))
    dedupe_key: Mapped[str | None] = mapped_column(String(160))
    payload: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12))  # pending | running | done | failed
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=10)
    # While running: who claimed it and until when. A worker that dies stops renewing the lease,
    # and once it has passed any worker may claim the task again.
    claimed_by: Mapped[str | None] = mapped_column(String(96))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_tasks_state_due", "state", "due_at"),
        Index(
            "ux_tasks_pending_key",
            "kind",
            "dedupe_key",
            unique=True,
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )


class HoldLease(Base):
    """Which worker plays hold audio into a call's room: exactly one, across machines. The holder
    renews it every second; a worker that dies lets it lapse and another takes over."""

    __tablename__ = "hold_leases"

    call_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(96))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SchemaMigration(Base):
    __tablename__ = "schema_migrations"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

"""Agents: accounts, logins (sign-in sessions), CSRF tokens and presence.

A login is the agent's sign-in session (an `AgentSession` row), not a call: the API's
`session_id` names a call, so in code a login is `login_id`/`login_ref` to keep the two apart.
Logins live in the database (only a random secret travels in the signed cookie), so logout and
expiry take effect on every worker at once and survive restarts. Presence is `available` from
login until logout or "away"; an agent is busy while `active_call_id` is set.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import Database
from app.errors import Conflict, NotAuthenticated, NotFound, RateLimited, ValidationFailed
from app.events import emit, newest_event_id
from app.models import Agent, AgentSession, Call, Summary, Team, Transfer, TransferOffer, utcnow
from app.protocol import ACCOUNT_ROLES
from app.ratelimit import RateLimiter
from app.serializers import agent_dict, summary_dict
from app.services.phone_numbers import dialable
from app.services.routing import drain_queue
from app.services.teams import assign as assign_teams

AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")
PASSWORD_MIN = 8


def _check_role(role: str) -> None:
    if role not in ACCOUNT_ROLES:
        raise ValidationFailed(f"Role must be one of {', '.join(ACCOUNT_ROLES)}.")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    agent: Agent
    cookie_secret: str
    csrf_token: str


@dataclass(frozen=True)
class AuthContext:
    agent_id: str
    agent_name: str
    login_id: str  # the AgentSession's id (the hash of the cookie's secret)
    csrf_token: str
    first_event_id: int
    expires_at: datetime
    role: str = "agent"  # app.protocol.ACCOUNT_ROLES; read with the login, so a change applies at the next request

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def login_ref(self) -> str:
        """A public handle for this login (the `session_ended` event names it as `session_ref`;
        the id itself stays secret)."""
        return self.login_id[:16]

    def csrf_ok(self, header_value: str | None) -> bool:
        return bool(header_value) and hmac.compare_digest(header_value, self.csrf_token)


@dataclass(frozen=True)
class SignInLimits:
    """(count, seconds) windows: sign-in attempts per client address, failures per agent id."""

    per_address: tuple[int, int]
    failures_per_agent: tuple[int, int]


class AgentService:
    def __init__(
        self,
        db: Database,
        session_lifetime_s: int,
        hash_method: str = "scrypt",
        login_concurrency: int = 4,
        *,
        limiter: RateLimiter | None = None,
        sign_in_limits: SignInLimits | None = None,
    ):
        self.db = db
        self.limiter = limiter
        self.sign_in_limits = sign_in_limits
        self.session_lifetime = timedelta(seconds=session_lifetime_s)
        self.hash_method = hash_method
        # A password check costs real CPU and memory (scrypt: ~140 ms, 32 MiB): at most this many
        # at once in this process; more are refused at once, before any hash is computed.
        self._checks = threading.BoundedSemaphore(login_concurrency)
        self._dummy_hash: str | None = None

    def _dummy(self) -> str:
        """Checked when the agent id is unknown, with the configured method, so a failed login
        costs the same whether or not the id exists."""
        if self._dummy_hash is None:
            self._dummy_hash = generate_password_hash(secrets.token_urlsafe(16), method=self.hash_method)
        return self._dummy_hash

    # -- accounts (CLI) --------------------------------------------------------------------
    def add(self, agent_id: str, name: str, password: str, phone: str | None = None, teams: tuple[str, ...] = (), *, role: str = "agent") -> Agent:
        if not AGENT_ID.match(agent_id):
            raise ValidationFailed("Agent id must be 1-64 lowercase letters, digits, '.', '_' or '-'.")
        if not name.strip() or len(name) > 120:
            raise ValidationFailed("Agent name must be 1-120 characters.")
        if len(password) < PASSWORD_MIN:
            raise ValidationFailed(f"Password must be at least {PASSWORD_MIN} characters.")
        if phone is not None:
            phone = dialable(phone, "phone")
        _check_role(role)
        with self.db.transaction() as s:
            if s.get(Agent, agent_id) is not None:
                raise Conflict(f"Agent {agent_id} already exists.", code="agent_exists")
            agent = Agent(id=agent_id, name=name.strip(), phone=phone, role=role,
                          password_hash=generate_password_hash(password, method=self.hash_method))
            s.add(agent)
            if teams:
                s.flush()  # the membership rows refer to the agent
                assign_teams(s, agent_id, teams)  # an unknown team refuses the whole account
        return agent

    # -- administration (CLI) -----------------------------------------------------------------
    def set_password(self, agent_id: str, password: str) -> None:
        """A new password; every session of the agent ends (whoever knew the old one is out)."""
        if len(password) < PASSWORD_MIN:
            raise ValidationFailed(f"Password must be at least {PASSWORD_MIN} characters.")
        with self.db.transaction() as s:
            self._existing(s, agent_id).password_hash = generate_password_hash(password, method=self.hash_method)
            self._revoke_all(s, agent_id, "password_changed")

    def disable(self, agent_id: str) -> None:
        """No more sign-ins or calls for this account; its sessions end now. Its current call, if
        any, goes on until it is handed over or ends (a supervisor decides that, not a script)."""
        with self.db.transaction() as s:
            agent = self._existing(s, agent_id)
            agent.disabled_at = agent.disabled_at or utcnow()
            agent.presence = "offline"
            self._revoke_all(s, agent_id, "disabled")

    def set_role(self, agent_id: str, role: str) -> None:
        """Make an account an agent or a supervisor; it applies to their next request (the role is
        read with the login), so a demoted supervisor's next supervise request is refused. A
        supervision already running goes on until it ends."""
        _check_role(role)
        with self.db.transaction() as s:
            self._existing(s, agent_id).role = role

    def enable(self, agent_id: str) -> None:
        with self.db.transaction() as s:
            self._existing(s, agent_id).disabled_at = None

    def revoke_sessions(self, agent_id: str) -> int:
        with self.db.transaction() as s:
            self._existing(s, agent_id)
            count = self._revoke_all(s, agent_id, "revoked")
            s.execute(update(Agent).where(Agent.id == agent_id).values(presence="offline"))
            return count

    @staticmethod
    def _existing(s, agent_id: str) -> Agent:
        agent = s.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"No agent with id {agent_id}.")
        return agent

    @staticmethod
    def _revoke_all(s, agent_id: str, reason: str) -> int:
        now = utcnow()
        revoked = s.execute(
            update(AgentSession)
            .where(AgentSession.agent_id == agent_id, AgentSession.revoked_at.is_(None), AgentSession.expires_at > now)
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        # Open event streams end when they see it (app.sse), on every process.
        emit(s, "session_ended", {"session_ref": None, "reason": reason}, audiences=[agent_id], call_id=None)
        return revoked

    def all(self) -> list[Agent]:
        with self.db.reading() as s:
            return list(s.scalars(select(Agent).order_by(Agent.id)))

    def get(self, agent_id: str) -> Agent | None:
        with self.db.reading() as s:
            return s.get(Agent, agent_id)

    def pending_transfers(self, agent_id: str) -> list[dict]:
        """Transfers ringing for this agent right now: what a refreshed dashboard must show."""
        with self.db.reading() as s:
            # Addressed to them, or to a team that offered it to them and nobody has taken yet.
            offered = select(TransferOffer.transfer_id).where(TransferOffer.agent_id == agent_id, TransferOffer.declined_at.is_(None))
            for_me = or_(Transfer.to_agent_id == agent_id, and_(Transfer.to_agent_id.is_(None), Transfer.id.in_(offered)))
            rows = s.execute(
                select(Transfer, Call.customer_name, Agent.name, Summary, Team.name)
                .join(Call, Call.id == Transfer.call_id)
                .join(Agent, Agent.id == Transfer.from_agent_id)
                .outerjoin(Summary, Summary.id == Transfer.summary_id)
                .outerjoin(Team, Team.id == Transfer.to_team)
                .where(for_me, Transfer.status.in_(["pending", "ringing"]))
                .order_by(Transfer.requested_at)
            ).all()
            return [
                {
                    "transfer_id": t.id,
                    "session_id": t.call_id,
                    "transfer_room": t.transfer_room,
                    "customer_name": customer_name,
                    "from_agent_id": t.from_agent_id,
                    "from_agent_name": from_name,
                    "requested_at": t.requested_at.isoformat(),
                    "summary": summary_dict(summary),
                    "to_team": t.to_team,
                    "team_name": team_name,
                }
                for t, customer_name, from_name, summary, team_name in rows
            ]

    def newest_event_id(self) -> int:
        with self.db.reading() as s:
            return newest_event_id(s)

    def me(self, auth: AuthContext) -> dict:
        """What a (restored) dashboard starts from: who is signed in, the event id to stream or
        poll from, and any transfer already ringing for them."""
        agent = self.get(auth.agent_id)
        return {
            "agent": dict(agent_dict(agent), active_call_id=agent.active_call_id),
            "csrf_token": auth.csrf_token,
            "last_event_id": self.newest_event_id(),
            "pending_transfers": self.pending_transfers(auth.agent_id),
        }

    def count(self) -> int:
        with self.db.reading() as s:
            return s.scalar(select(func.count()).select_from(Agent)) or 0

    # -- logins ----------------------------------------------------------------------------
    def sign_in(self, agent_id: str, password: str, client_address: str, *, stay_away: bool = False) -> LoginResult:
        """`login` behind its limits: attempts per address are counted first, and an agent id
        with too many recent failures is refused before any password is checked (only failures
        count against it, so its owner is not locked out by their own sign-ins). An agent is
        available afterwards, so waiting callers are routed (a supervisor is away: `login`), unless
        `stay_away` (signing in on a page that takes no calls: the supervisor view)."""
        limits = self.sign_in_limits
        fail_key = f"login-failed:{agent_id}"
        if self.limiter is not None and limits is not None:
            count, window = limits.per_address
            self.limiter.hit(f"login:{client_address}", count, window, "sign-in attempts")
            failures, fail_window = limits.failures_per_agent
            self.limiter.check(fail_key, failures, fail_window, "failed sign-ins", "for this agent id")
        try:
            result = self.login(agent_id, password, stay_away=stay_away)
        except NotAuthenticated:
            if self.limiter is not None and limits is not None:
                self.limiter.add(fail_key, fail_window, failures)
            raise
        drain_queue(self.db)
        return result

    def login(self, agent_id: str, password: str, *, stay_away: bool = False) -> LoginResult:
        if not self._checks.acquire(blocking=False):
            raise RateLimited("Too many sign-ins are being checked right now; try again in a moment.", 1)
        try:
            # Outside any transaction: the hash takes long, and a write lock must not wait on it.
            with self.db.reading() as s:
                agent = s.get(Agent, agent_id)
            stored = agent.password_hash if agent is not None and agent.disabled_at is None else None
            valid = check_password_hash(stored or self._dummy(), password) and stored is not None
        finally:
            self._checks.release()
        if not valid:
            raise NotAuthenticated("Unknown agent id or wrong password.", code="invalid_credentials")
        with self.db.transaction() as s:
            agent = s.get(Agent, agent_id)
            if agent is None or agent.disabled_at is not None:
                raise NotAuthenticated("Unknown agent id or wrong password.", code="invalid_credentials")
            cookie_secret = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            now = utcnow()
            s.add(
                AgentSession(
                    id=hash_secret(cookie_secret),
                    agent_id=agent.id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + self.session_lifetime,
                    first_event_id=newest_event_id(s),
                )
            )
            if agent.presence == "offline":
                # A supervisor signs in away: they are often only watching the floor, and a
                # waiting caller must not be routed to someone who is not at a console. They
                # take calls by choosing Available in the console, like anyone back at their desk.
                agent.presence = "away" if stay_away or agent.role == "supervisor" else "available"
            return LoginResult(agent, cookie_secret, csrf)

    def authenticate(self, cookie_secret: str | None) -> AuthContext | None:
        if not cookie_secret:
            return None
        with self.db.reading() as s:
            row = s.execute(
                select(AgentSession, Agent.name, Agent.role)
                .join(Agent, Agent.id == AgentSession.agent_id)
                .where(AgentSession.id == hash_secret(cookie_secret), Agent.disabled_at.is_(None))
            ).first()
        if row is None:
            return None
        session, name, role = row
        if session.revoked_at is not None or session.expires_at <= utcnow():
            return None
        return AuthContext(session.agent_id, name, session.id, session.csrf_token, session.first_event_id, session.expires_at, role or "agent")

    def logout(self, auth: AuthContext) -> None:
        with self.db.transaction() as s:
            now = utcnow()
            s.execute(update(AgentSession).where(AgentSession.id == auth.login_id).values(revoked_at=now))
            # Open SSE streams of this login end when they see this (no per-stream DB polling).
            emit(s, "session_ended", {"session_ref": auth.login_ref, "reason": "logged_out"}, audiences=[auth.agent_id], call_id=None)
            if not self._has_live_session(s, auth.agent_id, now):
                s.execute(update(Agent).where(Agent.id == auth.agent_id).values(presence="offline"))

    @staticmethod
    def _has_live_session(s, agent_id: str, now: datetime) -> bool:
        return (
            s.scalar(
                select(AgentSession.id).where(
                    AgentSession.agent_id == agent_id, AgentSession.revoked_at.is_(None), AgentSession.expires_at > now
                ).limit(1)
            )
            is not None
        )

    def set_presence(self, agent_id: str, status: str) -> Agent:
        if status not in {"available", "away"}:
            raise ValidationFailed("status must be 'available' or 'away'.")
        with self.db.transaction() as s:
            s.execute(update(Agent).where(Agent.id == agent_id).values(presence=status))
            agent = s.get(Agent, agent_id, populate_existing=True)
        if agent.presence == "available":
            drain_queue(self.db)  # an agent back from away takes the oldest waiting caller
        return agent

    def expire_stale_presence(self) -> int:
        """Agents whose every session has ended are offline: never route a call to a ghost."""
        now = utcnow()
        with self.db.transaction() as s:
            online = list(s.scalars(select(Agent.id).where(Agent.presence != "offline")))
            stale = [a for a in online if not self._has_live_session(s, a, now)]
            if stale:
                s.execute(update(Agent).where(Agent.id.in_(stale)).values(presence="offline"))
        return len(stale)

"""Teams: named groups of agents a transfer can be addressed to, and who in them is free now.

Teams are managed from the CLI (`flask --app app teams add | list`, `agents add --team`,
`agents set-teams`); the console lists them with how many members are free (`GET /api/teams`)
and a team transfer is offered to those members (app.services.team_offers). "Free now" is what
the agent directory shows as free: presence `available` (which only a signed-in agent has,
app.services.agents), not on a call, account not disabled.
"""
from __future__ import annotations

import re

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict, NotFound, ValidationFailed
from app.models import Agent, AgentTeam, Team
from app.repo import free_now
from app.summaries.base import TeamRef

TEAM_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")
KEYWORDS_MAX = 20
KEYWORD_MAX_CHARS = 40


def free_members(s: Session, team_id: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """The team's members who are free now, except `exclude`, in id order."""
    query = (
        select(Agent.id)
        .join(AgentTeam, AgentTeam.agent_id == Agent.id)
        .where(AgentTeam.team_id == team_id, *free_now(), Agent.id.not_in(exclude or ("",)))
        .order_by(Agent.id)
    )
    return list(s.scalars(query))


def load_team(s: Session, team_id: str) -> Team:
    team = s.get(Team, team_id)
    if team is None:
        raise NotFound(f"No team with id {team_id}.")
    return team


def assign(s: Session, agent_id: str, team_ids: tuple[str, ...] | list[str]) -> None:
    """Make `team_ids` exactly the agent's teams (inside the caller's transaction)."""
    wanted = list(dict.fromkeys(team_ids))
    for team_id in wanted:
        load_team(s, team_id)
    s.execute(delete(AgentTeam).where(AgentTeam.agent_id == agent_id).execution_options(synchronize_session=False))
    s.add_all(AgentTeam(agent_id=agent_id, team_id=team_id) for team_id in wanted)


def team_refs(s: Session) -> tuple[TeamRef, ...]:
    """Every team, as the summarizers see them (to suggest one)."""
    return tuple(TeamRef(t.id, t.name, tuple(t.keywords or ())) for t in s.scalars(select(Team).order_by(Team.id)))


def _keywords(raw: tuple[str, ...] | list[str]) -> list[str]:
    words = [w.strip().lower() for w in raw if w and w.strip()]
    if len(words) > KEYWORDS_MAX or any(len(w) > KEYWORD_MAX_CHARS for w in words):
        raise ValidationFailed(f"At most {KEYWORDS_MAX} keywords of at most {KEYWORD_MAX_CHARS} characters each.")
    return list(dict.fromkeys(words))


class TeamService:
    def __init__(self, db: Database):
        self.db = db

    # -- administration (CLI) -----------------------------------------------------------------
    def add(self, team_id: str, name: str, keywords: tuple[str, ...] = ()) -> Team:
        if not TEAM_ID.match(team_id):
            raise ValidationFailed("Team id must be 1-64 lowercase letters, digits, '.', '_' or '-'.")
        if not name.strip() or len(name) > 120:
            raise ValidationFailed("Team name must be 1-120 characters.")
        words = _keywords(keywords)
        with self.db.transaction() as s:
            if s.get(Team, team_id) is not None:
                raise Conflict(f"Team {team_id} already exists.", code="team_exists")
            team = Team(id=team_id, name=name.strip(), keywords=words)
            s.add(team)
        return team

    def set_agent_teams(self, agent_id: str, team_ids: tuple[str, ...]) -> None:
        with self.db.transaction() as s:
            if s.get(Agent, agent_id) is None:
                raise NotFound(f"No agent with id {agent_id}.")
            assign(s, agent_id, team_ids)

    def listing(self) -> list[tuple[Team, list[str]]]:
        """Every team with its members' ids (the CLI's `teams list`)."""
        with self.db.reading() as s:
            teams = list(s.scalars(select(Team).order_by(Team.id)))
            members: dict[str, list[str]] = {t.id: [] for t in teams}
            for agent_id, team_id in s.execute(select(AgentTeam.agent_id, AgentTeam.team_id).order_by(AgentTeam.agent_id)):
                members[team_id].append(agent_id)
            return [(t, members[t.id]) for t in teams]

    # -- the console -----------------------------------------------------------------------------
    def directory(self) -> list[dict]:
        """Every team with how many members are free now (`GET /api/teams`)."""
        with self.db.reading() as s:
            free = dict(
                s.execute(
                    select(AgentTeam.team_id, func.count())
                    .join(Agent, Agent.id == AgentTeam.agent_id)
                    .where(*free_now())
                    .group_by(AgentTeam.team_id)
                ).all()
            )
            teams = list(s.scalars(select(Team).order_by(Team.name, Team.id)))
            return [{"id": t.id, "name": t.name, "available": free.get(t.id, 0)} for t in teams]

"""Which team a call should go to: the summary's `suggested_team`.

An LLM is asked for one of the team ids (app.summaries.prompt) and its answer is only kept when
it is one of them (`checked`): an invented id would preselect nothing useful, or worse, a team
the operator never made. Offline (and when an LLM summary falls back to offline), the context is
matched against each team's name and keywords (`suggest`): the team whose words the call uses
most, none on a tie or no match, so the console preselects only what the call clearly points to.
"""
from __future__ import annotations

import re

from app.summaries.base import StructuredSummary, SummaryInput, TeamRef

_WORD = re.compile(r"[a-z0-9]+")


def checked(value: str | None, teams: tuple[TeamRef, ...]) -> str | None:
    """`value` if it names one of `teams` (by id, or by name as a courtesy), else None."""
    if not value:
        return None
    wanted = value.strip().lower()
    for team in teams:
        if wanted in (team.id.lower(), team.name.strip().lower()):
            return team.id
    return None


def _stem(word: str) -> str:
    # "refunds" and "refund", "invoices" and "invoice": enough for keywords, no dictionary.
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _terms(team: TeamRef) -> set[tuple[str, ...]]:
    """Each name word and keyword (a keyword may be several words) as a tuple of stems."""
    terms = {(_stem(w),) for w in _WORD.findall(team.name.lower()) if len(w) > 2}
    terms |= {tuple(_stem(w) for w in _WORD.findall(k.lower())) for k in team.keywords}
    return {t for t in terms if t}


def _count(term: tuple[str, ...], words: list[str]) -> int:
    n = len(term)
    return sum(1 for i in range(len(words) - n + 1) if tuple(words[i : i + n]) == term)


def suggest(data: SummaryInput) -> str | None:
    """The team the call's own words point to most clearly, or None."""
    if not data.teams:
        return None
    words = [_stem(w) for line in data.entries for w in _WORD.findall(line.text.lower())]
    scores = sorted(((sum(_count(t, words) for t in _terms(team)), team.id) for team in data.teams), reverse=True)
    best, runner_up = scores[0][0], scores[1][0] if len(scores) > 1 else 0
    return scores[0][1] if best > 0 and best > runner_up else None


def settle(structured: StructuredSummary, data: SummaryInput, *, offline: bool) -> StructuredSummary:
    """The summary with its final `suggested_team`: matched offline, or the provider's if real."""
    team = suggest(data) if offline else checked(structured.suggested_team, data.teams)
    return structured if team == structured.suggested_team else structured.model_copy(update={"suggested_team": team})

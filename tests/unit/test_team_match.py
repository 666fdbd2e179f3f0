"""`suggested_team`: the offline match on team names and keywords, an LLM's answer kept only when
it names a real team, and the teams in the prompt and the response schema."""
from __future__ import annotations

from dataclasses import replace

import pytest

from app.summaries import prompt
from app.summaries.base import ContextLine, StructuredSummary, SummaryInput, TeamRef
from app.summaries.offline import OfflineProvider
from app.summaries.summarizer import Summarizer
from app.summaries.team_match import checked, suggest
from tests.unit.test_llm_providers import DATA, GOOD, FakeLLM, completion, error, provider

TEAMS = (
    TeamRef("billing", "Billing", ("invoice", "refund", "charged twice")),
    TeamRef("tech", "Technical Support", ("router", "wifi", "error code")),
)


def _input(*texts: str, teams=TEAMS) -> SummaryInput:
    return SummaryInput("Dana", tuple(ContextLine("customer", "transcript", t) for t in texts), teams)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("I need a refund for my last invoice.",), "billing"),
        (("My invoices are wrong and I want refunds.",), "billing"),  # plurals match
        (("I was charged twice this month.",), "billing"),  # a keyword of several words
        (("The router shows error code 651 and the wifi drops.",), "tech"),
        (("I have a technical question about my support plan.",), "tech"),  # name words count too
        (("Hello, I would like to talk to someone.",), None),  # nothing matches
        (("My router broke and I want a refund.",), None),  # a tie: no clear team
    ],
)
def test_offline_match_picks_the_clearly_named_team(texts, expected):
    assert suggest(_input(*texts)) == expected


def test_no_teams_no_suggestion():
    assert suggest(_input("refund my invoice", teams=())) is None


def test_only_a_listed_team_is_kept():
    assert checked("billing", TEAMS) == "billing"
    assert checked(" Technical Support ", TEAMS) == "tech"  # a model that answered the name
    assert checked("sales", TEAMS) is None and checked(None, TEAMS) is None and checked("", TEAMS) is None


def test_the_offline_summary_carries_its_suggestion():
    result = Summarizer(OfflineProvider()).summarize(_input("Please refund the invoice."), budget_s=1)
    assert result.structured.suggested_team == "billing"


@pytest.mark.parametrize(("answered", "kept"), [("billing", "billing"), ("sales", None), (None, None), (42, None), ("x" * 200, None)])
def test_an_llm_suggestion_is_kept_only_when_it_names_a_team(answered, kept):
    data = replace(DATA, teams=TEAMS)
    fake = FakeLLM(completion(dict(GOOD, suggested_team=answered)))
    result = Summarizer(provider("openai", fake), max_workers=1).summarize(data, budget_s=2)
    assert not result.degraded and result.structured.suggested_team == kept
    # The model was shown the teams to choose from, and asked for one of their ids or null.
    user = fake.body()["messages"][1]["content"]
    assert "- billing: Billing (keywords: invoice, refund, charged twice)" in user and "- tech: Technical Support" in user
    assert "suggested_team" in fake.body()["messages"][0]["content"]


def test_a_fallback_summary_suggests_offline():
    data = replace(DATA, teams=TEAMS)  # "refund" and "charged twice" are in DATA's lines
    result = Summarizer(provider("groq", FakeLLM(error(500))), max_workers=1).summarize(data, budget_s=2)
    assert result.degraded and result.structured.suggested_team == "billing"


def test_the_schema_allows_a_team_id_or_null_and_no_teams_means_no_block():
    schema = prompt.summary_json_schema()
    assert schema["properties"]["suggested_team"]["type"] == ["string", "null"]
    assert set(schema["required"]) == set(StructuredSummary.model_fields)
    assert "Teams (" not in prompt.user_message(_input("hello", teams=()))

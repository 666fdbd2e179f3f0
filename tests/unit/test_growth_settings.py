"""The bounded-growth settings refuse values that would unbound what they bound."""
from __future__ import annotations

import pytest

from app.config import settings_problems

BASE = {"APP_ENV": "test", "SECRET_KEY": "k" * 32, "DATABASE_URL": "sqlite://"}


@pytest.mark.parametrize(("name", "value"), [
    ("SUMMARY_REDRAFT_S", "0"),  # a draft per utterance again
    ("SUMMARY_REDRAFT_S", "3601"),
    ("CALL_RETENTION_DAYS", "0"),  # would delete calls the moment they end
    ("SESSION_RETENTION_DAYS", "0"),
    ("CALL_RETENTION_DAYS", "3651"),
])
def test_out_of_range_is_a_named_problem(name, value):
    assert [p for p in settings_problems(dict(BASE, **{name: value})) if p.startswith(name)]


def test_the_defaults_are_fine():
    assert settings_problems(BASE) == []

"""`.env.example` is the operator's list of settings: it must name every one the app reads, and
nothing the app no longer reads."""
from __future__ import annotations

import re
from dataclasses import fields

from app.config import PROJECT_ROOT, Settings

GUNICORN_ONLY = {"WEB_CONCURRENCY", "GUNICORN_THREADS"}


def test_env_example_lists_exactly_the_settings():
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (PROJECT_ROOT / ".env.example").read_text(), re.MULTILINE))
    settings = {f.name for f in fields(Settings)}
    assert settings - listed == set(), "settings missing from .env.example"
    assert listed - settings - GUNICORN_ONLY == set(), ".env.example lists settings the app does not read"

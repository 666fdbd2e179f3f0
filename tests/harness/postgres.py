"""A PostgreSQL database of a suite's own, on the server TEST_DATABASE_URL names (the fault and
cluster suites run their app processes against it; it is dropped afterwards)."""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest


def admin_url(suite: str) -> str:
    """TEST_DATABASE_URL, or a usage error naming the suite: these suites run on PostgreSQL only."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        raise pytest.UsageError(f"the {suite} suite runs on PostgreSQL: set TEST_DATABASE_URL (make test does)")
    return url


class ThrowawayDatabase:
    """`<prefix>_<pid>` created afresh on the server of `server_url` (a leftover of a crashed run
    is dropped first); `url` reaches it, `drop()` removes it even with connections still open."""

    def __init__(self, server_url: str, prefix: str):
        parts = urlsplit(server_url)
        self.name = f"{prefix}_{os.getpid()}"
        self.admin_url = urlunsplit(parts._replace(scheme="postgresql"))
        self.url = urlunsplit(parts._replace(scheme="postgresql", path=f"/{self.name}"))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except psycopg.Error as err:  # teardown goes on; the next run drops it first
            print(f"could not drop database {self.name}: {err}")

"""Waiting for what other processes do, by polling a condition with a deadline (never a bare sleep)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.05


def until(predicate: Callable[[], Any], what: str, timeout: float, every: float = POLL_S) -> Any:
    """Poll `predicate` every `every` s until it returns something truthy (returned);
    AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout:g}s (last: {value!r})")
        time.sleep(every)  # the other processes do this in their own time

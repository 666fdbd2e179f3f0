"""Run a coroutine on a fresh event loop in its own thread.

Live tests drive asyncio code (the `livekit` SDKs) from synchronous pytest tests. Other plugins
or fixtures may leave an event loop running in the main thread for the whole session (the
Playwright sync API does), where `asyncio.run()` refuses to start; a thread of our own never
has one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any


def run_async(make_coro: Callable[[], Awaitable[Any]], timeout: float = 300.0) -> Any:
    """`asyncio.run(make_coro())` in a new thread; returns its result or raises its exception."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(make_coro())
        except BaseException as exc:  # handed to the calling thread, re-raised there
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="live-asyncio", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"coroutine still running after {timeout:.0f}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class LoopThread:
    """One event loop on a thread of its own for a whole test, so synchronous test code can
    drive long-lived async objects (LiveKit participants) step by step:

        loop = LoopThread()
        agent = loop.run(make_agent())          # created on the loop, lives on the loop
        loop.run(agent.record("x", 2.0, 10))
        loop.close()
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 60.0) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

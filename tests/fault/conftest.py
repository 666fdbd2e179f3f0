"""One app stack (gunicorn + worker on PostgreSQL, every dependency behind a fault proxy) per
module, and a `Run` per test. PostgreSQL only: the suite needs TEST_DATABASE_URL (a database of
its own is created on that server and dropped afterwards)."""
from __future__ import annotations

import pytest

from tests.fault.stack import Run, Stack
from tests.harness.postgres import admin_url


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    url = admin_url("fault")
    built = Stack(url, tmp_path_factory.mktemp("fault"))
    try:
        built.start()
        yield built
    finally:
        built.stop()


@pytest.fixture
def run(stack, request):
    # e.g. test_livekit_fails_mid_transfer[slow] -> "livekit-slow"; names the run's agents too
    words = request.node.originalname.split("_")[1:3]
    mode = request.node.callspec.id if hasattr(request.node, "callspec") else words[1]
    current = Run(stack, f"{words[0]}-{mode}")
    try:
        yield current
    finally:
        if not current.finished:
            # The test stopped half-way: its calls end and its agents go, so the next test
            # starts clean (what it found is already in the test's own failure).
            stack.restore_all()
            for call_id, web in current.calls.items():
                if web is not None:
                    web.customer_request("POST", "/api/end-call", {"session_id": call_id})
            current.cleanup()
        print(f"[{current.name}] logs: {stack.workdir / 'gunicorn.log'} {stack.workdir / 'worker.log'}")

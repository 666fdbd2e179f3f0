"""Every entry point imports on its own, whatever is imported first: a cycle between app, twiml
and the wire contract only shows when a module is the first one loaded (twiml.sip → app.protocol
→ app → app.config → twiml.sip broke `bench.load_client`)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_IMPORTS = ["twiml", "twiml.sip", "twiml.agent", "app.protocol", "app.config", "app.states", "app.logs", "bench.load_client", "bench.load_calls"]


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_module_imports_first_in_a_fresh_interpreter(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]

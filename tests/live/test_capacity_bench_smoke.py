"""bench/capacity.py in miniature: one level of one warm transfer, end to end on a rig of its own.

Asserted: the run ends well, its figures have the shape the README's table is made from, the one
call came up and was heard both ways, and CPU was counted for every process the table names.
Nothing about speed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.capacity import GROUPS

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parents[2]


def test_one_level_of_one_warm_transfer(tmp_path):
    out = tmp_path / "capacity.json"
    run = subprocess.run([sys.executable, "-m", "bench.capacity", "--max", "1", "--window", "3", "--settle", "1", "--json", str(out),
                          "--workdir", str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "knee:" in run.stdout and "CPU while the calls run" in run.stdout, run.stdout

    figures = json.loads(out.read_text())
    assert figures["knee"] == 1
    [level] = figures["levels"]
    assert level["level"] == 1 and level["calls_up"] == 1 and level["failed_setups"] == []
    assert (level["legs"], level["legs_passed"]) == (2, 2), level["legs_detail"]
    assert sorted(leg["who"] for leg in level["legs_detail"]) == ["agent", "caller"]
    assert set(level["steady"]["ms_per_call_s"]) == set(GROUPS)
    for group in ("livekit-server", "livekit-sip", "bench: agents + simulator", "bench: SIP phones"):
        assert level["steady"]["cpu_s"].get(group, 0) > 0, (group, level["steady"])
    for group in ("app (gunicorn)", "worker"):
        assert level["setup"]["cpu_s"].get(group, 0) > 0, (group, level["setup"])

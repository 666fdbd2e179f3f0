"""CPU time per process group over a stretch of wall time, read from /proc (Linux only).

A benchmark names its groups with a function from a process to a group name (or None: not
ours); `CpuMeter.start()` then `stop()` gives each group's CPU seconds (user + system, every
thread) in between, plus how busy the whole machine was, so what the other processes on a shared
machine took can be printed beside our figures.

A process that started inside the window counts in full; one that exited inside it loses what
it used since `start()` (the kernel forgets an exited process's times unless its parent reaps
it into cutime, which is charged to the parent only once waited for: not a window's figure).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    cpu_s: float
    cmd: str


def processes() -> dict[int, Proc]:
    """Every process we can read, now."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # exited between listdir and read
        # The command name (field 2) is in parentheses and may contain spaces: split after it.
        fields = raw[raw.rindex(")") + 2:].split()
        ppid, pgid = int(fields[1]), int(fields[2])
        cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        found[int(entry)] = Proc(int(entry), ppid, pgid, cpu, cmd)
    return found


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat's first line."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


@dataclass(frozen=True)
class CpuWindow:
    wall_s: float
    cpu_s: dict[str, float]  # group -> CPU seconds used in the window
    machine_busy: float  # share of all CPUs busy, 0..1, every process on the machine

    def percent(self, group: str) -> float:
        """The group's CPU as a percentage of one core."""
        return 100.0 * self.cpu_s.get(group, 0.0) / self.wall_s if self.wall_s > 0 else float("nan")


class CpuMeter:
    def __init__(self, classify: Callable[[Proc], str | None]):
        self.classify = classify
        self._start: tuple[float, dict[int, Proc], tuple[int, int]] | None = None

    def start(self) -> None:
        self._start = (time.monotonic(), processes(), machine_jiffies())

    def stop(self) -> CpuWindow:
        assert self._start is not None, "CpuMeter.stop() before start()"
        started, before, (busy0, total0) = self._start
        after, (busy1, total1) = processes(), machine_jiffies()
        wall = time.monotonic() - started
        used: dict[str, float] = {}
        for pid, proc in after.items():
            group = self.classify(proc)
            if group is None:
                continue
            prior = before.get(pid)
            base = prior.cpu_s if prior is not None and prior.cmd == proc.cmd else 0.0
            used[group] = used.get(group, 0.0) + max(0.0, proc.cpu_s - base)
        busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else float("nan")
        return CpuWindow(wall, used, busy)


def machine_description() -> str:
    """CPUs and their model, for the printed figures (they only mean something with it)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return f"{len(os.sched_getaffinity(0))} CPUs ({model}){memory}"

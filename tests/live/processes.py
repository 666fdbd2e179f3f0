"""Child processes, free ports and log tails for the live rig (no LiveKit knowledge here)."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

POLL_S = 0.05


class RigError(RuntimeError):
    """A rig service failed to start, died, or did not become ready; carries log tails."""

    def __init__(self, message: str, logs: dict[str, str] | None = None):
        self.logs = logs or {}
        text = message
        for name, tail in self.logs.items():
            text += f"\n----- {name} (last lines) -----\n{tail}"
        super().__init__(text)


# --------------------------------------------------------------------------- ports


def _ephemeral_floor() -> int:
    """Start of the kernel's ephemeral range: rig ports stay below it, so an outgoing
    connection can never be handed one of them between our check and the service's bind."""
    text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(text[0])


class PortAllocator:
    """Free ports and free consecutive port ranges, checked by binding them on 0.0.0.0
    (several services bind the wildcard address) and never handed out twice per process."""

    LOW = 20000

    def __init__(self) -> None:
        self._taken: set[int] = set()
        self._high = min(_ephemeral_floor(), 32768) - 1
        self._rng = random.Random(os.getpid() ^ time.monotonic_ns())

    def _free(self, port: int, udp: bool, tcp: bool) -> bool:
        if port in self._taken:
            return False
        kinds = ([socket.SOCK_DGRAM] if udp else []) + ([socket.SOCK_STREAM] if tcp else [])
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("0.0.0.0", port))
                except OSError:
                    return False
        return True

    def range(self, count: int, udp: bool = False, tcp: bool = False, attempts: int = 500) -> tuple[int, int]:
        """`count` consecutive free ports, returned as (first, last) inclusive."""
        for _ in range(attempts):
            first = self._rng.randrange(self.LOW, self._high - count)
            ports = range(first, first + count)
            if all(self._free(p, udp, tcp) for p in ports):
                self._taken.update(ports)
                return first, first + count - 1
        raise RigError(f"no {count} consecutive free ports in {self.LOW}-{self._high}")

    def port(self, udp: bool = False, tcp: bool = True) -> int:
        return self.range(1, udp=udp, tcp=tcp)[0]


# --------------------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the test process dies, so no service outlives a crash;
    and start with no blocked signals whatever the parent blocks (`main` blocks SIGINT/SIGTERM)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 64 * 1024))
        data = f.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


class ManagedProcess:
    """One child process whose stdout+stderr go to a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, cwd: Path,
                 env: dict[str, str] | None = None,
                 stop_signals: tuple[tuple[int, float], ...] = ((signal.SIGTERM, 10.0),)):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.stop_signals = stop_signals
        self.proc: subprocess.Popen[bytes] | None = None
        self.forced_kill = False

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def check_alive(self) -> None:
        if self.proc is None:
            raise RigError(f"{self.name} was never started")
        rc = self.proc.poll()
        if rc is not None:
            raise RigError(f"{self.name} exited with status {rc}: {' '.join(self.argv)}",
                           {self.name: self.log_tail()})

    def wait_until(self, probe: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `probe` until true; fail fast if the process dies. Returns seconds waited."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            self.check_alive()
            if probe():
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise RigError(f"{self.name}: not {what} after {timeout:.0f}s",
                               {self.name: self.log_tail()})
            time.sleep(POLL_S)

    def stop(self) -> int | None:
        """Signal per `stop_signals` (each with its grace period), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        for sig, grace in self.stop_signals:
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self.forced_kill = True
        self.proc.kill()
        return self.proc.wait(timeout=10)

"""A small threaded TCP proxy that can break the link to one dependency on demand.

One proxy per dependency (LiveKit, Twilio REST, the LLM, PostgreSQL) listens on 127.0.0.1 and
forwards every connection to the real target. The app's processes are configured with the
proxy's address, so the test decides what the network between the app and that dependency does:

- `up()`: forward, byte for byte.
- `down()`: the dependency is unreachable: every existing connection is cut at once (reset) and
  every new one is closed as soon as it is accepted, before a byte is exchanged.
- `slow(seconds)`: the dependency answers, late: a new connection waits `seconds` before it is
  connected through, and every chunk, in either direction, is held `seconds` before it is passed
  on. A chunk held when the mode changes goes on at once (`up`) or is dropped with its
  connection (`down`), so restoring a dependency never leaves a request waiting on the proxy.

Pure sockets and threads; nothing here knows any protocol. `stats` counts what went through,
so a test can show that its fault was actually met (a fault nobody hit proves nothing).
"""
from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
CHUNK = 65536


@dataclass
class ProxyStats:
    accepted: int = 0  # connections forwarded to the target
    refused: int = 0  # connections closed on arrival while down
    cut: int = 0  # live connections cut by down()
    delayed_chunks: int = 0  # chunks held back while slow
    failed_upstream: int = 0  # the target itself refused the connection

    def snapshot(self) -> ProxyStats:
        return ProxyStats(**vars(self))


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN: the peer sees the connection fail, not end.

    `close()` alone is not enough while another thread is blocked in `recv()` on the socket: the
    kernel keeps the socket (and the peer's connection) alive until that call returns, so a peer
    waiting for an answer would wait forever. `shutdown(SHUT_RD)` wakes such a reader first."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


@dataclass(eq=False)
class _Link:
    client: socket.socket
    upstream: socket.socket
    open_directions: int = 2
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    def close(self, *, reset: bool = False) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            if reset:
                _reset(sock)
            else:
                try:
                    sock.close()
                except OSError:
                    pass


class FaultProxy:
    def __init__(self, name: str, target_host: str, target_port: int):
        self.name = name
        self.target = (target_host, target_port)
        self.stats = ProxyStats()
        self._mode = "up"
        self._delay = 0.0
        self._generation = 0  # bumped on every mode change: wakes held chunks
        self._changed = threading.Condition()
        self._links: set[_Link] = set()
        self._links_lock = threading.Lock()
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(256)
        self._thread = threading.Thread(target=self._accept_loop, name=f"proxy-{name}", daemon=True)
        self._thread.start()

    # -- where the app connects ------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode if self._mode != "slow" else f"slow({self._delay:g}s)"

    # -- faults ----------------------------------------------------------------------------------
    def up(self) -> None:
        self._set("up", 0.0)

    def slow(self, seconds: float) -> None:
        assert seconds > 0
        self._set("slow", float(seconds))

    def down(self) -> None:
        self._set("down", 0.0)
        with self._links_lock:
            links = list(self._links)
        for link in links:
            self.stats.cut += 1
            link.close(reset=True)

    def _set(self, mode: str, delay: float) -> None:
        with self._changed:
            self._mode, self._delay = mode, delay
            self._generation += 1
            self._changed.notify_all()

    def _hold(self, seconds: float) -> bool:
        """Wait `seconds`, or less if the mode changes meanwhile. False if the link must drop."""
        with self._changed:
            generation = self._generation
            self._changed.wait_for(lambda: self._generation != generation or self._stopping, timeout=seconds)
            return self._mode != "down" and not self._stopping

    # -- plumbing --------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._mode == "down":
                self.stats.refused += 1
                _reset(client)
                continue
            threading.Thread(target=self._connect, args=(client,), name=f"proxy-{self.name}-conn", daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        if self._mode == "slow" and not self._hold(self._delay):
            self.stats.refused += 1
            _reset(client)
            return
        if self._mode == "down":
            self.stats.refused += 1
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            self.stats.failed_upstream += 1
            _reset(client)
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream)
        with self._links_lock:
            self._links.add(link)
        self.stats.accepted += 1
        threading.Thread(target=self._pump, args=(link, client, upstream), name=f"proxy-{self.name}-up", daemon=True).start()
        threading.Thread(target=self._pump, args=(link, upstream, client), name=f"proxy-{self.name}-down", daemon=True).start()

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                if self._mode == "slow":
                    self.stats.delayed_chunks += 1
                    if not self._hold(self._delay):
                        link.close(reset=True)
                        return
                if self._mode == "down" or link.closed:
                    link.close(reset=True)
                    return
                dst.sendall(data)
            try:
                dst.shutdown(socket.SHUT_WR)  # pass the half-close on
            except OSError:
                pass
        except OSError:
            link.close(reset=True)
            return
        finally:
            with link.lock:
                link.open_directions -= 1
                done = link.open_directions <= 0
            if done or link.closed:
                link.close()
                with self._links_lock:
                    self._links.discard(link)

    def stop(self) -> None:
        self._stopping = True
        with self._changed:
            self._generation += 1
            self._changed.notify_all()
        for close in (lambda: self._listener.shutdown(socket.SHUT_RDWR), self._listener.close):
            try:
                close()  # shutdown wakes the accept() the loop is blocked in
            except OSError:
                pass
        self._thread.join(timeout=5)
        with self._links_lock:
            links = list(self._links)
        for link in links:
            link.close(reset=True)

    def __repr__(self) -> str:
        return f"<FaultProxy {self.name} {self.address} -> {self.target[0]}:{self.target[1]} {self.mode}>"

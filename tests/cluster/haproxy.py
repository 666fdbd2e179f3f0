"""HAProxy (Debian's package) in front of the app instances, configured as the README's operating
guide tells an operator to: round robin, health checks on `/api/health/ready`, timeouts that
let Server-Sent Events streams live, and retries only of connections that never reached an
instance (a POST that did reach one is never sent twice).

Settings, from the HAProxy 2.6 configuration manual (docs.haproxy.org/2.6/configuration.html):
- `option httpchk` + `http-check expect status 200`: a server is UP while its check answers
  200; `inter 500ms fall 2 rise 2` marks it DOWN after two failed checks, UP after two good.
- `timeout server` is the inactivity timeout on the server side of a connection: an SSE stream
  sends a heartbeat every SSE_HEARTBEAT_S, so anything longer keeps streams open; `timeout
  client` likewise for the browser side. `timeout tunnel` applies once a connection is a tunnel
  (WebSocket upgrades), not to SSE, and is set for completeness.
- `retries 3` with `retry-on conn-failure` (the default set) and `option redispatch`: a
  connection refused by a dead instance is retried on the other one; "conn-failure" covers only
  failures to establish the connection, so a request that reached an instance is not replayed.
- `option http-server-close`: connection-close mode on the server side, keep-alive kept on the
  client side. Without it HAProxy keeps idle connections to
  each instance and may reuse one (`http-reuse safe`, the default, does so for any request but a
  client connection's first); when that instance has just been killed, the request is written
  on a dead socket and the client gets a 502 "invalid or incomplete response", which
  `retry-on conn-failure` does not cover (the connection had been established). Seen in CI:
  Agent B's accept after app1's SIGKILL answered 502. With a fresh connection per request, a
  dead instance always refuses the connect, and that is retried on the other one. The price is
  one loopback/LAN TCP handshake per request.
- `option forwardfor`: the client's address in X-Forwarded-For (the app trusts one hop,
  TRUST_PROXY=1, for its per-address limits).
- `http-response set-header X-WT-Backend %[srv_name]`: which instance answered (the test pins
  each agent's stream to an instance with it).
"""
from __future__ import annotations

import csv
import io
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path

from tests.live.processes import ManagedProcess, PortAllocator, RigError

LOOPBACK = "127.0.0.1"


def haproxy_binary() -> Path:
    found = shutil.which("haproxy") or (Path("/usr/sbin/haproxy") if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise RigError("haproxy not found; scripts/bootstrap.sh installs Debian's package 'haproxy'")
    return Path(found)


def config_text(port: int, stats_port: int, servers: dict[str, int], *, sse_timeout: str = "1h") -> str:
    lines = [
        "global",
        "    maxconn 4096",
        # Per-request lines (server chosen, timers, termination state) on stdout: haproxy.log.
        "    log stdout format raw local0 info",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 2s",
        f"    timeout client {sse_timeout}",
        f"    timeout server {sse_timeout}",
        f"    timeout tunnel {sse_timeout}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    option forwardfor",
        "    option http-server-close",
        "    option redispatch",
        "    retries 3",
        "    retry-on conn-failure",
        "frontend app",
        f"    bind {LOOPBACK}:{port}",
        "    default_backend instances",
        "backend instances",
        "    balance roundrobin",
        "    option httpchk GET /api/health/ready",
        "    http-check expect status 200",
        "    http-response set-header X-WT-Backend %[srv_name]",
    ]
    lines += [f"    server {name} {LOOPBACK}:{p} check inter 500ms fall 2 rise 2" for name, p in servers.items()]
    lines += [
        "listen stats",
        f"    bind {LOOPBACK}:{stats_port}",
        "    stats enable",
        "    stats uri /stats",
    ]
    return "\n".join(lines) + "\n"


class HAProxy:
    def __init__(self, workdir: Path, ports: PortAllocator, servers: dict[str, int]):
        self.port = ports.port(tcp=True)
        self.stats_port = ports.port(tcp=True)
        self.servers = dict(servers)
        self.config_path = workdir / "haproxy.cfg"
        self.config_path.write_text(config_text(self.port, self.stats_port, self.servers))
        # -db: stay in the foreground, no daemon (haproxy(1)).
        self.process = ManagedProcess("haproxy", [str(haproxy_binary()), "-db", "-f", str(self.config_path)],
                                      workdir / "haproxy.log", workdir, stop_signals=((signal.SIGUSR1, 5.0), (signal.SIGTERM, 5.0)))

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def server_states(self) -> dict[str, str]:
        """Each app instance's state as HAProxy sees it (UP, DOWN, ...), from its CSV stats."""
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.stats_port}/stats;csv", timeout=1) as r:
                text = r.read().decode()
        except (urllib.error.URLError, OSError):
            return {}
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {row["svname"]: row["status"].split()[0] for row in rows if row["pxname"] == "instances" and row["svname"] in self.servers}

    def all_up(self) -> bool:
        states = self.server_states()
        return bool(states) and all(states.get(name) == "UP" for name in self.servers)

    def start(self, timeout: float = 30.0) -> float:
        self.process.start()
        return self.process.wait_until(self.all_up, timeout, "seeing every instance UP")

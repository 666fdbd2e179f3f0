"""The live test rig: real redis-server, livekit-server and livekit-sip on loopback.

Each service runs as a child process in a temp directory, on free loopback ports, with its
config file and its log file there too. Start-up waits for real readiness (Redis answers PING,
livekit-server's health endpoint answers 200, livekit-sip answers a SIP OPTIONS over TCP);
any failure raises RigError carrying the tail of every log, so a red CI run says why.

    with Rig.start(tmp_path, webhook_urls=["http://127.0.0.1:8000/livekit/webhook"]) as rig:
        rig.livekit.ws_url, rig.livekit.api_key, rig.sip.sip_port, ...

Binaries: $WT_LIVEKIT_SERVER_BIN / $WT_LIVEKIT_SIP_BIN, else the cache that
scripts/rig/install.sh fills (${WT_RIG_CACHE:-~/.cache/wt-rig}/<name>-<tag>/, tags from
scripts/rig/versions.env), else `livekit-server` / `livekit-sip` on PATH. Nothing is skipped
when one is missing: RigError says to run scripts/rig/install.sh.

Config keys are those of livekit-server v1.13.3 (pkg/config/config.go, strict YAML: an unknown
key is a start-up error) and livekit-sip v1.8.0 (pkg/config/config.go). The files are written
as JSON, which is YAML.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.live.processes import ManagedProcess, PortAllocator, RigError, tail

__all__ = ["Binaries", "LOOPBACK", "LiveKitSIP", "LiveKitServer", "RedisServer", "Rig", "RigError",
           "sip_options_ok", "tail"]

REPO = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO / "scripts" / "rig" / "versions.env"
LOOPBACK = "127.0.0.1"

# --------------------------------------------------------------------------- binaries


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def cache_dir() -> Path:
    return Path(os.environ.get("WT_RIG_CACHE", Path.home() / ".cache" / "wt-rig"))


@dataclass(frozen=True)
class Binaries:
    redis_server: Path
    livekit_server: Path
    livekit_sip: Path

    @classmethod
    def locate(cls) -> Binaries:
        v = read_versions()
        cache = cache_dir()
        return cls(
            redis_server=_find("redis-server", "WT_REDIS_SERVER_BIN", None, "redis-server"),
            livekit_server=_find(
                "livekit-server", "WT_LIVEKIT_SERVER_BIN",
                cache / f"livekit-server-{v['LIVEKIT_SERVER_VERSION']}" / v["LIVEKIT_SERVER_BIN"],
                "livekit-server"),
            livekit_sip=_find(
                "livekit-sip", "WT_LIVEKIT_SIP_BIN",
                cache / f"livekit-sip-{v['LIVEKIT_SIP_VERSION']}" / v["LIVEKIT_SIP_BIN"],
                "livekit-sip"),
        )


def _find(name: str, env: str, cached: Path | None, on_path: str) -> Path:
    if os.environ.get(env):
        path = Path(os.environ[env])
        if not os.access(path, os.X_OK):
            raise RigError(f"${env}={path} is not an executable")
        return path
    if cached is not None and os.access(cached, os.X_OK):
        return cached
    found = shutil.which(on_path)
    if found:
        return Path(found)
    raise RigError(
        f"{name} not found (looked at ${env}, {cached or '-'}, PATH); "
        f"run scripts/rig/install.sh")


# --------------------------------------------------------------------------- config files


def _write_config(path: Path, config: dict) -> Path:
    # JSON is a subset of YAML 1.2; both services parse the file with gopkg.in/yaml.v3.
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- services


class RedisServer:
    """redis-server on 127.0.0.1, no persistence (no RDB snapshots, no AOF)."""

    def __init__(self, workdir: Path, binary: Path, port: int):
        self.port = port
        self.workdir = workdir
        self.config_path = workdir / "redis.conf"
        self.log_path = workdir / "redis.log"
        self.config_path.write_text(
            f"bind {LOOPBACK}\nport {port}\nprotected-mode yes\n"
            f'save ""\nappendonly no\ndir {workdir}\ndaemonize no\nlogfile ""\n')
        self.process = ManagedProcess("redis-server", [str(binary), str(self.config_path)],
                                      self.log_path, workdir)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _pong(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 15.0) -> float:
        self.process.start()
        return self.process.wait_until(self._pong, timeout, "answering PING")


class LiveKitServer:
    """livekit-server bound to 127.0.0.1 with Redis, fixed small RTC ports, no TURN.

    Keys from livekit-server v1.13.3 pkg/config/config.go (Config, RTCConfig, TURNConfig,
    LoggingConfig), rtcconfig.RTCConfig from mediatransportutil (udp_port, tcp_port, node_ip,
    use_external_ip, enable_loopback_candidate, interfaces), webhook.WebHookConfig from
    protocol/webhook/notifier.go (urls, api_key), redis.RedisConfig (address).
    """

    def __init__(self, workdir: Path, binary: Path, ports: PortAllocator, redis_address: str,
                 api_key: str = "devkey", api_secret: str = "secret",
                 webhook_urls: list[str] | None = None, log_level: str = "info"):
        self.api_key = api_key
        self.api_secret = api_secret
        self.http_port = ports.port(tcp=True)
        self.rtc_tcp_port = ports.port(tcp=True)
        # One UDP mux port per CPU is used (rtcconfig.NewWebRTCConfig); two cover this machine.
        self.rtc_udp_ports = ports.range(2, udp=True)
        self.webhook_urls = list(webhook_urls or [])
        self.config_path = workdir / "livekit.yaml"
        self.log_path = workdir / "livekit-server.log"
        config = {
            "port": self.http_port,
            "bind_addresses": [LOOPBACK],
            "keys": {api_key: api_secret},
            "redis": {"address": redis_address},
            "rtc": {
                "udp_port": f"{self.rtc_udp_ports[0]}-{self.rtc_udp_ports[1]}",
                "tcp_port": self.rtc_tcp_port,
                # An explicit node_ip: no STUN lookup, no ICE servers handed to clients.
                "node_ip": LOOPBACK,
                "use_external_ip": False,
                # Offer only loopback ICE candidates.
                "enable_loopback_candidate": True,
                "interfaces": {"includes": ["lo"]},
            },
            "turn": {"enabled": False},
            "logging": {"level": log_level, "json": False, "pion_level": "warn"},
        }
        if self.webhook_urls:
            config["webhook"] = {"api_key": api_key, "urls": self.webhook_urls}
        _write_config(self.config_path, config)
        self.process = ManagedProcess(
            "livekit-server", [str(binary), "--config", str(self.config_path)],
            self.log_path, workdir,
            # The first signal drains rooms; the second forces (cmd/server/main.go).
            stop_signals=((signal.SIGTERM, 5.0), (signal.SIGTERM, 5.0)))

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.http_port}"

    def _healthy(self) -> bool:
        # GET / answers 200 "OK" once the node has published its stats (pkg/service/server.go).
        try:
            with urllib.request.urlopen(self.http_url + "/", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 30.0) -> float:
        self.process.start()
        return self.process.wait_until(self._healthy, timeout, "healthy (GET / == 200)")


class LiveKitSIP:
    """livekit-sip with SIP (UDP+TCP) and RTP on 127.0.0.1.

    Keys from livekit-sip v1.8.0 pkg/config/config.go: api_key, api_secret, ws_url, redis,
    sip_port, listen_ip, use_external_ip, nat_1_to_1_ip, rtp_port, logging.
    """

    def __init__(self, workdir: Path, binary: Path, ports: PortAllocator, redis_address: str,
                 ws_url: str, api_key: str, api_secret: str, rtp_ports: int = 100,
                 log_level: str = "debug"):
        self.sip_port = ports.port(udp=True, tcp=True)
        # One even port per call, held ~30 s after hang-up while it drains (config defaults).
        self.rtp_ports = ports.range(rtp_ports, udp=True)
        self.config_path = workdir / "sip.yaml"
        self.log_path = workdir / "livekit-sip.log"
        _write_config(self.config_path, {
            "api_key": api_key,
            "api_secret": api_secret,
            "ws_url": ws_url,
            "redis": {"address": redis_address},
            "sip_port": self.sip_port,
            "listen_ip": LOOPBACK,
            "use_external_ip": False,
            # Without it the signalling/media address in Contact and SDP is the first
            # non-loopback interface's (pkg/sip/config.go getLocalIP); pin it to loopback.
            "nat_1_to_1_ip": LOOPBACK,
            "rtp_port": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "logging": {"level": log_level, "json": False},
        })
        self.process = ManagedProcess(
            "livekit-sip", [str(binary), "--config", str(self.config_path)],
            self.log_path, workdir,
            # SIGINT stops all calls now; SIGTERM would wait for calls to end (cmd/livekit-sip).
            stop_signals=((signal.SIGINT, 10.0),))

    def uri(self, user: str) -> str:
        return f"sip:{user}@{LOOPBACK}:{self.sip_port};transport=tcp"

    def _answers_options(self) -> bool:
        return sip_options_ok(LOOPBACK, self.sip_port)

    def start(self, timeout: float = 30.0) -> float:
        self.process.start()
        return self.process.wait_until(self._answers_options, timeout, "answering SIP OPTIONS")


def sip_options_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a SIP OPTIONS over TCP; True on a 200 response."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            lhost, lport = s.getsockname()[:2]
            tag, branch, call_id = (uuid.uuid4().hex[:12] for _ in range(3))
            msg = (
                f"OPTIONS sip:{host}:{port};transport=tcp SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP {lhost}:{lport};branch=z9hG4bK{branch};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:rig-probe@{lhost}>;tag={tag}\r\n"
                f"To: <sip:{host}:{port}>\r\n"
                f"Call-ID: {call_id}@{lhost}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                f"Contact: <sip:rig-probe@{lhost}:{lport};transport=tcp>\r\n"
                "Content-Length: 0\r\n\r\n")
            s.sendall(msg.encode())
            return s.recv(4096).startswith(b"SIP/2.0 200")
    except OSError:
        return False


# --------------------------------------------------------------------------- the rig


@dataclass
class Rig:
    """Redis + livekit-server + livekit-sip, started in order, stopped in reverse."""

    workdir: Path
    redis: RedisServer
    livekit: LiveKitServer
    sip: LiveKitSIP
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, workdir: Path, *, webhook_urls: list[str] | None = None,
              api_key: str = "devkey", api_secret: str = "secret",
              binaries: Binaries | None = None, sip_rtp_ports: int = 100,
              sip_log_level: str = "debug") -> Rig:
        """`sip_rtp_ports`: livekit-sip takes one even port per call and holds it a while after
        hang-up, so a run with many calls (bench/capacity.py) needs more than the tests' 100;
        `sip_log_level`: debug logs every SIP message, which costs CPU a benchmark would count."""
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        binaries = binaries or Binaries.locate()
        ports = PortAllocator()
        t0 = time.monotonic()
        redis = RedisServer(workdir, binaries.redis_server, ports.port(tcp=True))
        started: list[ManagedProcess] = []
        try:
            started.append(redis.process)
            redis.start()
            t_redis = time.monotonic()
            livekit = LiveKitServer(workdir, binaries.livekit_server, ports, redis.address,
                                    api_key, api_secret, webhook_urls)
            started.append(livekit.process)
            livekit.start()
            t_livekit = time.monotonic()
            sip = LiveKitSIP(workdir, binaries.livekit_sip, ports, redis.address,
                             livekit.ws_url, api_key, api_secret, rtp_ports=sip_rtp_ports,
                             log_level=sip_log_level)
            started.append(sip.process)
            sip.start()
            t_sip = time.monotonic()
        except BaseException as exc:
            for proc in reversed(started):
                proc.stop()
            if isinstance(exc, RigError):
                logs = {p.name: p.log_tail() for p in started}
                raise RigError(f"rig start-up failed: {exc.args[0].splitlines()[0]}", logs) from exc
            raise
        rig = cls(workdir, redis, livekit, sip)
        rig.timings = {"redis_s": t_redis - t0, "livekit_server_s": t_livekit - t_redis,
                       "livekit_sip_s": t_sip - t_livekit, "total_s": t_sip - t0}
        return rig

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.redis.process, self.livekit.process, self.sip.process]

    def check_alive(self) -> None:
        for p in self.processes:
            p.check_alive()

    def log_tails(self, lines: int = 40) -> dict[str, str]:
        return {p.name: p.log_tail(lines) for p in self.processes}

    def stop(self) -> dict[str, int | None]:
        """Stop all services (SIP first). Returns exit codes; forced kills are recorded on
        each ManagedProcess.forced_kill."""
        return {p.name: p.stop() for p in reversed(self.processes)}

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.live.rig [--webhook URL] [--workdir DIR]`: run the rig in the
    foreground for manual work, print the app's LiveKit settings, stop on Ctrl-C/SIGTERM."""
    import argparse
    import sys
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m tests.live.rig", description=main.__doc__)
    parser.add_argument("--webhook", action="append", default=[], help="webhook URL (repeatable)")
    parser.add_argument("--workdir", type=Path, help="config/log directory (default: a temp dir)")
    parser.add_argument("--api-key", default="devkey")
    parser.add_argument("--api-secret", default="secret")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wt-rig-"))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with Rig.start(workdir, webhook_urls=args.webhook, api_key=args.api_key,
                   api_secret=args.api_secret) as rig:
        print(f"LIVEKIT_WS_URL={rig.livekit.ws_url}\nLIVEKIT_HTTP_URL={rig.livekit.http_url}\n"
              f"LIVEKIT_API_KEY={rig.livekit.api_key}\nLIVEKIT_API_SECRET={rig.livekit.api_secret}\n"
              f"LIVEKIT_SIP_HOST={LOOPBACK}:{rig.sip.sip_port}\n"
              f"# logs and configs: {workdir}; up in {rig.timings['total_s']:.2f}s; Ctrl-C stops",
              flush=True)
        received = signal.sigwait({signal.SIGINT, signal.SIGTERM})
        print(f"# {signal.Signals(received).name}: stopping", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

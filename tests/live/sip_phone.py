"""A real SIP phone for the live rig, built on PJSIP's Python bindings (pjsua2-python).

The phone runs in its own process (one PJSIP endpoint per process; a PJSIP crash cannot take
pytest down; a stuck call can be killed) and talks to the test over pipes: JSON events on
stdout, one-word commands on stdin (`hangup`, `quit`). PJSIP's own log goes to a file.

    phone = SipPhone.dial(rig.sip.uri("call_1"), username="u", password="p",
                          headers={"X-WT-Call": "1", "X-WT-Role": "customer"},
                          play_wav=tone_440, record_wav=tmp / "heard.wav", log_path=tmp / "phone.log")
    phone.wait_state("CONFIRMED", timeout=20)
    ...
    ended = phone.hangup()          # sends BYE, waits for the recording to be closed
    samples, rate = read_wav(ended["recording"])

What it does on the wire: INVITE over TCP from 127.0.0.1 with the given X- headers, answers a
407/401 challenge with the digest credentials (realm "*"), offers PCMU only (what Twilio sends
to a SIP endpoint), loops the WAV into the call and records the call's incoming audio to a WAV
(16-bit, the conference bridge's 16 kHz). No sound device: PJSIP's null device clocks the bridge.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from tests.live.processes import tail
from tests.live.rig import REPO


class PhoneError(RuntimeError):
    pass


def split_uri_headers(uri: str) -> tuple[str, dict[str, str]]:
    """Split a SIP URI's `?name=value&...` header part (as Twilio's <Sip> URIs carry
    X-headers) into the bare URI and a header dict."""
    base, sep, query = uri.partition("?")
    if not sep:
        return uri, {}
    headers = {urllib.parse.unquote(k): urllib.parse.unquote(v)
               for k, _, v in (part.partition("=") for part in query.split("&") if part)}
    return base, headers


# --------------------------------------------------------------------------- test side


class SipPhone:
    """Controls one phone process. Events are kept in order in `events`."""

    def __init__(self, proc: subprocess.Popen[str], log_path: Path):
        self.proc = proc
        self.log_path = log_path
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read_events, name="sip-phone-events", daemon=True)
        self._reader.start()

    @classmethod
    def dial(cls, uri: str, *, username: str, password: str, play_wav: Path, record_wav: Path,
             log_path: Path, headers: dict[str, str] | None = None, from_user: str = "customer",
             python: str = sys.executable) -> SipPhone:
        bare_uri, uri_headers = split_uri_headers(uri)
        config = {
            "uri": bare_uri,
            "headers": {**uri_headers, **(headers or {})},
            "username": username,
            "password": password,
            "from_user": from_user,
            "play_wav": str(play_wav),
            "record_wav": str(record_wav),
            "log_path": str(log_path),
        }
        proc = subprocess.Popen(
            [python, "-m", "tests.live.sip_phone", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, cwd=REPO)
        return cls(proc, log_path)

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "stray_output", "text": line}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "process_exit", "code": self.proc.wait()})
            self._cond.notify_all()

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def _fail(self, message: str) -> PhoneError:
        return PhoneError(f"{message}\nevents: {self.events}\n----- phone log -----\n{self.log_tail()}")

    def wait_event(self, predicate, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                    if event["event"] in ("error", "process_exit") and not predicate(event):
                        raise self._fail(f"phone stopped while waiting for {what}")
                seen = len(self.events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._fail(f"phone: no {what} after {timeout:.0f}s")
                self._cond.wait(remaining)

    def wait_state(self, state: str, timeout: float) -> dict[str, Any]:
        """Wait for a PJSIP invite state (CALLING, EARLY, CONNECTING, CONFIRMED)."""
        def match(e: dict[str, Any]) -> bool:
            if e["event"] == "call_state" and e["state"] == "DISCONNECTED" and state != "DISCONNECTED":
                raise self._fail(f"call ended before {state}: {e.get('code')} {e.get('reason')}")
            return e["event"] == "call_state" and e["state"] == state
        return self.wait_event(match, timeout, f"call state {state}")

    def wait_media(self, timeout: float) -> dict[str, Any]:
        return self.wait_event(lambda e: e["event"] == "media_active", timeout, "active audio")

    def wait_ended(self, timeout: float) -> dict[str, Any]:
        """Wait until the call is over and the recording is closed; returns the `ended` event."""
        return self.wait_event(lambda e: e["event"] == "ended", timeout, "end of call")

    def _send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """The audio stream's receive counters now (see `stream_stats` in the phone process)."""
        with self._cond:
            before = sum(1 for e in self.events if e["event"] == "stats")
        self._send("stats")
        seen = [0]

        def the_answer(event: dict[str, Any]) -> bool:  # wait_event shows each event once, in order
            if event["event"] == "stats":
                seen[0] += 1
            return seen[0] > before and event["event"] == "stats"
        return self.wait_event(the_answer, timeout, "stream stats")

    def hangup(self, timeout: float = 15.0) -> dict[str, Any]:
        """Hang up (BYE, or CANCEL while ringing) and wait for the recording to be closed."""
        self._send("hangup")
        return self.wait_ended(timeout)

    def close(self, timeout: float = 10.0) -> int:
        """Make the process exit (hanging up first if needed) and reap it."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # EOF = quit: the phone hangs up if needed and exits
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        return self.proc.returncode


# --------------------------------------------------------------------------- phone process


def _phone_main(config: dict[str, Any]) -> int:
    # Events go to the original stdout; everything PJSIP prints (it writes to fd 1 before any
    # log config applies) goes to the log file.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    log_fd = os.open(config["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)

    def emit(event: str, **fields: Any) -> None:
        events.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")

    import pjsua2 as pj

    state: dict[str, Any] = {"done": False, "hangup_sent": False, "confirmed_at": None}
    # PJSIP's own state texts abbreviate ("DISCONNCTD"); name the states ourselves.
    INVITE_STATES = {
        pj.PJSIP_INV_STATE_NULL: "NULL", pj.PJSIP_INV_STATE_CALLING: "CALLING",
        pj.PJSIP_INV_STATE_INCOMING: "INCOMING", pj.PJSIP_INV_STATE_EARLY: "EARLY",
        pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING", pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
        pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
    }

    class Call(pj.Call):
        def __init__(self, account: pj.Account):
            super().__init__(account)
            self.player: pj.AudioMediaPlayer | None = None
            self.recorder: pj.AudioMediaRecorder | None = None

        def onCallState(self, prm: pj.OnCallStateParam) -> None:
            ci = self.getInfo()
            emit("call_state", state=INVITE_STATES.get(ci.state, str(ci.state)), code=int(ci.lastStatusCode), reason=ci.lastReason,
                 call_id=ci.callIdString)
            if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
                state["confirmed_at"] = time.monotonic()
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                state["disconnected"] = {"code": int(ci.lastStatusCode), "reason": ci.lastReason}

        def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
            ci = self.getInfo()
            for i, media in enumerate(ci.media):
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    state["media_index"] = i
                    audio = self.getAudioMedia(i)
                    if self.player is None:
                        self.player = pj.AudioMediaPlayer()
                        self.player.createPlayer(config["play_wav"], 0)  # 0 = loop
                        self.recorder = pj.AudioMediaRecorder()
                        self.recorder.createRecorder(config["record_wav"])
                    self.player.startTransmit(audio)
                    audio.startTransmit(self.recorder)
                    emit("media_active", index=i)

        def close_media(self) -> None:
            # Destroying the recorder writes the final WAV header.
            self.player = None
            self.recorder = None

    def stream_stats(call: pj.Call, index: int | None) -> dict[str, Any]:
        """Counters of the audio received so far: RTP packets received, lost on the way (gaps in
        sequence numbers), and frames the jitter buffer had to conceal (`jb_lost`: not there in
        time) or threw away (`jb_discard`: too late or too many, as when this process is late)."""
        if index is None or "disconnected" in state:
            return {"active": False}
        st = call.getStreamStat(index)
        rx = st.rtcp.rxStat
        return {"active": True, "rx_pkt": int(rx.pkt), "rx_loss": int(rx.loss), "rx_discard": int(rx.discard),
                "jb_lost": int(st.jbuf.lost), "jb_discard": int(st.jbuf.discard), "jb_empty": int(st.jbuf.empty),
                "jitter_ms": rx.jitterUsec.mean / 1000 if rx.jitterUsec.n else 0.0}

    ep = pj.Endpoint()
    ep.libCreate()
    ep_cfg = pj.EpConfig()
    ep_cfg.uaConfig.threadCnt = 0          # callbacks run only inside libHandleEvents, here
    ep_cfg.uaConfig.mainThreadOnly = True
    ep_cfg.uaConfig.userAgent = "wt-rig-phone (pjsua2)"
    ep_cfg.logConfig.level = 5
    ep_cfg.logConfig.consoleLevel = 0
    ep_cfg.logConfig.msgLogging = True
    ep_cfg.logConfig.filename = config["log_path"]
    ep_cfg.medConfig.noVad = True
    ep_cfg.medConfig.ecTailLen = 0          # no echo canceller: it would eat the tones
    ep.libInit(ep_cfg)

    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    tcfg.publicAddress = "127.0.0.1"
    transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 255 if codec.codecId.startswith("PCMU/") else 0)

    acc_cfg = pj.AccountConfig()
    acc_cfg.idUri = f"sip:{config['from_user']}@127.0.0.1"
    acc_cfg.sipConfig.transportId = transport_id
    acc_cfg.sipConfig.authCreds.append(
        pj.AuthCredInfo("digest", "*", config["username"], 0, config["password"]))
    acc_cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acc_cfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
    acc_cfg.natConfig.iceEnabled = False
    acc_cfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
    acc_cfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
    acc_cfg.natConfig.sdpNatRewriteUse = 0
    acc_cfg.natConfig.contactRewriteUse = 0
    acc_cfg.natConfig.viaRewriteUse = 0
    account = pj.Account()
    account.create(acc_cfg)

    call = Call(account)
    prm = pj.CallOpParam(True)
    for name, value in config["headers"].items():
        header = pj.SipHeader()
        header.hName = name
        header.hValue = value
        prm.txOption.headers.append(header)
    emit("dialing", uri=config["uri"], headers=config["headers"])
    call.makeCall(config["uri"], prm)

    stdin_fd = sys.stdin.fileno()
    selector = selectors.DefaultSelector()
    selector.register(stdin_fd, selectors.EVENT_READ)
    pending = b""
    stdin_open = True
    quit_requested = False
    while True:
        ep.libHandleEvents(10)
        commands: list[str] = []
        if stdin_open and selector.select(timeout=0):
            chunk = os.read(stdin_fd, 4096)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                commands = [line.decode().strip() for line in lines if line.strip()]
            else:  # EOF: the test closed our stdin (or went away): hang up and leave
                stdin_open = False
                selector.unregister(stdin_fd)
                commands = ["quit"]
        for command in commands:
            if command == "stats":
                emit("stats", **stream_stats(call, state.get("media_index")))
                continue
            if command not in ("hangup", "quit"):
                emit("error", message=f"unknown command {command!r}")
                continue
            quit_requested = quit_requested or command == "quit"
            if "disconnected" not in state and not state["hangup_sent"]:
                state["hangup_sent"] = True
                call.hangup(pj.CallOpParam(True))
        if "disconnected" in state and not state["done"]:
            state["done"] = True
            call.close_media()
            connected = (time.monotonic() - state["confirmed_at"]) if state["confirmed_at"] else 0.0
            emit("ended", recording=config["record_wav"], connected_s=connected,
                 by_us=state["hangup_sent"], **state["disconnected"])
        if state["done"] and quit_requested:
            break

    del call
    account.shutdown()
    ep.libDestroy()
    return 0


if __name__ == "__main__":
    sys.exit(_phone_main(json.loads(sys.argv[1])))

"""Capacity of one machine for concurrent warm transfers on the live rig, until audio degrades.

Level after level (2, 4, 8, then +--step up to --max), more warm transfers are set up for real
and kept up (bench/capacity_call.py): a SIP caller (pjsua2, 440 Hz) dials in through the Twilio
simulator, Agent A (a LiveKit SDK participant, 1000 Hz) answers, transfers to dashboard Agent B
(1650 Hz), who accepts; the briefing; A completes; B joins the caller, A leaves. Calls of earlier
levels stay up. At each level, after --settle seconds, every call is listened to in both
directions over the same --window seconds: the caller must hear Agent B and Agent B the caller
(tone against everything else >= --min-snr dB, at most --max-dropouts of 50 ms windows without
the tone, no other party's tone). A level is good when at least --min-pass of its legs pass and
every new transfer was set up; the knee is the last good level. The ramp stops at the first
level that is not good (--keep-going goes on).

CPU is read from /proc for each process group over the listening window (steady calls) and over
the set-up of each level's new transfers: livekit-server, livekit-sip, redis, the app (gunicorn,
master and workers), the worker, and the benchmark's own load (the agents' SDK participants and
the simulator in this process; one pjsua2 process per SIP leg), which shares the machine with
what is measured. The whole machine's busy share is printed too: other work on it shows there.

Usage: .venv/bin/python -m bench.capacity [--max 32] [--step 4] [--window 10] [--parallel 4] [--json FILE]
(needs scripts/rig/install.sh). Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.capacity_call import LegQuality, Listening, WarmTransfer, set_up
from bench.capacity_stack import CapacityStack
from bench.common import percentile
from bench.proc_cpu import CpuMeter, CpuWindow, machine_description

GROUPS = ["livekit-server", "livekit-sip", "app (gunicorn)", "worker", "redis", "bench: agents + simulator", "bench: SIP phones"]
PACKETS_PER_S = 50  # livekit-sip sends PCMU in 20 ms packets: what a call should bring a phone each second
SHORT = {"livekit-server": "lk-server", "livekit-sip": "lk-sip", "app (gunicorn)": "app", "worker": "worker", "redis": "redis",
         "bench: agents + simulator": "bench SDK", "bench: SIP phones": "bench SIP"}


def levels(start: int, step: int, maximum: int) -> list[int]:
    """start, doubling while that is less than a step, then +step; always ending at maximum."""
    out, n = [], max(1, start)
    while n < maximum:
        out.append(n)
        n = min(2 * n, n + step)
    return out + [maximum]


@dataclass
class Level:
    level: int
    new: list[WarmTransfer]
    calls_up: int
    legs: list[LegQuality]
    underruns: int  # gaps in what our agents sent because this process was late
    rtp: dict[str, int]  # what the callers' phones received in the window (Listening.phones_received)
    setup_cpu: CpuWindow
    steady_cpu: CpuWindow
    idle: CpuWindow  # the same processes with no call at all, before the first level
    load: float
    min_pass: float
    min_snr: float
    max_dropouts: float

    @property
    def failed(self) -> list[WarmTransfer]:
        return [u for u in self.new if u.error]

    @property
    def passed(self) -> int:
        return sum(1 for leg in self.legs if not leg.problems(self.min_snr, self.max_dropouts))

    @property
    def pass_rate(self) -> float:
        total = len(self.legs) + 2 * len(self.failed)  # a call that never came up fails both ways
        return self.passed / total if total else float("nan")

    @property
    def good(self) -> bool:
        return not self.failed and self.pass_rate >= self.min_pass

    def problems(self) -> dict[str, int]:
        """What went wrong, by kind, for the summary."""
        counts: dict[str, int] = {}
        for leg in self.legs:
            for problem in leg.problems(self.min_snr, self.max_dropouts):
                kind = f"{'caller hearing Agent B' if leg.who == 'caller' else 'Agent B hearing the caller'}: {problem}"
                counts[kind] = counts.get(kind, 0) + 1
        for unit in self.failed:
            counts[f"set-up: {unit.error}"] = counts.get(f"set-up: {unit.error}", 0) + 1
        return counts

    def above_idle(self, window: CpuWindow, group: str) -> float:
        """CPU seconds `group` used in `window` beyond what it uses with no calls (polling, timers)."""
        idle_rate = self.idle.cpu_s.get(group, 0.0) / self.idle.wall_s if self.idle.wall_s else 0.0
        return window.cpu_s.get(group, 0.0) - idle_rate * window.wall_s

    def per_call_ms(self, group: str) -> float:
        """CPU milliseconds per second of one call above idle, over the listening window."""
        return 1000 * self.above_idle(self.steady_cpu, group) / (self.calls_up * self.steady_cpu.wall_s) if self.calls_up else float("nan")

    def per_transfer_ms(self, group: str) -> float:
        """CPU milliseconds per transfer above idle, over the set-up of this level's transfers."""
        done = len(self.new) - len(self.failed)
        return 1000 * self.above_idle(self.setup_cpu, group) / done if done else float("nan")

    def as_dict(self) -> dict:
        setup = [u.phases["bridged"] for u in self.new if "bridged" in u.phases]
        return {
            "level": self.level, "calls_up": self.calls_up, "new_transfers": len(self.new), "failed_setups": [u.error for u in self.failed],
            "setup_s": {"p50": percentile(setup, 50), "p99": percentile(setup, 99)}, "legs": len(self.legs), "legs_passed": self.passed,
            "pass_rate": self.pass_rate, "good": self.good, "agent_send_underruns": self.underruns, "phones_received": self.rtp,
            "snr_db": {"p50": percentile([x.snr_db for x in self.legs], 50), "min": min((x.snr_db for x in self.legs), default=float("nan"))},
            "dropouts_max": max((x.dropouts for x in self.legs), default=float("nan")),
            "idle": {"wall_s": self.idle.wall_s, "cpu_s": self.idle.cpu_s},
            "steady": {"wall_s": self.steady_cpu.wall_s, "machine_busy": self.steady_cpu.machine_busy,
                       "cpu_s": self.steady_cpu.cpu_s, "ms_per_call_s": {g: self.per_call_ms(g) for g in GROUPS}},
            "setup": {"wall_s": self.setup_cpu.wall_s, "machine_busy": self.setup_cpu.machine_busy, "cpu_s": self.setup_cpu.cpu_s,
                      "ms_per_transfer": {g: self.per_transfer_ms(g) for g in ("app (gunicorn)", "worker")}},
            "load_average_1m": self.load, "problems": self.problems(),
            "legs_detail": [{"call": i // 2 + 1, "who": x.who, "snr_db": round(x.snr_db, 2), "dropouts": round(x.dropouts, 4),
                             "received_s": round(x.received_s, 3), "wrong": round(x.wrong, 4), "rms": round(x.rms)}
                            for i, x in enumerate(self.legs)],
        }


def run_level(stack: CapacityStack, meter: CpuMeter, units: list[WarmTransfer], level: int, args, routing: threading.Lock,
              idle: CpuWindow) -> Level:
    first = len(units) + 1
    meter.start()
    with ThreadPoolExecutor(max_workers=args.parallel, thread_name_prefix="transfer") as pool:
        new = list(pool.map(lambda i: set_up(stack, i, routing), range(first, level + 1)))
    setup_cpu = meter.stop()
    units.extend(new)
    time.sleep(args.settle)  # the last hold audio fades, jitter buffers settle
    listening = Listening(stack, units)
    meter.start()
    time.sleep(args.window)  # the calls run; everyone records
    steady_cpu = meter.stop()
    underruns = listening.underruns()
    rtp = listening.phones_received()
    legs = listening.collect(args.window)
    return Level(level, new, len(listening.units), legs, underruns, rtp, setup_cpu, steady_cpu, idle, os.getloadavg()[0], args.min_pass,
                 args.min_snr, args.max_dropouts)


def fmt(value: float, spec: str = ".1f") -> str:
    return "-" if value != value else format(value, spec)  # NaN: nothing to show


def _share(rtp: dict[str, int], key: str) -> str:
    """`key` as a percentage of the packets that should have arrived."""
    expected = rtp.get("rx_pkt", 0) + rtp.get("rx_loss", 0)
    return fmt(100 * rtp.get(key, 0) / expected) + "%" if expected else "-"


def report(results: list[Level], args, machine: str, elapsed: float) -> str:
    lines = [f"machine: {machine}; load average before the run {args.load_before:.2f}",
             "live rig: livekit-server v1.13.3, livekit-sip v1.8.0, redis; app: gunicorn 2 gthread workers + 1 worker process (hold audio), SQLite",
             f"each call: SIP caller (pjsua2, PCMU) -> Agent A (LiveKit SDK) -> warm transfer -> Agent B (LiveKit SDK) with the caller; "
             f"listened {args.window:g} s per level, both directions; pass = tone/rest >= {args.min_snr:g} dB, dropouts <= {args.max_dropouts:.0%}, "
             f"level good = every transfer set up and >= {args.min_pass:.0%} of legs pass",
             "",
             "level  calls up  new (failed)  set-up p50/p99 s  audio pass      tone/rest dB p50/min  worst dropouts  machine busy",
             ]
    for r in results:
        setup = [u.phases["bridged"] for u in r.new if "bridged" in u.phases]
        lines.append(f"{r.level:>5}  {r.calls_up:>8}  {len(r.new):>4} ({len(r.failed)}){'':>5}  {fmt(percentile(setup, 50)):>6} / {fmt(percentile(setup, 99)):<7}  "
                     f"{r.passed:>3}/{len(r.legs) + 2 * len(r.failed):<3} {fmt(100 * r.pass_rate, '.0f'):>3}%  "
                     f"{fmt(percentile([x.snr_db for x in r.legs], 50)):>10} / {fmt(min((x.snr_db for x in r.legs), default=float('nan'))):<8}  "
                     f"{fmt(100 * max((x.dropouts for x in r.legs), default=float('nan'))):>12}%  {fmt(100 * r.steady_cpu.machine_busy, '.0f'):>10}%")
    lines += ["", "What the callers' phones received from livekit-sip while listened to: RTP packets, lost on the way, and frames the",
              "phone's jitter buffer concealed (not there in time) or discarded (too late or too many); our agents' send gaps (this process late)",
              f"level  packets  of {PACKETS_PER_S}/s per call  lost    concealed  discarded  our send gaps"]
    for r in results:
        paced = r.calls_up * r.steady_cpu.wall_s * PACKETS_PER_S
        lines.append(f"{r.level:>5}  {r.rtp.get('rx_pkt', 0):>7}  {fmt(100 * r.rtp.get('rx_pkt', 0) / paced if paced else float('nan'), '.0f'):>16}%  "
                     f"{_share(r.rtp, 'rx_loss'):>6}  {_share(r.rtp, 'jb_lost'):>9}  {_share(r.rtp, 'jb_discard'):>9}  {r.underruns:>13}")
    idle = results[0].idle if results else None
    lines += ["", "CPU while the calls run (listening window): ms of CPU per call-second above idle, and in brackets % of one core in all",
              "level  " + "  ".join(f"{SHORT[g]:>15}" for g in GROUPS)]
    if idle is not None:
        lines.append(" idle  " + "  ".join(f"{'':>6} ({fmt(idle.percent(g), '.0f'):>4}%)  " for g in GROUPS))
    for r in results:
        lines.append(f"{r.level:>5}  " + "  ".join(f"{fmt(r.per_call_ms(g)):>6} ({fmt(r.steady_cpu.percent(g), '.0f'):>4}%)  " for g in GROUPS))
    lines += ["", "CPU while each level's new transfers were set up: ms of CPU per transfer above idle (the app's and the worker's work is per",
              "transfer; the worker's includes the hold audio it plays through each consult)",
              "level  new  wall s     app  worker"]
    for r in results:
        lines.append(f"{r.level:>5}  {len(r.new):>3}  {r.setup_cpu.wall_s:>6.1f}  {fmt(r.per_transfer_ms('app (gunicorn)'), '.0f'):>6}  "
                     f"{fmt(r.per_transfer_ms('worker'), '.0f'):>6}")
    good = [r.level for r in results if r.good]
    bad = next((r for r in results if not r.good), None)
    knee = None
    for r in results:
        if not r.good:
            break
        knee = r.level
    lines.append("")
    if knee is None:
        lines.append(f"knee: none — the first level ({results[0].level}) already degraded" if results else "knee: no level ran")
    elif bad is None:
        lines.append(f"knee: not reached — every level up to {knee} was good (raise --max)")
    else:
        lines.append(f"knee: {knee} concurrent warm transfers (level {bad.level} was not good: {bad.passed}/{len(bad.legs) + 2 * len(bad.failed)} legs passed; "
                     f"machine {100 * bad.steady_cpu.machine_busy:.0f}% busy)")
        for kind, count in sorted(bad.problems().items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count:>3} x {kind}")
    lines.append(f"good levels: {good}; run took {elapsed:.0f} s")
    return "\n".join(lines)


def _not_a_closing_data_channel(record: logging.LogRecord) -> bool:
    """The SDK logs an ERROR for each data channel of a participant that leaves (Agent A, every
    transfer); the agents send no data, and audio is judged by what is heard."""
    return "data channel" not in record.getMessage() or "closed unexpectedly" not in record.getMessage()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=32, help="the highest level (concurrent warm transfers)")
    parser.add_argument("--start", type=int, default=2, help="the first level")
    parser.add_argument("--step", type=int, default=4, help="levels double up to this, then grow by it")
    parser.add_argument("--window", type=float, default=10.0, help="seconds listened to at each level")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds measured with no calls, before the first level")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between the last set-up and listening")
    parser.add_argument("--parallel", type=int, default=4, help="transfers being set up at once")
    parser.add_argument("--min-pass", type=float, default=0.95, help="share of legs that must pass for a level to be good")
    parser.add_argument("--min-snr", type=float, default=10.0, help="dB of the expected tone against everything else heard")
    parser.add_argument("--max-dropouts", type=float, default=0.02, help="share of 50 ms windows allowed without the tone")
    parser.add_argument("--keep-going", action="store_true", help="go on past the first level that is not good")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--workdir", type=Path, help="logs and recordings (default: a temporary directory)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("livekit").addFilter(_not_a_closing_data_channel)
    args.load_before = os.getloadavg()[0]
    machine = machine_description()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wt-capacity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    plan = levels(args.start, args.step, args.max)
    print(f"[capacity] {machine}; levels {plan}; logs in {workdir}", file=sys.stderr, flush=True)
    started = time.monotonic()
    stack = CapacityStack(workdir, agents=args.max, keep_s=args.window + args.settle + 20).start()
    meter = CpuMeter(stack.classify)
    units: list[WarmTransfer] = []
    results: list[Level] = []
    routing = threading.Lock()
    try:
        meter.start()
        time.sleep(args.idle)  # no calls: what the processes use just by running
        idle = meter.stop()
        for level in plan:
            result = run_level(stack, meter, units, level, args, routing, idle)
            results.append(result)
            print(f"[capacity] level {level}: {result.calls_up} calls up, {len(result.failed)} failed set-ups, "
                  f"audio pass {result.passed}/{len(result.legs) + 2 * len(result.failed)}, machine {100 * result.steady_cpu.machine_busy:.0f}% busy"
                  + ("" if result.good else f" — not good: {result.problems()}"), file=sys.stderr, flush=True)
            if not result.good and not args.keep_going:
                break
    finally:
        for unit in units:
            if unit.agent_b is not None:
                try:
                    stack.leave(unit.agent_b)
                except Exception as err:  # the rig goes down next anyway
                    print(f"[capacity] leaving: {err!r}", file=sys.stderr)
        stack.stop()
    elapsed = time.monotonic() - started
    print(report(results, args, machine, elapsed))
    if args.json:
        knee = None
        for r in results:
            if not r.good:
                break
            knee = r.level
        args.json.write_text(json.dumps({"machine": machine, "levels": [r.as_dict() for r in results], "knee": knee,
                                         "elapsed_s": elapsed, "settings": {k: (str(v) if isinstance(v, Path) else v)
                                                                             for k, v in vars(args).items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

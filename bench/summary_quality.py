"""Offline summary quality over the call fixtures: how many of each call's facts the summary keeps,
whether any PII reaches it, and how long it is against its budget.

Each fixture in tests/fixtures/contexts lists `must_keep` (the facts Agent B needs: a string to
find, case-insensitively, or a regular expression written "re:<pattern>") and the PII it carries
(`pii`, and `must_not_contain` for what redaction removes before storage). Context goes through
`redact()` as the app stores it, then the offline summarizer. A fact counts as kept when the
display text has it; the spoken text is checked too, with identifiers spelled as Twilio reads them.
PII is looked for in both, as written and as bare digits, plus any card number, SSN, phone number
or email address the fixture did not list.

Usage: .venv/bin/python -m bench.summary_quality
"""
from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.summaries.base import (  # noqa: E402
    SPEECH_MAX_CHARS,
    TEXT_MAX_CHARS,
    ContextLine,
    SummaryInput,
    SummaryResult,
    finish,
    speakable,
)
from app.summaries.offline import summarize_offline  # noqa: E402
from app.summaries.redact import luhn_ok, redact  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "contexts"
_GENERIC_PII = re.compile(
    r"\b\d{3}-\d{2}-\d{4}\b"  # SSN
    r"|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"  # email
    r"|\+\d[\d\s().-]{8,}\d"  # international phone
    r"|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b",  # North American phone
)
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")


@dataclass(frozen=True)
class Case:
    name: str
    data: SummaryInput
    facts: tuple[str, ...]
    pii: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    case: Case
    result: SummaryResult
    missing: tuple[str, ...]
    missing_in_speech: tuple[str, ...]
    pii_found: tuple[str, ...]

    @property
    def kept(self) -> int:
        return len(self.case.facts) - len(self.missing)


def load(path: Path) -> Case:
    raw = json.loads(path.read_text())
    # As the app stores them: redacted at write time, with the kind of entry they are.
    lines = tuple(ContextLine(e["author"], e.get("source", "note"), redact(e["text"])) for e in raw["entries"])
    pii = tuple(dict.fromkeys([*raw.get("must_not_contain", []), *raw.get("pii", [])]))
    return Case(path.stem, SummaryInput(raw["customer_name"], lines), tuple(raw["must_keep"]), pii)


def cases() -> list[Case]:
    return [load(p) for p in sorted(FIXTURES.glob("*.json"))]


def has_fact(fact: str, text: str, *, spoken: bool = False) -> bool:
    if fact.startswith("re:"):
        return re.search(fact[3:], text, re.I) is not None
    needle = speakable(fact) if spoken else fact
    return needle.lower() in text.lower()


def pii_in(secret: str, text: str) -> bool:
    """As written, or as its digits however spaced ("4 1 5 5 5 5 0 1 4 2" is the phone number spoken)."""
    digits = re.sub(r"\D", "", secret)
    joined = re.sub(r"(?<=\d)[\s./-]+(?=\d)", "", text)
    return secret.lower() in text.lower() or (len(digits) >= 4 and digits in joined)


def score(case: Case) -> Score:
    result = finish(summarize_offline(case.data), "offline", None)
    missing = tuple(f for f in case.facts if not has_fact(f, result.text))
    unspoken = tuple(f for f in case.facts if not has_fact(f, result.speech, spoken=True))
    found = [p for p in case.pii if pii_in(p, result.text) or pii_in(p, result.speech)]
    for text in (result.text, result.speech):
        found += [m.group(0) for m in _GENERIC_PII.finditer(text)]
        found += [m.group(0) for m in _CARD.finditer(text) if luhn_ok(re.sub(r"\D", "", m.group(0)))]
    return Score(case, result, missing, unspoken, tuple(dict.fromkeys(found)))


def main() -> None:
    scores = [score(c) for c in cases()]
    print(f"offline summarizer over {len(scores)} fixtures; budget: speech {SPEECH_MAX_CHARS} chars, text {TEXT_MAX_CHARS}")
    print(f"{'fixture':<32} {'facts':>7} {'recall':>7} {'spoken':>7} {'PII':>4} {'speech':>11} {'text':>10}  missing")
    for s in scores:
        total = len(s.case.facts)
        recall = s.kept / total * 100 if total else 100.0
        spoken = (total - len(s.missing_in_speech)) / total * 100 if total else 100.0
        print(
            f"{s.case.name:<32} {s.kept:>3}/{total:<3} {recall:>6.1f}% {spoken:>6.1f}% {len(s.pii_found):>4} "
            f"{len(s.result.speech):>5}/{SPEECH_MAX_CHARS:<5} {len(s.result.text):>4}/{TEXT_MAX_CHARS:<5}  "
            + ", ".join(repr(m) for m in s.missing)
            + (f"  PII: {', '.join(s.pii_found)}" if s.pii_found else "")
        )
    kept = sum(s.kept for s in scores)
    total = sum(len(s.case.facts) for s in scores)
    spoken = sum(len(s.case.facts) - len(s.missing_in_speech) for s in scores)
    pii = sum(len(s.pii_found) for s in scores)
    # Not a speed goal, but the offline summary is also the fallback when an LLM is late: say what it costs.
    from bench.prompt_size import context

    for lines in (max(len(s.case.data.entries) for s in scores), 600):
        started = time.perf_counter()
        summarize_offline(context(lines))
        print(f"time to summarize a {lines}-line call: {(time.perf_counter() - started) * 1000:.0f} ms")
    print(f"overall: {kept}/{total} facts kept ({kept / total * 100:.1f} %), spoken {spoken}/{total} ({spoken / total * 100:.1f} %), PII found: {pii}")


if __name__ == "__main__":
    main()

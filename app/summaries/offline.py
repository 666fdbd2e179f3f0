"""A deterministic, extractive summarizer that needs no network and no keys.

It is the default provider and the fallback whenever an LLM is slow or failing, so it must keep
what Agent B cannot do without: who the customer is, why they called, and every concrete fact
(`app.summaries.facts`: the items, identifiers, amounts, dates, evidence and promises of the call).
It selects sentences and shortens their wording; it never invents.

How it fits a long call into its budget (the spoken summary, SPEECH_MAX_CHARS, read whole to a
phone Agent B), in the order that loses least:
1. every sentence loses its filler, greetings and hedges and is turned to the third person
   (`app.summaries.wording`); contact details are masked (`redact.mask_contacts`);
2. sentences with no fact go; of sentences that repeat facts, the fewest that cover every fact
   are kept (the agent's typed note usually covers what the customer said at length);
3. if that is still too long, clauses without a fact go, then clauses whose facts another kept
   sentence states too;
4. only then are whole sentences dropped, the least concrete first (an item before an amount).
"""
from __future__ import annotations

import heapq
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache, partial

from app.summaries.base import (
    SPEECH_MAX_CHARS,
    TEXT_MAX_CHARS,
    ContextLine,
    StructuredSummary,
    SummaryInput,
    render_speech,
    render_text,
)
from app.summaries.facts import Fact, facts
from app.summaries.redact import mask_contacts
from app.summaries.wording import clauses, third_person, tidy

_SENTENCE_SPLIT = re.compile(r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<!\bSt\.)(?<!\bNo\.)(?<=[.!?])\s+|\n+")

IDENTIFIER = re.compile(
    r"(#\s?\w*\d\w*)"
    r"|\b(?:order|account|acct|ticket|case|invoice|reference|ref|policy|tracking|booking|reservation|"
    r"confirmation|claim|serial|member|customer id|subscription|transaction|sku|model)\b\s*(?:number|no\.?|id|#)?\s*[:#]?\s*[A-Z0-9][A-Z0-9-]{2,}"
    r"|[$€£]\s?\d[\d,]*(?:\.\d{1,2})?"
    r"|\b\d[\d,]*(?:\.\d{1,2})?\s?(?:dollars|usd|eur|euros|gbp|pounds)\b"
    r"|\b(?:error|code|status)\s*[:#]?\s*[A-Z0-9_-]*\d[A-Z0-9_-]*\b"
    r"|\b\d{3}\s+error\b"
    r"|\[card ending \d{4}\]",
    re.I,
)
PROBLEM = re.compile(
    r"\b(issue|problem|error|broken|not working|doesn'?t work|won'?t|can'?t|cannot|unable|fail(?:s|ed|ing)?|"
    r"declined|refund|charged|overcharged|double[- ]charged|billing|bill|damaged|defective|wrong|missing|"
    r"late|lost|crash(?:es|ed|ing)?|outage|down|locked|stolen|fraud|cancel|complain|dispute|404|500|"
    r"help with|calling about|wants? to|need(?:s|ed)? (?:a|to|help))\b",
    re.I,
)
TRIED = re.compile(
    r"\b(tried|attempted|already|restarted|rebooted|reset|cleared|reinstalled|re-?installed|updated|checked|"
    r"verified|confirmed|walked (?:them|her|him) through|troubleshoot(?:ed|ing)?|issued|sent|escalated|"
    r"applied|credited|refunded|replaced|ran|tested|looked up|offered)\b",
    re.I,
)
NEXT = re.compile(
    r"\b(needs?|wants?|requires?|requests?|requesting|asking|asks|would like|should|must|next|"
    r"follow[- ]up|escalat\w*|specialist|supervisor|manager|approve|approval|callback|call back|"
    r"transfer(?:ring)? to)\b",
    re.I,
)
NEGATIVE = re.compile(r"\b(angry|furious|livid|yelling|shouting|threaten\w*|lawyer|legal action)\b", re.I)
FRUSTRATED = re.compile(
    r"\b(frustrat\w*|upset|annoyed|unhappy|disappointed|fed up|irritat\w*|impatient|third time|again and again|"
    r"waited|waiting for (?:weeks|days)|complain\w*|stressed)\b",
    re.I,
)
POSITIVE = re.compile(r"\b(happy|pleased|thank(?:s|ful| you)|appreciat\w*|great|satisfied|calm|friendly)\b", re.I)
URGENT = re.compile(
    r"\b(urgent\w*|asap|immediately|right away|today|tonight|emergency|outage|down for|production|"
    r"fraud|stolen|locked out|deadline|legal|cancel (?:my|the|their) account|medical)\b",
    re.I,
)
MONEY = re.compile(r"[$€£]|\b(refund|charge\w*|billing|bill|payment|invoice|dollars|credit)\b", re.I)

# What a kind of fact is worth when not everything fits: an item named in passing is the first
# to go, an identifier or amount the last.
_WEIGHT = {"id": 5, "amount": 5, "date": 4, "promise": 4, "evidence": 4, "condition": 3, "item": 2}
_EXACT = frozenset({"id", "amount", "date", "evidence"})
_CALLING_ABOUT = re.compile(
    r"^(?:(?:they(?:'re| are)|the customer(?:'s| is)|customer(?:'s| is)|we(?:'re| are))\s+)?"
    r"(?:calling|phoning|ringing|here)\s+(?:again\s+)?(?:about|regarding|because of|for)\s+",
    re.I,
)
_TRANSFER = re.compile(r"\b(?:transferr\w*|transfer (?:you|them) to|escalat\w*|bringing in|hand(?:ing)? (?:you |them )?over)\b", re.I)


@dataclass
class _Unit:
    order: int
    customer: bool
    note: bool
    text: str
    facts: frozenset[Fact]

    @property
    def question(self) -> bool:
        return self.text.endswith("?")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _sentiment(all_text: str) -> str:
    if NEGATIVE.search(all_text):
        return "angry"
    if FRUSTRATED.search(all_text):
        return "frustrated"
    if POSITIVE.search(all_text):
        return "positive"
    return "neutral" if all_text else "unknown"


def _urgency(all_text: str) -> str:
    if URGENT.search(all_text):
        return "high"
    if MONEY.search(all_text) or NEGATIVE.search(all_text) or FRUSTRATED.search(all_text):
        return "medium"
    return "low"


def _units(lines: tuple[ContextLine, ...]) -> list[_Unit]:
    """Each sentence of the call, in order, reworded and masked, with its facts."""
    units: list[_Unit] = []
    previous = ""
    for line in lines:
        if line.source == "system":
            continue
        customer = line.author.strip().lower() == "customer"
        masked = mask_contacts(line.text, answering=previous)
        previous = line.text
        for piece in _SENTENCE_SPLIT.split(masked):
            text = third_person(tidy(piece.strip(" -•\t")), customer=customer)
            text = text[:1].upper() + text[1:]
            if len(text) >= 2:
                found = facts(text)
                if text.endswith("?"):
                    # A question states nothing about items or their state ("Was the box damaged?"
                    # is answered elsewhere); only what it names exactly counts.
                    found = frozenset(f for f in found if f.kind in _EXACT)
                units.append(_Unit(len(units), customer, line.source == "note", text, found))
    return units


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    flat = re.sub(r"[^\w$€£.:]+", " ", text.lower())
    return tuple(t.strip(".:") for t in flat.split() if t.strip(".:"))


@lru_cache(maxsize=4096)
def _phrases(text: str) -> frozenset[str]:
    """What a sentence states verbatim: its word n-grams (as fact keys are written, a plural also
    as its singular) and the whole sentence (a promise's key)."""
    tokens = _tokens(text)
    out = {" ".join(tokens)}
    for n in range(1, 5):
        for k in range(len(tokens) - n + 1):
            gram = " ".join(tokens[k : k + n])
            out.add(gram)
            if gram.endswith("s"):
                out.add(gram[:-1])
    return frozenset(out)


class _Said:
    """What the sentences kept so far state, counted so one can be taken out again cheaply."""

    def __init__(self) -> None:
        self.phrases: Counter[str] = Counter()
        self.words: Counter[str] = Counter()

    def add(self, u: _Unit) -> None:
        self.phrases.update(_phrases(u.text))
        self.words.update(set(_tokens(u.text)))

    def remove(self, u: _Unit) -> None:
        self.phrases.subtract(_phrases(u.text))
        self.words.subtract(set(_tokens(u.text)))

    def states(self, fact: Fact) -> bool:
        """An identifier, amount, date or promise verbatim; an item or state by its words
        ("linen lampshade" is stated by "the lampshade, the linen one")."""
        if fact.kind in _EXACT or fact.kind == "promise":
            return self.phrases[fact.key] > 0
        return all(self.words[w] > 0 for w in fact.key.split())


def _choose(units: list[_Unit]) -> list[_Unit]:
    """The fewest sentences that state every fact (greedy set cover, densest first), in call order.

    Density is new fact weight per character, so an agent's typed note that restates three facts
    the customer took a minute to say wins over the minute. Questions count half: "Was the box
    damaged?" states nothing the answer does not. The greedy choice is lazy (a sentence's density
    only falls as others are kept), so a long call costs n log n, not n²."""
    said = _Said()
    chosen: list[_Unit] = []
    heap = [(-_density(u, u.facts), u.order, u) for u in units if u.facts]
    heapq.heapify(heap)
    while heap:
        _stale, order, u = heapq.heappop(heap)
        new = [f for f in u.facts if not said.states(f)]
        if not new:
            continue
        score = _density(u, new)
        if heap and score < -heap[0][0]:
            heapq.heappush(heap, (-score, order, u))
            continue
        chosen.append(u)
        said.add(u)
    # Greedy cover can pick a sentence early whose facts later picks all restate: drop those,
    # the least dense first, as long as everything they said is still said by the rest.
    for u in sorted(chosen, key=lambda u: _density(u, u.facts)):
        said.remove(u)
        if all(said.states(f) for f in u.facts):
            chosen.remove(u)
        else:
            said.add(u)
    return sorted(chosen, key=lambda u: u.order)


def _density(u: _Unit, new) -> float:
    gain = sum(_WEIGHT[f.kind] for f in new)
    return gain / (len(u.text) + 40) * (0.5 if u.question else 1.0) * (1.2 if u.note else 1.0)


def _without_clauses(text: str, drop) -> str:
    kept = [c for c in clauses(text) if not drop(c)]
    return _mend(" ".join(kept)) if kept else text


def _mend(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,;")
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in ".!?" else text + "."


def _reason_text(text: str) -> str:
    text = _CALLING_ABOUT.sub("", text.strip())
    return text[:1].upper() + text[1:] if text else text


def _pack(items: list[str], max_items: int, max_chars: int = 300) -> list[str] | None:
    """At most max_items entries of at most max_chars, by joining neighbours ("a; b"); None when
    they cannot be packed that tightly (then the summary does not fit, and never loses an item
    to a cut). Few items: the shortest neighbours are joined first, which reads best; many: each
    entry is filled in turn, which is linear."""
    items = [i for i in items if i]

    def join(a: str, b: str) -> str:
        return a.rstrip(".") + "; " + b[:1].lower() + b[1:]

    if len(items) <= 4 * max_items:
        while len(items) > max_items:
            size, k = min((len(items[k]) + len(items[k + 1]), k) for k in range(len(items) - 1))
            if size + 2 > max_chars:
                return None
            items[k : k + 2] = [join(items[k], items[k + 1])]
        return items
    packed: list[str] = []
    for item in items:
        if packed and len(packed[-1]) + len(item) + 2 <= max_chars:
            packed[-1] = join(packed[-1], item)
        else:
            packed.append(item)
        if len(packed) > max_items:
            return None
    return packed


_NO_NEXT_STEP = "Continue with the customer from the details above."


def _build(name: str, chosen: list[_Unit], mood: tuple[str, str], *, tight: bool = False) -> StructuredSummary | None:
    # The reason is what the customer (or the agent's note) first says is wrong or wanted.
    opening = [u for u in chosen if (u.customer or u.note) and not u.question]
    reason_unit = next(
        (u for u in opening if PROBLEM.search(u.text) or any(f.kind == "condition" for f in u.facts)),
        opening[0] if opening else chosen[0],
    )
    rest = [u for u in chosen if u is not reason_unit]
    next_unit = next((u for u in reversed(rest) if _TRANSFER.search(u.text) and not u.customer), None)
    if next_unit is None:
        next_unit = next((u for u in reversed(rest) if NEXT.search(u.text)), None)
    rest = [u for u in rest if u is not next_unit]
    steps = [u.text for u in rest if TRIED.search(u.text) and not u.question]
    details = [u.text for u in rest if u.text not in steps]
    limit = StructuredSummary.model_fields["details"].metadata[-1].max_length
    details, steps = _pack(details, limit), _pack(steps, limit)
    if details is None or steps is None:
        return None
    return StructuredSummary(
        customer_name=_clip(name, 120),
        reason=_clip(_reason_text(reason_unit.text), 600),
        details=details,
        steps_taken=steps,
        # Under a tight budget the stock next step gives way to the call's own facts.
        next_steps=_clip(next_unit.text, 600) if next_unit else ("" if tight else _NO_NEXT_STEP),
        sentiment=mood[0],
        urgency=mood[1],
    )


def _fits(summary: StructuredSummary | None, budget: int) -> bool:
    return summary is not None and len(render_speech(summary, limit=10 * budget)) <= budget and len(render_text(summary)) <= TEXT_MAX_CHARS


def _fit(name: str, chosen: list[_Unit], mood: tuple[str, str], budget: int) -> StructuredSummary:
    """Shorten wording, then facts said twice, and only then drop facts, until the summary fits."""
    summary = _build(name, chosen, mood)
    if _fits(summary, budget):
        return summary
    build = partial(_build, name, mood=mood, tight=True)
    # 1. clauses with no fact.
    for u in chosen:
        u.text = _without_clauses(u.text, lambda c: not facts(c))
    summary = build(chosen)
    if _fits(summary, budget):
        return summary
    # 2. clauses whose every fact another kept sentence states as well, longest sentences first.
    said = _Said()
    for u in chosen:
        said.add(u)
    for u in sorted(chosen, key=lambda u: -len(u.text)):
        said.remove(u)
        u.text = _without_clauses(u.text, lambda c: all(said.states(f) for f in facts(c)))
        u.facts = facts(u.text)
        said.add(u)
    summary = build(chosen)
    if _fits(summary, budget):
        return summary
    # 3. whole sentences, the least concrete first (the opening sentence stays): the fewest that
    # make it fit, found by bisection so a long call costs log n renderings, not n.
    worth = {id(u): sum(_WEIGHT[f.kind] for f in u.facts) / (len(u.text) + 40) for u in chosen}
    victims = sorted(chosen[1:], key=lambda u: worth[id(u)])

    def without(k: int) -> StructuredSummary | None:
        gone = {id(u) for u in victims[:k]}
        return build([u for u in chosen if id(u) not in gone])

    low, high = 1, len(victims)
    while low < high:
        mid = (low + high) // 2
        if _fits(without(mid), budget):
            high = mid
        else:
            low = mid + 1
    return without(low) or _build(name, chosen[:1], mood, tight=True)


def summarize_offline(data: SummaryInput, budget: int = SPEECH_MAX_CHARS) -> StructuredSummary:
    """The summary of a call: every fact it can keep within `budget` characters of speech."""
    name = data.customer_name.strip() or "Unknown caller"
    units = _units(data.entries)
    chosen = _choose(units)
    if not chosen:
        chosen = [u for u in units if u.text][:1]
    if not chosen:
        return StructuredSummary(
            customer_name=name,
            reason="No context was captured before the transfer.",
            next_steps="Ask the customer how we can help.",
            sentiment="unknown",
            urgency="medium",
        )
    # Mood and urgency from what was said, not from "how can I help you today".
    all_text = " ".join(u.text for u in units)
    return _fit(name, chosen, (_sentiment(all_text), _urgency(all_text)), budget)


class OfflineProvider:
    name = "offline"
    model = None

    def summarize(self, data: SummaryInput, *, timeout: float) -> StructuredSummary:
        return summarize_offline(data)

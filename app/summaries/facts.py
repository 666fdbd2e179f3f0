"""What counts as a concrete fact in a line of a call, found without a language model.

Agent B can ask the customer again for a feeling, never for the order number they already gave,
the item that broke, the photos they said they have or the promise we made. So the offline
summarizer chooses lines by the facts they carry, and this module names them: identifiers,
amounts, dates and times, evidence, the state things are in (cracked, missing, denied…), promises
and the items ("the ceramic lamp") the call is about. Each fact is a short normalised key, so two
lines that state the same fact can be recognised as saying the same thing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Numbered steps ("Step 12: …") count their lines, they are not facts about the call.
_ENUMERATOR = re.compile(r"^\s*(?:step|part|point|item|line)\s*\d+\s*[:.)-]", re.I)
_TOKEN_WITH_DIGIT = re.compile(r"(?<![\w$€£])[A-Za-z]*\d[\w-]*(?:\s?(?:am|pm)\b)?|[$€£]\s?\d[\d,]*(?:\.\d{1,2})?", re.I)
_CODE = re.compile(r"\b(?=[A-Z0-9-]*[A-Z])(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,}\b")
_DATE = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tonight|tomorrow|yesterday|"
    r"this (?:morning|afternoon|evening|week)|next (?:week|month)|last (?:week|month|night)|"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december)(?:\s+\d{1,2}(?:st|nd|rd|th)?)?|"
    r"within the hour|end of (?:the )?(?:day|week|month)|month-end|before noon|"
    r"\d{1,2}(?:st|nd|rd|th)|\d+\s+(?:business\s+)?(?:minutes?|hours?|days?|weeks?|months?))\b",
    re.I,
)
_EVIDENCE = re.compile(
    r"\b(?:photos?|pictures?|screenshots?|videos?|receipts?|logs?|badge log|confirmation(?: text| email| number)?|"
    r"fax(?:ed)?|letter|quote|statement|records?|proof|report|recording|label|explanation of benefits)\b",
    re.I,
)
_CONDITION = re.compile(
    r"\b(?:cracked|crack|broken|broke|damaged?|dented|scratch(?:ed)?|leak(?:ing|s|ed)?|missing|never came|torn|"
    r"warped|wrong|defective|stained|shattered|out of stock|backorder(?:ed)?|blinking|denied|duplicate|twice|"
    r"declined|overbilled|overcharged|double[- ]charged|estimated|locked|expired|crash(?:es|ed)?|"
    r"not (?:in|on|at) the|didn'?t (?:make|arrive|come)|did not (?:make|arrive|come)|lost|stolen|late fee|"
    r"out since|outage|delayed|cancel(?:led|ed)?|disconnection|collections|blocked|misdated|noise|"
    r"can'?t|cannot|won'?t|doesn'?t work|not working|upset|frustrat\w*|stressed|third time|second time|again)\b",
    re.I,
)
# Commitments: what we (or they) will do, and when. A customer's wish is carried by its items.
_PROMISE = re.compile(
    r"\b(?:we'?ll|we will|they'?ll|will|going to|promised?|agreed|scheduled?|booked|call (?:them |you )?back|"
    r"callback|follow(?:ing)? up|escalat\w*|transferr\w*|requesting|submit(?:ted)?)\b",
    re.I,
)
_DETERMINER = r"(?:the|my|a|an|our|your|their|his|her|this|that|these|those|two|both|new|same)"
# A lookahead, so "the technician ordered a replacement drain pump" yields both phrases.
_NOUN_PHRASE = re.compile(rf"\b{_DETERMINER}\s+(?=((?:[A-Za-z][\w'-]*[,;:.!?]?\s+){{0,2}}[A-Za-z][\w'-]*))", re.I)
# Words that end a noun phrase (the verb or preposition after it) or are too general to be a fact.
_STOP = frozenset(
    ["a", "an", "the", "and", "or", "but", "so", "to", "of", "in", "on", "at", "for", "from", "with", "by", "as", "is", "was", "are", "were", "be", "been", "being", "has", "have", "had", "do", "does", "did", "it", "its", "it's", "that", "this", "which", "who", "whom", "what", "when", "where", "why", "how", "if", "then", "than", "there", "here", "just", "also", "not", "no", "yes", "can", "could", "will", "would", "should", "may", "might", "must", "shall", "came", "come", "arrived", "says", "said", "told", "says", "got", "get", "went", "go", "keeps", "keep", "kept", "took", "take", "made", "make", "left", "leave", "says", "goes", "going", "gone", "one", "ones", "them", "they", "we", "us", "you", "he", "she", "him", "her", "i", "me", "my", "our", "your", "their", "all", "any", "some", "every", "each", "about", "again", "up", "down", "out", "over", "into", "onto", "off", "too", "very", "really", "still", "only", "now", "same", "other", "another", "please", "right", "itself", "himself", "herself", "themselves", "never", "back", "well", "fine", "okay", "here", "there", "ever", "even", "yet", "already"]
)
_GENERIC = frozenset(
    ["thing", "things", "way", "time", "times", "moment", "second", "sec", "bit", "lot", "point", "question", "name", "number", "problem", "issue", "call", "phone", "line", "day", "days", "week", "month", "year", "help", "guy", "guys", "people", "someone", "something", "anything", "everything", "nothing", "kind", "sort", "whole", "first", "last", "next", "side", "end", "start", "part", "case", "account", "order", "card", "bill", "date", "reason", "team", "good", "bad", "old", "big", "small", "great", "little", "few", "nice", "real", "main"]
)


@dataclass(frozen=True)
class Fact:
    kind: str  # id | amount | date | evidence | condition | promise | item
    key: str


def _norm(text: str) -> str:
    return re.sub(r"[^\w$€£.:]+", " ", text.lower()).strip(" .")


def items(text: str) -> list[str]:
    """Noun phrases after a determiner, cut at the first function word: "the ceramic lamp",
    "my blood pressure pills" → "ceramic lamp", "blood pressure pills"."""
    found = []
    for m in _NOUN_PHRASE.finditer(text):
        words = []
        for word in m.group(1).split():
            bare = word.strip(".,;:!?'\"").lower()
            if not bare or bare in _STOP or any(ch.isdigit() for ch in bare):
                break
            if words and bare.endswith(("ly", "ed")):  # "the box itself damaged": a verb or adverb ends it
                break
            words.append(bare)
            if word[-1:] in ",;:.!?":
                break
        while words and words[-1] in _GENERIC:
            words.pop()
        if words and not all(w in _GENERIC for w in words):
            found.append(" ".join(words))
    return found


@lru_cache(maxsize=8192)  # the summarizer asks again for the same clauses while it shortens them
def facts(text: str) -> frozenset[Fact]:
    """Every concrete fact a sentence carries, as normalised keys."""
    body = _ENUMERATOR.sub("", text)
    out: set[Fact] = set()
    for m in _TOKEN_WITH_DIGIT.finditer(body):
        token = m.group(0)
        out.add(Fact("amount" if token[:1] in "$€£" else "id", _norm(token)))
    for m in _CODE.finditer(body):
        out.add(Fact("id", _norm(m.group(0))))
    for m in _DATE.finditer(body):
        out.add(Fact("date", _norm(m.group(0))))
    for m in _EVIDENCE.finditer(body):
        out.add(Fact("evidence", _norm(m.group(0)).rstrip("s")))
    for m in _CONDITION.finditer(body):
        out.add(Fact("condition", _norm(m.group(0))))
    for phrase in items(body):
        out.add(Fact("item", phrase))
    if _PROMISE.search(body) and out:
        # A promise is a fact only about something (a label, a credit, a date): its key is the
        # whole clause, so two different promises are never mistaken for one.
        out.add(Fact("promise", _norm(body)))
    return frozenset(out)

"""Shorter wording for the offline summary: what a sentence says, without how it was said.

Transcripts are full of words that carry no fact ("um", "yeah so", "like,", "I think"), of
greetings and hold chatter, and of first and second persons that mean nothing once the call is
a summary ("I have photos" — who is "I"?). The offline summarizer shortens wording with these
rules *before* it considers leaving out a line, so a fact is never dropped to make room for a
filler word. Every rule only deletes words or swaps pronouns: identifiers, amounts, dates and
nouns pass through untouched.
"""
from __future__ import annotations

import re

# Whole clauses that are only courtesy or hold chatter; a clause is what lies between commas.
_CHATTER = re.compile(
    r"^(?:(?:hi|hello|hey|good (?:morning|afternoon|evening)|morning|afternoon|evening)(?: there)?(?: \w+)?"
    r"|(?:thank you|thanks)(?: (?:so|very) much)?(?: for (?:calling|holding|waiting|your patience)[\w .&'-]*)?"
    r"|(?:you'?re )?(?:speaking with|this is|my name is|it'?s) [A-Z]\w*(?: speaking)?"
    r"|[A-Z]\w* speaking|how (?:can|may) (?:i|we) help(?: you)?(?: today)?|can you hear me(?: okay)?"
    r"|(?:are you )?still there|one (?:moment|sec(?:ond)?)(?: please)?|bear with me(?: one moment)?(?: please)?"
    r"|(?:please )?hold on|let me (?:just )?(?:pull that up|look|check|see|find the card)(?: one moment)?(?: please)?"
    r"|sorry for the wait|(?:no )?(?:problem|worries)|go (?:on|ahead)|of course|sure|great|perfect|got it|noted"
    r"|(?:okay|ok|yes|yeah|yep|right|sorry|so|well|hmm|um+|uh+|oh|ugh|and|also)"
    r"|i (?:understand|see)|(?:i'?m )?(?:so |really )?sorry(?: to hear that| about that)?|(?:oh )?thank god"
    r"|where do i start|(?:sorry )?one more thing)[.!?]*$",
    re.I,
)
# Words that carry no fact wherever they stand. "like" only when set off by commas ("with, like,
# twenty IDs"), so "I would like a refund" keeps it.
_FILLER = re.compile(
    r"(?:^|(?<=[\s,;]))(?:um+|uh+|erm+|er|hmm+|ah|ugh|you know|i mean|kind of|sort of|basically|honestly|"
    r"literally|actually|i think|i guess|i believe|yeah so|okay so|ok so|so yeah|yeah|yep|okay|ok|oh|^well)"
    r"(?=$|[\s,;.!?])[,]?",
    re.I,
)
_ASIDE = re.compile(
    r",\s*(?:um+|uh+|erm+|er|hmm+|like|you know|i mean|kind of|sort of|basically|honestly|i think|i guess|"
    r"i believe|yeah|okay|ok|well|so)\s*,",
    re.I,
)
_LIKE = re.compile(r",\s*like,|^like,\s*", re.I)
_LEADING = re.compile(r"^(?:(?:so|and|but|right|sorry|also|yes|no|just|then)\b[,]?\s*)+", re.I)
_REPEAT = re.compile(r"\b([\w']+)(?:[,.]?\s+\1\b)+", re.I)

# Pronouns, seen from the summary's side: the customer becomes "they", the agent "we", and each
# one's "you" is the other.
_CUSTOMER = [
    (r"\bI'm\b", "they're"), (r"\bI am\b", "they are"), (r"\bI was\b", "they were"), (r"\bI've\b", "they've"),
    (r"\bI'll\b", "they'll"), (r"\bI'd\b", "they'd"), (r"\bI\b", "they"), (r"\bmyself\b", "themselves"),
    (r"\bmy\b", "their"), (r"\bmine\b", "theirs"), (r"\bme\b", "them"),
    (r"\byou guys\b", "us"), (r"\byour\b", "our"), (r"\byou'll\b", "we'll"), (r"\byou're\b", "we're"),
    (r"\byou've\b", "we've"),
]
_AGENT = [
    (r"\bI'm\b", "we're"), (r"\bI am\b", "we are"), (r"\bI was\b", "we were"), (r"\bI've\b", "we've"),
    (r"\bI'll\b", "we'll"), (r"\bI'd\b", "we'd"), (r"\bI\b", "we"), (r"\bmyself\b", "ourselves"),
    (r"\bmy\b", "our"), (r"\bme\b", "us"),
    (r"\byour\b", "their"), (r"\byou'll\b", "they'll"), (r"\byou're\b", "they're"), (r"\byou've\b", "they've"),
    (r"\byou'd\b", "they'd"), (r"\byourself\b", "themselves"),
]
# "you" is a subject (they/we) at the start of a clause or before a verb-like word, else an object.
_YOU_SUBJECT = re.compile(
    r"(?P<pre>^|[,;:] |\b(?:and|so|if|when|that|but|because|then|can|could|will|would|do|did|are|were|have|should) )you\b"
    r"|\byou(?= (?:can|could|will|would|should|must|may|might|need|have|had|get|got|are|were|did|do|don'?t|"
    r"won'?t|can'?t|paid|bought|took|sent|said|told|clearly|still|already|just|also)\b)",
    re.I,
)


def _swap(text: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        flags = 0 if pattern.startswith(r"\bI") else re.I  # "I" is only ever the pronoun in capitals
        text = re.sub(pattern, lambda m, r=repl: _case(m.group(0), r), text, flags=flags)
    return text


def _case(found: str, repl: str) -> str:
    return repl[:1].upper() + repl[1:] if found[:1].isupper() and found not in {"I", "I'm", "I've", "I'll", "I'd"} else repl


def third_person(text: str, *, customer: bool) -> str:
    """The sentence as Agent B should read it: "I have photos" from the customer is "they have
    photos"; "I'll email you" from the agent is "we'll email them"."""
    subject, obj, rules = ("we", "us", _CUSTOMER) if customer else ("they", "them", _AGENT)
    text = _YOU_SUBJECT.sub(lambda m: (m.group("pre") or "") + _case(m.group(0)[len(m.group("pre") or ""):], subject), text)
    text = _swap(text, rules)
    return re.sub(r"\byou\b", obj, text, flags=re.I)


def clauses(sentence: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<=[,;])\s+|\s+[—–]\s+", sentence) if c.strip()]


def is_chatter(clause: str) -> bool:
    return bool(_CHATTER.match(clause.strip(" ,;")))


def _punctuate(text: str) -> str:
    text = re.sub(r"\s+([,.;!?])", r"\1", text)
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = re.sub(r"[,;]+([.!?])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip(" ,;")


def tidy(text: str) -> str:
    """Fillers, hedges, repeated words and courtesy clauses out; punctuation and capitals mended."""
    # A filler set off by commas takes both with it: "a refund, I think, for order 1" → "a refund for order 1".
    text = _ASIDE.sub(" ", text)
    text = _LIKE.sub(",", text)
    text = _FILLER.sub("", text)
    text = _REPEAT.sub(r"\1", _punctuate(text))
    kept = [c for c in clauses(text) if not is_chatter(c)]
    text = _punctuate(" ".join(kept))
    text = _LEADING.sub("", text).strip(" ,;")
    if text and text[-1] in ",;":
        text = text[:-1]
    return text[:1].upper() + text[1:] if text else ""

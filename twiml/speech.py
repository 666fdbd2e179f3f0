"""Text for Twilio `<Say>`: cleaned for text-to-speech and split under Twilio's length limit.

Twilio documents (warning 13521) that `<Say>` text is limited to 4096 UTF-8 single-byte
characters for basic voices, 3000 for Amazon Polly, 5000 for Google, and that the URL-encoded
string may not exceed 4500 characters. SAY_MAX_BYTES is chosen so that one chunk is under all of
these at once, whatever the text: 1000 UTF-8 bytes is a third of Polly's limit, and even if every
byte were percent-encoded (3 characters each) the encoded form is 3000 < 4500.

Text is always passed to the library as element text, never formatted into markup: the library
escapes `&`, `<` and `>`. Cleaning is about what the listener hears (and about characters XML 1.0
cannot carry at all), not about escaping.
"""
from __future__ import annotations

import re
import unicodedata

from twilio.twiml import TwiML

from twiml.common import Voice

SAY_MAX_BYTES = 1000

# Markdown/markup punctuation an LLM emits ("**bold**", "# Heading", "`code`", "<b>") that TTS
# would read aloud as "asterisk asterisk". Replaced by a space so the words either side survive.
_MARKUP = frozenset("<>{}[]\\|^`~*#")
# Symbols (category So) that TTS reads well; every other So/Sk is emoji or dingbat noise.
_SPOKEN_SYMBOLS = frozenset("°©®")
# Replaced by a space: emoji and pictographs (So), modifier symbols such as skin tones (Sk).
_SPACE_CATEGORIES = frozenset({"So", "Sk"})
# Removed outright, because they sit inside words: format characters (zero-width joiners, bidi
# overrides used for spoofing, tag characters), surrogates (unencodable), private-use,
# unassigned code points (includes U+FFFE/U+FFFF, which XML forbids), enclosing marks (keycaps).
_DROP_CATEGORIES = frozenset({"Cf", "Cs", "Co", "Cn", "Me"})
_WHITESPACE = re.compile(r"\s+")
# A sentence ends at . ! ? or an ellipsis followed by space, or at a CJK full stop (no space).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?\u2026])\s+|(?<=[\u3002\uff01\uff1f])")


def _is_variation_selector(ch: str) -> bool:
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def _clean_char(ch: str) -> str:
    if ch in _MARKUP or ch.isspace():
        return " "
    category = unicodedata.category(ch)
    if category == "Cc" or category in _DROP_CATEGORIES or _is_variation_selector(ch):
        return ""
    if category in _SPACE_CATEGORIES and ch not in _SPOKEN_SYMBOLS:
        return " "
    return ch


def clean_for_speech(text: str) -> str:
    """Return `text` as TTS should read it, on one line with single spaces.

    NFKC first folds look-alikes (full-width `＜`, ligatures, non-breaking spaces) into the plain
    characters the rules below recognise. Letters, digits and ordinary punctuation (including
    `&`, quotes, `@`, `$`, `%`) are kept; see the module constants for what goes.
    """
    if not isinstance(text, str):
        raise TypeError(f"speech text must be str, not {type(text).__name__}")
    normalized = unicodedata.normalize("NFKC", text)
    cleaned = "".join(_clean_char(ch) for ch in normalized)
    return _WHITESPACE.sub(" ", cleaned).strip()


def _size(text: str) -> int:
    # surrogatepass: never crash on uncleaned input; a lone surrogate counts as its 3 bytes.
    return len(text.encode("utf-8", "surrogatepass"))


def _hard_split(word: str, max_bytes: int) -> list[str]:
    """Cut a word with no spaces (a URL, CJK text) at character boundaries under max_bytes."""
    parts, current, current_size = [], [], 0
    for ch in word:
        ch_size = _size(ch)
        if current and current_size + ch_size > max_bytes:
            parts.append("".join(current))
            current, current_size = [], 0
        current.append(ch)
        current_size += ch_size
    if current:
        parts.append("".join(current))
    return parts


def _pieces(text: str, max_bytes: int):
    """Yield sentences; a sentence too long for one `<Say>` is yielded word by word."""
    for sentence in _SENTENCE_BREAK.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if _size(sentence) <= max_bytes:
            yield sentence
            continue
        for word in sentence.split(" "):
            if _size(word) <= max_bytes:
                yield word
            else:
                yield from _hard_split(word, max_bytes)


def split_for_say(text: str, max_bytes: int = SAY_MAX_BYTES) -> list[str]:
    """Split `text` into chunks of at most `max_bytes` UTF-8 bytes for consecutive `<Say>`s.

    Chunks break between sentences where possible, else between words, else (a single
    over-long word) between characters. Joining the chunks with single spaces gives back the
    whitespace-normalised text, except that a hard split or CJK sentence break gains a space.
    """
    if max_bytes < 4:  # one UTF-8 character can take 4 bytes; anything less cannot progress
        raise ValueError("max_bytes must be at least 4")
    normalized = _WHITESPACE.sub(" ", text).strip()
    chunks: list[str] = []
    current = ""
    for piece in _pieces(normalized, max_bytes):
        candidate = " ".join((current, piece)) if current else piece
        if _size(candidate) <= max_bytes:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def add_speech(parent: TwiML, text: str, voice: Voice) -> int:
    """Append cleaned `text` to `parent` as one `<Say>` per chunk; return how many were added.

    Empty text adds nothing: an empty `<Say>` is Twilio warning 13520.
    """
    chunks = split_for_say(clean_for_speech(text))
    for chunk in chunks:
        parent.say(chunk, voice=voice.voice, language=voice.language)
    return len(chunks)

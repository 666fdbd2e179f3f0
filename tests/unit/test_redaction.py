"""Redaction of numbers as people give them: any separators, spoken digits, split utterances;
and what must survive it: order numbers, phone numbers, dates, amounts, everyday words."""
from __future__ import annotations

import random

import pytest

from app.summaries.redact import luhn_ok, mentions_digits, redact, redact_across

SPOKEN_CARD = "four one one one one one one one one one one one one one one one"


@pytest.mark.parametrize(
    "text",
    [
        "Order #5521 and #5522 both arrived late.",
        "Order 4111111111111112 is not a card: the checksum fails.",
        "Order 1234 5678 9012 3456 is not a card either.",
        "Call me on +1 415 555 0123 after five.",
        "Or on (415) 555-0123, or +44 20 7183 8750 at the office.",
        "It was delivered on 2024-01-15 at 10:30, or 15/01/2024 10:30:45 by their clock.",
        "She was charged $1,234.56 twice, then € 2.500,00.",
        "I have one or two things to ask.",
        "Two kids, one dog, and a refund of three hundred dollars.",
        "Call back at five o'clock.",
        "Ticket 123456789 was opened yesterday.",
        "Neither 000-12-3456 nor 666-12-3456 nor 123-00-4567 nor 123-45-0000 is an SSN.",
        "ssn 912-34-5678 is not a valid area.",
        "Read me one two three four five six seven eight nine, the ticket number.",
        "Tracking 1Z999AA10123456784 shows a delay.",
        "Request id 123e4567-e89b-12d3-a456-426614174000 failed from 192.168.100.200.",
        "[card ending 1111] 2222 3333 4444",
    ],
)
def test_lookalikes_survive(text):
    assert redact(text) == text


def test_the_16_digit_lookalikes_really_fail_luhn():
    assert not luhn_ok("4111111111111112") and not luhn_ok("1234567890123456")


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("card 4111.1111.1111.1111 ok", "card [card ending 1111] ok"),
        ("card 4111  1111  1111  1111 ok", "card [card ending 1111] ok"),
        ("card 4111/1111/1111/1111", "card [card ending 1111]"),
        ("card no:-4111111111111111", "card no:-[card ending 1111]"),
        ("card 4111\t1111\t1111\t1111", "card [card ending 1111]"),
        ("card 4111-1111.1111 1111", "card [card ending 1111]"),
        ("card 4111, 1111, 1111, 1111.", "card [card ending 1111]."),
        ("card 4111 1111 1111 1111 12/27 123", "card [card ending 1111] 12/27 123"),
        ("ssn 123.45.6789", "ssn [SSN redacted]"),
        ("ssn 123 45 6789", "ssn [SSN redacted]"),
        ("ssn 123456789", "ssn [SSN redacted]"),
        ("123 45 6789", "[SSN redacted]"),
        ("tax id 123 456 789", "tax id [SSN redacted]"),
        (f"Sure, it's {SPOKEN_CARD}, thanks", "Sure, it's [card ending 1111], thanks"),
        ("five five zero zero oh oh five five five five five five five five five nine", "[card ending 5559]"),
        ("double five double oh double zero double five double five double five double five five nine", "[card ending 5559]"),
        ("four one one one, triple one one, one one one one, double one one one", "[card ending 1111]"),
        ("4111 one one one one one one one one one one one one", "[card ending 1111]"),
        ("Oh, four one one one one one one one one one one one one one one one.", "Oh, [card ending 1111]."),
        ("my social is one two three four five six seven eight nine ok", "my social is [SSN redacted] ok"),
        ("the security code is one two three", "the security code is [redacted]"),
        ("card ４１１１ １１１１ １１１１ １１１１", "card [card ending 1111]"),
    ],
)
def test_numbers_as_people_give_them(raw, expected):
    assert redact(raw) == expected


def test_a_number_split_across_utterances_is_redacted_in_each_part():
    assert redact_across(["My card is 4111 1111.", "1111 1111."]) == ["My card is [redacted].", "[card ending 1111]."]
    assert redact_across(["4111", "1111 1111", "1111 thanks"]) == ["[redacted]", "[redacted]", "[card ending 1111] thanks"]
    assert redact_across(["my social security number is", "one two three four five six seven eight nine"]) == [
        "my social security number is",
        "[SSN redacted]",
    ]
    assert redact_across(["my security code is", "123."]) == ["my security code is", "[redacted]."]


def test_utterances_without_a_split_number_come_back_as_redact_makes_them():
    parts = ["Order 5521 please.", "My card is 4111 1111 1111 1111.", "Call me on +1 415 555 0123."]
    assert redact_across(parts) == [redact(p) for p in parts]
    assert redact_across(["", ""]) == ["", ""]


def test_mentions_digits():
    assert mentions_digits("4111") and mentions_digits("it's four") and not mentions_digits("Hello, I need help.")


def _random_texts(n: int) -> list[str]:
    """Seeded, so a failure reproduces: numbers, spoken digits, keywords, markers and glue, run
    together the ways that once broke idempotence (a marker next to a word, next to digits)."""
    atoms = [
        "4111", "1111", "4111111111111111", "5500005555555559", "378282246310005", "123", "45", "6789", "12",
        "5", "0", "-", ".", "/", " ", "  ", ", ", "\t", "\n", ":", "'", "_", "[", "]", "one", "four", "nine",
        "zero", "oh", "o", "double", "triple", "ssn", "social", "tin", "cvv", "security code is", "exp",
        "09/27", "AB 12 34 56 C", "AB", "C", "x", "card", "[card ending 1111]", "[redacted]", "[SSN redacted]",
        "\ud800", "٤١١١", "４",
    ]
    rng = random.Random(20240601)
    return ["".join(rng.choice(atoms) + rng.choice(("", "", " ")) for _ in range(rng.randint(1, 16))) for _ in range(n)]


def test_redact_is_idempotent():
    for text in _random_texts(3000):
        once = redact(text)
        assert redact(once) == once, (text, once)


def test_split_redaction_is_idempotent_and_never_less_than_redact():
    for text in _random_texts(500):
        half = len(text) // 2
        parts = redact_across([redact(text[:half]), text[half:]])
        assert all(redact(p) == p for p in parts), (text, parts)


@pytest.mark.parametrize("text", ["\ud800", "\udfff card 4111 1111 1111 1111 \ud800", "four\ud800one", "", "\x00" * 5, "\U0010ffff" * 3])
def test_any_string_is_redacted_without_error(text):
    assert redact(redact(text)) == redact(text)
    assert len(redact_across([text, text])) == 2


@pytest.mark.parametrize(
    "text",
    [
        " ".join(["one"] * 700)[:2000],
        " ".join(["4111"] * 400)[:2000],
        "1" * 2000,
        ("Customer called about order 5521 and wants a refund of $120.50. " * 40)[:2000],
    ],
    ids=["spoken", "groups", "one-long-number", "prose"],
)
def test_a_long_utterance_is_redacted(text):
    once = redact(text)
    assert isinstance(once, str) and redact(once) == once

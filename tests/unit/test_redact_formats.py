"""Redaction, format by format: every card length from 13 to 19 digits and just outside it, every
keyword that announces a security code, an expiry date or an SSN, every separator an SSN may be
written with, the National Insurance number's letters and its forbidden prefixes, every spoken
digit word, and the limits (how far apart digit groups may be, how far back an SSN's keyword may
be). Complements test_redaction.py, which has the lookalikes and the idempotence properties."""
from __future__ import annotations

import pytest

from app.summaries.redact import luhn_ok, mentions_digits, redact, redact_across

NINO = "[national ID redacted]"
SSN = "[SSN redacted]"

# -- cards --------------------------------------------------------------------------------------------
CARDS = {
    13: "4222222222222",  # the shortest Visa
    15: "378282246310005",  # American Express
    16: "4012888888881881",
    19: "4111111111111111110",  # the longest a card number may be
}


@pytest.mark.parametrize("length,card", sorted(CARDS.items()))
def test_every_card_length_from_13_to_19(length, card):
    assert len(card) == length and luhn_ok(card)
    assert redact(f"card {card} thanks") == f"card [card ending {card[-4:]}] thanks"


@pytest.mark.parametrize(
    "number",
    [
        "500000000009",  # 12 digits that pass Luhn: too short for a card
        "30000000000000000004",  # 20 digits that pass Luhn: too long
        "04111111111111111",  # leading zero: no card starts with 0 (and it leaves the Luhn sum alone)
        "04222222222222",
    ],
)
def test_luhn_numbers_that_are_not_cards(number):
    assert luhn_ok(number)
    assert redact(f"ref {number}") == f"ref {number}"


def test_a_19_digit_card_in_groups_and_the_longest_stretch_wins():
    assert redact("4111 1111 1111 1111 110") == "[card ending 1110]"
    # A 16-digit card followed by a group that would make it 19 digits failing Luhn: the 16 go.
    assert redact("4111 1111 1111 1111 123") == "[card ending 1111] 123"


def test_digit_groups_join_across_at_most_four_characters():
    assert redact("4111 -- 1111 -- 1111 -- 1111") == "[card ending 1111]"
    assert redact("4111 --- 1111 --- 1111 --- 1111") == "4111 --- 1111 --- 1111 --- 1111"
    assert redact("4111 and 1111 1111 1111") == "4111 and 1111 1111 1111"  # words keep numbers apart


def test_digits_in_other_scripts():
    assert redact("٤١١١ ١١١١ ١١١١ ١١١١") == "[card ending 1111]"


@pytest.mark.parametrize(
    "digits,ok",
    [("79927398713", True), ("79927398710", False), ("0", True), ("18", True), ("81", False), ("59", True),
     ("4111111111111111", True), ("4111111111111112", False), ("4222222222222", True), ("4222222222223", False)],
)
def test_luhn(digits, ok):
    assert luhn_ok(digits) is ok


# -- keywords -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("keyword", ["cvv", "CVV2", "cvc", "cvc2", "csc", "security code", "card code"])
@pytest.mark.parametrize("sep", [" ", ": ", " is ", " was ", "=", " number "])
def test_security_code_keywords(keyword, sep):
    assert redact(f"{keyword}{sep}123") == f"{keyword}{sep}[redacted]"
    assert redact(f"{keyword}{sep}1234") == f"{keyword}{sep}[redacted]"
    # The keyword's rule takes the 3 or 4 digits after it; what follows is judged on its own.
    assert redact(f"{keyword}{sep}123 45 6789") == f"{keyword}{sep}[redacted] 45 6789"


def test_a_security_code_is_three_or_four_digits():
    assert redact("cvv 12") == "cvv 12"
    assert redact("cvv 12345") == "cvv 12345"
    assert redact("the security code is one two") == "the security code is one two"
    assert redact("the card code is one two three four") == "the card code is [redacted]"
    assert redact("the security code is one two three four five") == "the security code is [redacted] five"
    assert redact("the code is 123") == "the code is 123"  # "code" alone announces nothing
    assert redact("cvv was: 123") == "cvv was: [redacted]"


@pytest.mark.parametrize(
    "keyword",
    ["exp", "expiry", "expiration", "expires", "exp date", "expiry date", "expiration date", "valid thru", "valid through", "EXP"],
)
@pytest.mark.parametrize("sep", [" ", " is ", " was ", ": ", "=", " on "])
def test_expiry_keywords(keyword, sep):
    assert redact(f"{keyword}{sep}09/27") == f"{keyword}{sep}[redacted]"


@pytest.mark.parametrize(
    "date,redacted",
    [
        ("9/27", True), ("09/27", True), ("10/27", True), ("12/2027", True), ("1 - 30", True), ("11-2030", True),
        ("13/27", False), ("00/27", False), ("0/27", False), ("12/7", False),
    ],
)
def test_expiry_months_and_years(date, redacted):
    assert redact(f"exp {date}") == ("exp [redacted]" if redacted else f"exp {date}")


def test_expiry_needs_its_keyword():
    assert redact("delivered 09/27") == "delivered 09/27"
    assert redact("reexp 09/27") == "reexp 09/27"


@pytest.mark.parametrize(
    "keyword",
    ["ssn", "SSN", "social security", "social security number", "social", "tax id", "tin"],
)
def test_ssn_keywords_make_nine_bare_digits_an_ssn(keyword):
    assert redact(f"my {keyword} is 123456789") == f"my {keyword} is {SSN}"
    assert redact(f"my {keyword} is 1234 56789") == f"my {keyword} is {SSN}"


def test_nine_digits_without_a_keyword_are_not_an_ssn():
    assert redact("ticket 123456789") == "ticket 123456789"
    assert redact("tinned 123456789") == "tinned 123456789"  # a keyword is a whole word
    assert redact("my ssn is 666123456") == "my ssn is 666123456"  # not a possible SSN


def test_an_ssn_keyword_counts_within_40_characters():
    gap = " " + "x" * 35 + " "  # "ssn" + gap is 40 characters
    assert redact(f"ssn{gap}123456789") == f"ssn{gap}{SSN}"
    assert redact(f"ssn{gap} 123456789") == f"ssn{gap} 123456789"


def test_an_ssn_keyword_is_looked_for_in_the_text_as_already_redacted():
    # Before redaction the keyword is 47 characters back; after the card became its marker, 30.
    text = "ssn 4111 1111 1111 1111 1111 111 x, then 123456789"
    assert redact("social four one one one one one one one one one one one one one one one, and 123456789") == \
        f"social [card ending 1111], and {SSN}"
    assert redact(text) == redact(redact(text))


@pytest.mark.parametrize("sep", ["-", ".", " ", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212"])
def test_ssn_written_in_its_own_format(sep):
    assert redact(f"it is 123{sep}45{sep}6789 ok") == f"it is {SSN} ok"


@pytest.mark.parametrize("text", ["123/45/6789", "123 - 45 - 6789", "123--45--6789", "1234-5-6789", "12-345-6789"])
def test_other_ssn_shapes_need_a_keyword(text):
    assert redact(text) == text


def test_spoken_digits_are_not_an_ssn_format():
    assert redact("triple one double two 3456") == "triple one double two 3456"
    assert redact("ssn triple one double two 3456") == f"ssn {SSN}"


@pytest.mark.parametrize(
    "area,group,serial,plausible",
    [("123", "45", "6789", True), ("000", "45", "6789", False), ("666", "45", "6789", False), ("900", "45", "6789", False),
     ("899", "45", "6789", True), ("123", "00", "6789", False), ("123", "45", "0000", False), ("665", "01", "0001", True)],
)
def test_ssn_plausibility(area, group, serial, plausible):
    written = f"{area}-{group}-{serial}"
    assert redact(written) == (SSN if plausible else written)
    bare = f"ssn {area}{group}{serial}"
    assert redact(bare) == (f"ssn {SSN}" if plausible else bare)


# -- National Insurance numbers ---------------------------------------------------------------------
@pytest.mark.parametrize("nino", ["AB 12 34 56 C", "AB123456C", "ab 12 34 56 d", "CE123456A", "TW 98 76 54 B", "ZY123456D", "OA123456A"])
def test_nino_redacted(nino):
    assert redact(f"my NI number is {nino}.") == f"my NI number is {NINO}."


@pytest.mark.parametrize("prefix", ["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"])
def test_nino_forbidden_prefixes_are_not_ninos(prefix):
    assert redact(f"{prefix} 12 34 56 A") == f"{prefix} 12 34 56 A"
    assert redact(f"{prefix}123456B") == f"{prefix}123456B"


@pytest.mark.parametrize(
    "text",
    [
        "DA123456A", "FA123456A", "IA123456A", "QA123456A", "UA123456A", "VA123456A",  # first letter never D F I Q U V
        "AD123456A", "AO123456A", "AQ123456A",  # second letter never D F I O Q U V
        "AB123456E",  # the suffix is A to D
        "XAB123456C", "AB123456CD", "AB123456C2",  # part of a longer word
    ],
)
def test_nino_lookalikes(text):
    assert NINO not in redact(text)


# -- spoken digits ------------------------------------------------------------------------------------
SAY = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine"}


@pytest.mark.parametrize("card", ["4012888888881881", "378282246310005", "6011000990139424", "5105105105105100", "3566002020360505", "4222222222222"])
def test_spoken_cards_every_digit_word(card):
    spoken = " ".join(SAY[d] for d in card)
    assert redact(f"it's {spoken}.") == f"it's [card ending {card[-4:]}]."
    assert redact(f"it's {spoken.upper()}.") == f"it's [card ending {card[-4:]}]."


@pytest.mark.parametrize("zero", ["zero", "oh", "o", "0"])
def test_every_way_to_say_zero_in_a_number(zero):
    spoken = " ".join(zero if d == "0" else SAY[d] for d in "5105105105105100")
    assert redact(spoken) == "[card ending 5100]"


def test_double_and_triple():
    assert redact("four double one one, triple one one, one one one one, double one one one") == "[card ending 1111]"
    assert redact("four double 1 one, triple-1 one, one one one one, double\t1 one one") == "[card ending 1111]"
    assert redact("four doubleone one one one") == "four doubleone one one one"


def test_spoken_words_that_are_not_digits():
    assert redact("o'clock, ten to one, one o'clock") == "o'clock, ten to one, one o'clock"
    assert not mentions_digits("none of them, someone, often, phone")
    assert mentions_digits("O") and mentions_digits("double nine") and mentions_digits("٣")


# -- across utterances ----------------------------------------------------------------------------------
def test_redact_across_marks_each_share_and_keeps_punctuation():
    assert redact_across(["card is 4111 1111 1111,", "- 1111 ok"]) == ["card is [redacted],", "- [card ending 1111] ok"]
    assert redact_across(["one", "4111 1111 1111 1111"]) == ["one", "[card ending 1111]"]
    assert redact_across(["x", "4111 1111", "1111 1111", "done"]) == ["x", "[redacted]", "[card ending 1111]", "done"]
    assert redact_across(["cvv", "123"]) == ["cvv", "[redacted]"]
    assert redact_across([]) == []


# -- the rules' edges, found by mutation testing ------------------------------------------------------
@pytest.mark.parametrize("keyword", ["cvv", "cvv2", "cvc", "cvc2", "csc", "security code", "card code"])
@pytest.mark.parametrize("sep", [" ", " is ", " was ", " number ", ": ", " is number "])
def test_spoken_security_codes_after_every_keyword(keyword, sep):
    assert redact(f"the {keyword}{sep}one two three") == f"the {keyword}{sep}[redacted]"


def test_digits_glued_to_a_word_are_an_identifier_on_either_side():
    assert redact("x4111 1111 1111 1111") == "x4111 1111 1111 1111"
    assert redact("4111 1111 1111 1111x") == "4111 1111 1111 1111x"
    assert redact("4111 1111 1111 1111 ok") == "[card ending 1111] ok"


def test_an_ssn_format_followed_by_more_digits():
    assert redact("123-45-6789 12") == f"{SSN} 12"


def test_nine_digits_after_a_keyword_grouped_otherwise_are_still_checked():
    assert redact("ssn 12345 0000") == "ssn 12345 0000"  # serial 0000: never issued
    assert redact("ssn 1234 00 789") == f"ssn {SSN}"


def test_redact_across_shares_start_and_end_on_digits():
    assert redact_across(["card is 4111 1111 1111", "-1111 ok"]) == ["card is [redacted]", "-[card ending 1111] ok"]
    # A part with no digit of its own inside a number keeps its punctuation and gets no marker.
    assert redact_across(["4111 1111 1111", ",", "1111 ok"]) == ["[redacted]", ",", "[card ending 1111] ok"]

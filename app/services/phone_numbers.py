"""Phone numbers: parsed with libphonenumber (`phonenumbers`), not a regex, and refused where
dialling them is how toll fraud makes money.

Every number the app stores or dials goes through `normalise` (valid, E.164), and every number
it dials also through `refusal`: premium-rate, shared-cost, UAN and personal numbers, and the
international non-geographic codes (global services and satellite networks: +881 Iridium/Globalstar,
+882/+883 international networks, +870 Inmarsat, +808 shared cost, +979 premium) are never
called, whatever TRANSFER_ALLOWED_PREFIXES says. A stolen agent session is otherwise a way to
place paid calls that read a customer's summary to whoever answers.
"""
from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from app.errors import ValidationFailed

REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.UAN: "a universal access number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (follow-me) number",
}
# Country calling codes that are not countries (ITU-T E.164 "global services" and networks).
REFUSED_CODES = {
    870: "an Inmarsat satellite number",
    881: "a satellite phone number",
    882: "an international network number",
    883: "an international network number",
    808: "an international shared-cost number",
    979: "an international premium-rate number",
}
MAX_INPUT = 32


def normalise(text: str, what: str = "phone") -> str:
    """The number in E.164 (`+14155550100`), or ValidationFailed: it must carry its country code
    and be a number that can exist (libphonenumber's `is_valid_number`)."""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise ValidationFailed(f"{what} must be a phone number in international form, e.g. +14155550100.", code="invalid_phone_number")
    try:
        number = phonenumbers.parse(text, None)
    except NumberParseException:
        raise ValidationFailed(f"{what} must be a phone number in international form, e.g. +14155550100.", code="invalid_phone_number") from None
    if number.country_code in REFUSED_CODES:
        raise number_not_allowed(what, REFUSED_CODES[number.country_code])
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(f"{what} is not a valid phone number.", code="invalid_phone_number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def refusal(e164: str) -> str | None:
    """Why this (normalised) number must never be dialled, or None."""
    number = phonenumbers.parse(e164, None)
    if number.country_code in REFUSED_CODES:
        return REFUSED_CODES[number.country_code]
    return REFUSED_TYPES.get(phonenumbers.number_type(number))


def dialable(text: str, what: str = "to_phone") -> str:
    """Normalised, and refused with 422 `number_not_allowed` if it is a kind never dialled."""
    e164 = normalise(text, what)
    why = refusal(e164)
    if why is not None:
        raise number_not_allowed(what, why)
    return e164


def caller_id(text: str | None) -> str | None:
    """A caller's number as Twilio reports it, normalised, or None (withheld, anonymous, junk)."""
    try:
        return normalise(text or "")
    except ValidationFailed:
        return None


def number_not_allowed(what: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"{what} is {why}; phone transfers never dial those.", code="number_not_allowed")

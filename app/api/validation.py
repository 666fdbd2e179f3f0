"""Strict JSON body parsing for the API: the shape is declared next to each route.

Unknown fields are rejected rather than ignored, so a client typo (`sesion_id`) is a clear 422
instead of a confusing "missing field" or, worse, silently dropped data. Two things valid JSON
can carry that nothing downstream can handle are refused before anything looks at the body:
nesting deeper than MAX_DEPTH (a recursive validator or serializer would overflow the stack),
lone UTF-16 surrogates (`"\ud800"`: no UTF-8 encoding exists, so the database, the log and
the LLM client would each fail on them) and NUL characters (PostgreSQL text cannot store them).
`check_request_text` does the same for paths and query strings.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Request

from app import logs
from app.errors import BadRequest, ValidationFailed


@dataclass(frozen=True)
class Field:
    kind: type = str
    required: bool = True
    max_len: int | None = None
    nullable: bool = False


MAX_DEPTH = 16


def nesting_depth(raw: bytes) -> int:
    """How deeply the JSON text nests arrays and objects, read without parsing (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def parse_json(request: Request, schema: dict[str, Field]) -> dict:
    body = _parse_json(request, schema)
    # What the request is about, for its log lines (the API's session_id names a call).
    logs.bind(**{field: body.get(name) for name, field in _LOGGED_IDS.items() if isinstance(body.get(name), str)})
    return body


# Body fields that name what a request is about, and the log context field each one fills.
_LOGGED_IDS = {"session_id": "call_id", "transfer_id": "transfer_id"}


def _parse_json(request: Request, schema: dict[str, Field]) -> dict:
    if not request.is_json:
        raise BadRequest("Send a JSON object with Content-Type: application/json.", code="invalid_json")
    raw = request.get_data(cache=True) or b"null"
    if nesting_depth(raw) > MAX_DEPTH:
        raise BadRequest(f"The body is nested too deeply (more than {MAX_DEPTH} levels).", code="invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"The body is not valid JSON: {err}.", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("The body is nested too deeply.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    return validate(body, schema)


def validate(body: dict, schema: dict[str, Field]) -> dict:
    unknown = sorted(set(body) - set(schema))
    if unknown:
        raise ValidationFailed(f"Unknown field(s): {', '.join(unknown)}.")
    out: dict = {}
    for name, spec in schema.items():
        if name not in body or (body[name] is None and not spec.nullable):
            if spec.required:
                raise ValidationFailed(f"Missing required field: {name}.")
            out[name] = None
            continue
        value = body[name]
        if value is None:
            out[name] = None
            continue
        # bool is a subclass of int; a JSON true is never a valid number or string here.
        if isinstance(value, bool) and spec.kind is not bool or not isinstance(value, spec.kind):
            raise ValidationFailed(f"Field {name} must be a {_kind_name(spec.kind)}.")
        _check_text(value, name)
        if isinstance(value, str):
            value = value.strip()
            if not value:
                if spec.required:
                    raise ValidationFailed(f"Field {name} must not be empty.")
                out[name] = None  # an empty optional field means "not given"
                continue
            if spec.max_len is not None and len(value) > spec.max_len:
                raise ValidationFailed(f"Field {name} is too long (at most {spec.max_len} characters).", code="too_long")
        out[name] = value
    return out


def _check_text(value, name: str) -> None:
    """Every string in `value` (nested ones too) must be encodable Unicode."""
    if isinstance(value, str):
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            raise ValidationFailed(f"Field {name} contains characters that are not valid Unicode (a lone surrogate).", code="invalid_text")
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL (and nothing a person types contains one).
            raise ValidationFailed(f"Field {name} contains a NUL character.", code="invalid_text")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, name)
            _check_text(item, name)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, name)


def check_request_text(path: str, args) -> None:
    """The URL's own text (ids in the path, query values), refused as a body's strings are."""
    _check_text(path, "path")
    for key, values in args.lists():
        _check_text(key, "query")
        _check_text(values, key)


def _kind_name(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", dict: "object", list: "list"}.get(kind, kind.__name__)


ID = Field(str, max_len=64)


MAX_EVENT_ID = 2**31 - 1


def event_id(raw: str | None, name: str) -> int | None:
    """An event id from a query parameter or the Last-Event-ID header; None when absent."""
    if raw is None or raw == "":
        return None
    # ASCII digits only ("²" and "١٢" are digits to str.isdigit), and no larger than the events
    # table's id column can hold (a 32-bit integer on PostgreSQL).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_EVENT_ID:
        raise ValidationFailed(f"{name} must be an event id: an integer from 0 to {MAX_EVENT_ID}.")
    return int(raw)


def only_params(args, allowed: set[str] | frozenset[str]) -> None:
    """Refuse query parameters a route does not know (a typo must not be silently ignored)."""
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ValidationFailed(f"Unknown query parameter(s): {', '.join(unknown)}.")

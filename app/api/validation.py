"""Strict JSON body parsing for the API: the shape is declared next to each route.

Unknown fields are rejected rather than ignored, so a client typo (`sesion_id`) is a clear 422
instead of a confusing "missing field" or, worse, silently dropped data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Request

from app.errors import BadRequest, ValidationFailed


@dataclass(frozen=True)
class Field:
    kind: type = str
    required: bool = True
    max_len: int | None = None
    nullable: bool = False


def parse_json(request: Request, schema: dict[str, Field]) -> dict:
    if not request.is_json:
        raise BadRequest("Send a JSON object with Content-Type: application/json.", code="invalid_json")
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
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


def _kind_name(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", dict: "object", list: "list"}.get(kind, kind.__name__)


ID = Field(str, max_len=64)

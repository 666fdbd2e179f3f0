"""Checking responses against the OpenAPI description: `SpecChecker` validates one response by
path, method and status; `ResponseRecorder` collects every problem over a run. Used by
tests/contract/test_openapi.py and, with WT_OPENAPI_RECORD=1, by tests/conftest.py for every
response of the whole suite (a helper module, so no test code imports a test module)."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.api.openapi import build_spec

SPEC_URI = "urn:wt:openapi"


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: `/calls/<session_id>` -> `/calls/{session_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _absolute_refs(node):
    """Local `#/...` refs made absolute, so any part of the spec validates on its own."""
    if isinstance(node, dict):
        return {k: (SPEC_URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else _absolute_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_refs(v) for v in node]
    return node


class SpecChecker:
    """Checks one response against the spec by method, path and status."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.absolute = _absolute_refs(spec)
        self.registry = Registry().with_resource(SPEC_URI, Resource.from_contents(self.absolute, default_specification=DRAFT202012))
        assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers, "install rfc3339-validator: date-time would go unchecked"
        self._templates = []
        for template, item in spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            # Literal paths before templated ones, so /api/calls never loses to /api/calls/{id}.
            self._templates.append((template.count("{"), template, re.compile(pattern), item))
        self._templates.sort(key=lambda t: (t[0], t[1]))

    def operation(self, method: str, path: str) -> tuple[str | None, dict | None]:
        for _params, template, pattern, item in self._templates:
            if pattern.match(path):
                return template, item.get(method.lower())
        return None, None

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            target = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def problems(self, method: str, path: str, status: int, headers, body: bytes | None) -> tuple[str, list[str]]:
        """(the operation's label, what is wrong with this response); body None = not read (a stream)."""
        if method == "OPTIONS":
            return f"OPTIONS {path}", []  # Flask answers it for every route; not described (see the spec)
        if method == "HEAD":
            method, body = "GET", None  # HEAD is GET without a body
        template, op = self.operation(method, path)
        if template is None:
            if path.startswith("/static/"):
                return "static", []  # the documented exclusion
            # A route that does not exist: the generic 404 (also checked below).
            op, label = {"responses": {"404": {"$ref": "#/components/responses/NotFound"}}}, f"{method} (no route)"
        elif op is None:
            op, label = {"responses": {"405": {"$ref": "#/components/responses/MethodNotAllowed"}}}, f"{method} {template} (no such method)"
        else:
            label = f"{method} {template}"
        response = op["responses"].get(str(status))
        if response is None:
            return label, [f"status {status} is not documented"]
        response = self._resolve(response)
        found = []
        for name, header in response.get("headers", {}).items():
            header = self._resolve(header)
            if header.get("required") and name not in headers:
                found.append(f"{status}: required header {name} is missing")
        content = response.get("content")
        mimetype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if not content:
            if body:
                found.append(f"{status}: a body where none is documented")
            return label, found
        if mimetype not in content:
            return label, found + [f"{status}: content type {mimetype!r} is not one of {sorted(content)}"]
        if mimetype == "application/json" and body is not None:
            schema = _absolute_refs(content[mimetype]["schema"])
            validator = Draft202012Validator(schema, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
            try:
                document = json.loads(body)
            except ValueError as err:
                return label, found + [f"{status}: not JSON ({err})"]
            for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))[:3]:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                found.append(f"{status}: at {where}: {error.message[:300]}")
        return label, found


class ResponseRecorder:
    """Every response the Flask test client returns, checked against the spec as it arrives."""

    def __init__(self, spec: dict | None = None):
        self.checker = SpecChecker(spec or build_spec())
        self.seen: set[tuple[str, int]] = set()
        self.failures: dict[tuple[str, str], int] = {}

    def record(self, response) -> None:
        request = response.request
        streaming = response.mimetype == "text/event-stream"
        body = None if streaming else response.get_data()
        label, problems = self.checker.problems(request.method, request.path, response.status_code, response.headers, body)
        self.seen.add((label, response.status_code))
        for problem in problems:
            key = (label, problem)
            self.failures[key] = self.failures.get(key, 0) + 1

    @contextmanager
    def installed(self):
        """Record through every FlaskClient while inside (the patch is undone on the way out)."""
        original = FlaskClient.open
        recorder = self

        def open_and_record(client, *args, **kwargs):
            response = original(client, *args, **kwargs)
            recorder.record(response)
            return response

        FlaskClient.open = open_and_record
        try:
            yield self
        finally:
            FlaskClient.open = original

    def report(self) -> str:
        return "\n".join(f"{label}: {problem} (x{count})" for (label, problem), count in sorted(self.failures.items()))

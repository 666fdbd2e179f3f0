"""Every event type the server can emit is declared in the wire contract, with the payload keys it
is sent with, and the browser's event feed (static/js/lib/feed.js) listens to each one.

The server side is read two ways: the contract (app.protocol.EVENTS) and the code itself, every
`emit(...)` call under app/ found with `ast`, so a type emitted without being declared fails here
rather than in production (emit raises on it). The browser side is run, not pattern-matched:
feed.js is imported in Node with a recording EventSource, so the check sees exactly the
listeners it installs. (Before the contract, feed.js kept its own list without
`transfer_bridged`: SSE clients dropped it while polling delivered it.)
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from app import protocol, states

ROOT = Path(__file__).resolve().parents[2]
FEED_JS = ROOT / "static" / "js" / "lib" / "feed.js"


# -- the server: every emit(...) in app/ ---------------------------------------------------------
def _emit_calls():
    """(module path, enclosing function, call node) for every `emit(...)` under app/."""
    for path in sorted((ROOT / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        seen: set[int] = set()
        # Innermost function first, so a call is reported once, with the function it is in.
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for fn in reversed(functions):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "emit" and id(node) not in seen:
                    seen.add(id(node))
                    yield path.relative_to(ROOT), fn, tree, node


def _types_of(expr: ast.expr) -> set[str]:
    """The event types an emit's second argument can be."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    # `states.FAILURE_EVENT_TYPE[outcome]`: any value of that table.
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "FAILURE_EVENT_TYPE":
        return set(states.FAILURE_EVENT_TYPE.values())
    raise AssertionError(f"cannot tell which event type {ast.unparse(expr)!r} is; emit a literal or extend this test")


def _literal_keys(d: ast.Dict) -> tuple[set[str], bool]:
    """String keys of a dict display, and whether it also spreads something (`**x`)."""
    keys = {k.value for k in d.keys if isinstance(k, ast.Constant)}
    return keys, any(k is None for k in d.keys)


def _payload_keys(fn, tree, expr: ast.expr) -> tuple[set[str], set[str], bool] | None:
    """(keys always sent, keys sometimes added, spreads) of an emit's payload, when readable."""
    if isinstance(expr, ast.Dict):
        keys, spread = _literal_keys(expr)
        return keys, set(), spread
    if isinstance(expr, ast.Name):
        base = None
        added: set[str] = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id == expr.id:
                    if isinstance(node.value, ast.Dict):
                        base = _literal_keys(node.value)
                    elif isinstance(node.value, ast.Call):
                        base = _returned_keys(tree, node.value)
                elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == expr.id
                      and isinstance(target.slice, ast.Constant)):
                    added.add(target.slice.value)
        if base is not None:
            return base[0], added, base[1]
    if isinstance(expr, ast.Call):
        base = _returned_keys(tree, expr)
        if base is not None:
            return base[0], set(), base[1]
    return None


def _returned_keys(tree, call: ast.Call):
    """Keys of the dict display a module-level helper returns (e.g. routing.assigned_payload)."""
    if not isinstance(call.func, ast.Name):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == call.func.id:
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                    return _literal_keys(ret.value)
    return None


def _emitted() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, _fn, _tree, call in _emit_calls():
        assert len(call.args) >= 3, f"{path}:{call.lineno}: emit(session, type, payload, ...)"
        for type_ in _types_of(call.args[1]):
            found.setdefault(type_, []).append(f"{path}:{call.lineno}")
    return found


def test_the_scan_finds_the_emitters():
    found = _emitted()
    # A scan that silently found nothing would prove nothing.
    assert len(found) >= 15 and "transfer_bridged" in found and "context_added" in found


def test_every_emitted_type_is_declared():
    undeclared = {t: where for t, where in _emitted().items() if t not in protocol.EVENT_TYPES}
    assert not undeclared, f"emitted but not in app.protocol.EVENTS: {undeclared}"


def test_every_declared_type_is_emitted_somewhere():
    unused = protocol.EVENT_TYPES - set(_emitted())
    assert not unused, f"declared in app.protocol.EVENTS but never emitted: {sorted(unused)}"


def test_payload_keys_match_the_contract():
    problems = []
    for path, fn, tree, call in _emit_calls():
        read = _payload_keys(fn, tree, call.args[2])
        if read is None:
            problems.append(f"{path}:{call.lineno}: cannot read the payload {ast.unparse(call.args[2])!r}")
            continue
        always, added, spread = read
        for type_ in _types_of(call.args[1]):
            spec = protocol.EVENTS[type_]
            if stray := (always | added) - spec.all_keys:
                problems.append(f"{path}:{call.lineno}: {type_} sends undeclared keys {sorted(stray)}")
            if not spread and (missing := spec.keys - always):
                problems.append(f"{path}:{call.lineno}: {type_} lacks keys the contract says are always sent: {sorted(missing)}")
    assert not problems, "\n".join(problems)


# -- the browser: what feed.js listens to --------------------------------------------------------
LISTEN_SCRIPT = """
const listened = new Set();
class FakeEventSource {
  static CLOSED = 2;
  constructor() { this.readyState = 0; }
  addEventListener(type) { listened.add(type); }
  close() {}
}
globalThis.EventSource = FakeEventSource;
const { EventFeed } = await import(%s);
const feed = new EventFeed({
  api: { get: async () => ({ notifications: [] }) }, agentId: 'a', since: 0,
  onEvent() {}, onSynced() {}, onMode() {}, onAuthLost() {},
});
feed.start();
feed.stop();
console.log(JSON.stringify([...listened].sort()));
"""


def _feed_listens_to(feed_js: Path) -> set[str]:
    script = LISTEN_SCRIPT % json.dumps(feed_js.as_uri())
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_browser_feed_listens_to_every_event_type():
    listened = _feed_listens_to(FEED_JS)
    emitted = set(_emitted())
    missing = (protocol.EVENT_TYPES | emitted) - listened
    assert not missing, f"static/js/lib/feed.js does not listen to {sorted(missing)}: SSE would drop them"
    assert protocol.STREAM_READY_EVENT in listened

"""The layers of docs/architecture.md §11 hold: no module imports from a layer after its own.

Read from the source with `ast` (imports inside functions count too), so a back-edge fails here
before it becomes a cycle someone has to untangle."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, ...]] = [
    # 1. pure core
    ("app.states", "app.protocol", "app.protocol_js", "app.config", "app.errors", "app.summaries.base", "app.summaries.offline",
     "app.summaries.prompt", "app.summaries.redact", "app.summaries.facts", "app.summaries.wording", "app.summaries.team_match", "app.logs", "twiml", "app.metrics"),
    # 2. persistence
    ("app.models", "app.db", "app.db_deadline", "app.repo", "app.outbox", "app.events", "app.event_ids", "app.ratelimit", "app.serializers", "app.metrics_export"),
    # 3. gateways
    ("app.gateways", "app.summaries.llm", "app.summaries.summarizer", "app.audio"),
    # 4. services
    ("app.services",),
    # 5. delivery
    ("app.event_dispatcher", "app.sse", "app.customer_sse", "app.floor_sse", "app.worker"),
    # 6. edges
    ("app.api", "app.twilio_webhooks", "app.livekit_webhooks", "app.pages", "app.cli", "app.current", "app.metrics_web", "app.request_logs", "app"),
]
# The documented exception: build_services wires the process's dispatcher into the container.
ALLOWED = {("app.services", "app.event_dispatcher")}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        for index, members in enumerate(LAYERS):
            if prefix in members:
                return index
    return None


def modules():
    for path in sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("twiml/*.py")]):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def imported(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_every_module_has_a_layer():
    assert [name for name, _ in modules() if layer_of(name) is None] == []


def test_no_module_imports_from_a_later_layer():
    back_edges = set()
    for name, path in modules():
        mine = layer_of(name)
        for target in imported(path):
            if not target.startswith(("app.", "twiml")) or target == "app":
                continue
            theirs = layer_of(target)
            allowed = any(name == who and (target == what or target.startswith(what + ".")) for who, what in ALLOWED)
            if theirs is not None and theirs > mine and not allowed:
                back_edges.add(f"{name} (layer {mine + 1}) imports {target} (layer {theirs + 1})")
    assert sorted(back_edges) == []

#!/usr/bin/env python3
"""Mutation testing of the core pure modules against their own unit tests (`make mutation`).

Why not mutmut: mutmut 3 mutates only inside functions (it swaps each function for a trampoline),
so the tables these modules are made of (the state machines' edges, CALL_TERMINAL, the phone-leg
ranking, the redaction patterns) are never mutated, and it needs its configuration in
pyproject.toml or setup.cfg and a copy of the project in `mutants/`. This runner is small and
does what we need: it parses a module, applies one AST mutation at a time, and runs that
module's unit tests against the mutant.

Mutations: comparison swaps (== !=, < <=, > >=, in / not in, is / is not), and / or, arithmetic
and augmented-assignment swaps, `not` and unary minus removed, conditions (if, while, ternary,
comprehension filters) negated, integers n -> n+1, True <-> False, strings "s" -> "XXsXX",
each member removed from a set / list / tuple / dict literal, one alternative removed from each
`a|b` in a regular expression, `return x` -> `return None`, a bare call statement removed,
break <-> continue. Docstrings, annotations, f-strings and imports are left alone.

Each mutant runs in a forked child: the parent has already imported the third-party packages,
the child forgets the project's modules, installs the mutant in place of the module (an import
hook, so nothing on disk changes) and runs pytest `-x -q -p no:randomly` on the module's unit
tests. A failing test or a timeout kills the mutant. Nothing is written to the work tree.

    .venv/bin/python scripts/mutation.py                  # every module below
    .venv/bin/python scripts/mutation.py app/states.py    # one module
    .venv/bin/python scripts/mutation.py --survivors ...  # also print the surviving mutants
"""
from __future__ import annotations

import argparse
import ast
import copy
import glob
import importlib.abc
import importlib.machinery
import os
import re
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The modules under test and the unit test files (globs) that are theirs, fastest first (the run
# stops at the first failure). To add a module, add one line.
MODULES: dict[str, list[str]] = {
    "app/states.py": ["tests/unit/test_states_*.py", "tests/unit/test_states.py"],
    "app/summaries/redact.py": ["tests/unit/test_redact_*.py", "tests/unit/test_redaction.py"],
    "app/services/transfer_rules.py": ["tests/unit/test_transfer_rules*.py"],
    "twiml/sip.py": ["tests/unit/test_sip_*.py", "tests/unit/test_twiml.py"],
    "app/protocol.py": ["tests/unit/test_protocol_table.py", "tests/unit/test_protocol.py", "tests/unit/test_protocol_js.py"],
}
PROJECT_PACKAGES = ("app", "twiml", "tests")
# Imported (after the mutant is in place) before the tests, as the root conftest, skipped in the
# children, and every entry point do.
PRELOAD = ("app",)
THRESHOLD = 90.0

# -- mutation operators ---------------------------------------------------------------------------
_CMP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
        ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
        ast.Mod: ast.Div, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr, ast.Pow: ast.Mult}
_REGEX_CALLS = {"compile", "match", "search", "fullmatch", "sub", "findall", "finditer", "split"}


def _skipped(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, f-string parts, imports."""
    skip: set[int] = set()

    def drop(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                drop(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            drop(node.returns)
            for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs + [node.args.vararg, node.args.kwarg]:
                if a is not None:
                    drop(a.annotation)
        elif isinstance(node, ast.AnnAssign):
            drop(node.annotation)
        elif isinstance(node, (ast.JoinedStr, ast.Import, ast.ImportFrom)):
            drop(node)
    return skip


def _regex_strings(tree: ast.AST) -> set[int]:
    """ids of string constants that are regular expressions (arguments of re.compile & co.)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _REGEX_CALLS \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args:
            found.update(id(n) for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return found


def _alternatives(pattern: str) -> list[tuple[str, str]]:
    """Each `|` alternative of a regular expression removed in turn (rough, but safe: a pattern
    that no longer compiles is simply not a mutant)."""
    out = []
    depth_starts: list[int] = [0]  # start of the current alternative at each depth
    bars: list[list[int]] = [[]]
    groups: list[tuple[int, int, list[int]]] = []  # (content start, content end, bar positions)
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif c == "(":
            start = i + 1
            if pattern[start : start + 1] == "?":
                m = re.match(r"\?(?::|=|!|<=|<!|P<\w+>|<\w+>|[aiLmsux-]+:)", pattern[start:])
                if m:
                    start += m.end()
            depth_starts.append(start)
            bars.append([])
        elif c == ")" and len(depth_starts) > 1:
            groups.append((depth_starts.pop(), i, bars.pop()))
        elif c == "|":
            bars[-1].append(i)
        i += 1
    groups.append((depth_starts[0], len(pattern), bars[0]))
    for start, end, bs in groups:
        if not bs:
            continue
        cuts = [start - 1] + bs + [end]
        for k in range(len(cuts) - 1):
            lo, hi = cuts[k] + 1, cuts[k + 1]
            alt = pattern[lo:hi]
            # Remove the alternative and one of the bars next to it.
            mutated = pattern[: lo - 1] + pattern[hi:] if k > 0 else pattern[:lo] + pattern[hi + 1 :]
            try:
                re.compile(mutated)
            except re.error:
                continue
            out.append((f"regex alternative {alt!r} removed", mutated))
    return out


def _drop(items: list, k: int) -> None:
    del items[k]


def _variants(node: ast.AST, regexes: set[int]) -> list[tuple[str, ast.AST]]:
    """(description, replacement node) for every mutation of this node."""
    out: list[tuple[str, ast.AST]] = []

    def alt(desc: str, change) -> None:
        new = copy.deepcopy(node)
        result = change(new)
        out.append((desc, result if result is not None else new))

    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            if type(op) in _CMP:
                alt(f"{type(op).__name__} -> {_CMP[type(op)].__name__}", lambda n, k=k, op=op: n.ops.__setitem__(k, _CMP[type(op)]()))
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        alt(f"{type(node.op).__name__} -> {other.__name__}", lambda n: setattr(n, "op", other()))
    elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BIN:
        alt(f"{type(node.op).__name__} -> {_BIN[type(node.op)].__name__}", lambda n: setattr(n, "op", _BIN[type(n.op)]()))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        alt(f"{type(node.op).__name__} removed", lambda n: n.operand)
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            alt(f"{v} -> {not v}", lambda n: setattr(n, "value", not v))
        elif isinstance(v, (int, float)):
            alt(f"{v} -> {v + 1}", lambda n: setattr(n, "value", v + 1))
        elif isinstance(v, str):
            if id(node) in regexes:
                for desc, pattern in _alternatives(v):
                    alt(desc, lambda n, p=pattern: setattr(n, "value", p))
            alt(f"string {v[:30]!r} -> 'XX…XX'", lambda n: setattr(n, "value", "XX" + v + "XX"))
    elif isinstance(node, (ast.Set, ast.List, ast.Tuple)) and isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
        for k, elt in enumerate(node.elts):
            alt(f"{type(node).__name__.lower()} member {ast.unparse(elt)[:40]} removed", lambda n, k=k: _drop(n.elts, k))
    elif isinstance(node, ast.Dict):
        for k, key in enumerate(node.keys):
            label = ast.unparse(key)[:40] if key is not None else "**" + ast.unparse(node.values[k])[:37]
            alt(f"dict entry {label} removed", lambda n, k=k: _drop(n.keys, k) or _drop(n.values, k))
    elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
        alt(f"{type(node).__name__.lower()} condition negated", lambda n: setattr(n, "test", ast.UnaryOp(ast.Not(), n.test)))
    elif isinstance(node, ast.comprehension):
        for k in range(len(node.ifs)):
            alt("comprehension filter negated", lambda n, k=k: n.ifs.__setitem__(k, ast.UnaryOp(ast.Not(), n.ifs[k])))
    elif isinstance(node, ast.Return) and node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
        alt("return value -> None", lambda n: setattr(n, "value", ast.Constant(None)))
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        alt(f"call {ast.unparse(node.value.func)[:40]}() removed", lambda n: ast.Pass())
    elif isinstance(node, ast.Break):
        alt("break -> continue", lambda n: ast.Continue())
    elif isinstance(node, ast.Continue):
        alt("continue -> break", lambda n: ast.Break())
    return out


class _Apply(ast.NodeTransformer):
    """Replace the node with pre-order number `target` by its `variant`-th mutation."""

    def __init__(self, target: int, variant: int):
        self.target, self.variant, self.count = target, variant, -1
        self.description = ""

    def visit(self, node):
        self.count += 1
        if self.count == self.target:
            desc, new = _variants(node, self.regexes)[self.variant]
            self.description = desc
            return ast.copy_location(new, node)
        return self.generic_visit(node)


def _numbered(tree: ast.AST):
    """Nodes in the pre-order NodeTransformer visits them, with the line of each (or of the
    nearest enclosing node that has one)."""
    out = []

    def walk(node, line):
        line = getattr(node, "lineno", line)
        out.append((node, line))
        for _field, value in ast.iter_fields(node):
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        walk(item, line)
            elif isinstance(value, ast.AST):
                walk(value, line)

    walk(tree, 0)
    return out


def mutants(source: str):
    """(line, description, mutated source) for every mutant of `source`."""
    tree = ast.parse(source)
    skip, regexes = _skipped(tree), _regex_strings(tree)
    original = ast.unparse(tree)
    seen = {original}
    for index, (node, line) in enumerate(_numbered(tree)):
        if id(node) in skip:
            continue
        for variant in range(len(_variants(node, regexes))):
            fresh = ast.parse(source)
            applier = _Apply(index, variant)
            applier.regexes = _regex_strings(fresh)
            mutated = ast.fix_missing_locations(applier.visit(fresh))
            try:
                text = ast.unparse(mutated)
                compile(text, "<mutant>", "exec")
            except (SyntaxError, ValueError, TypeError):
                continue
            if text in seen:
                continue  # e.g. the same tuple member removed twice
            seen.add(text)
            yield line, applier.description, text


# -- running the tests ----------------------------------------------------------------------------
class _MutantLoader(importlib.abc.Loader):
    def __init__(self, code, path: str):
        self.code, self.path = code, path

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__file__ = self.path
        exec(self.code, module.__dict__)


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, code, path: str):
        self.name, self.code, self.path = name, code, path

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        spec.loader = _MutantLoader(self.code, self.path)
        return spec


def _forget_project() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]


def _start(module: str, source: str | None, tests: list[str]) -> int:
    """Fork a child that runs the module's tests against `source` (None: the module as is)."""
    pid = os.fork()
    if pid == 0:  # the child
        rc = 3
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            # Plugins are not auto-loaded (schemathesis' alone doubles a child's start-up); the
            # unit tests need only hypothesis'.
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
            _forget_project()
            if source is not None:
                name = module[:-3].replace("/", ".")
                path = str(ROOT / module)
                sys.meta_path.insert(0, _MutantFinder(name, compile(source, path, "exec"), path))
            for name in PRELOAD:
                __import__(name)
            import pytest
            from hypothesis import Phase, settings

            # Reproducible, and no shrinking: a failing example kills the mutant, its minimal
            # form is of no interest here (shrinking is what takes long).
            settings.register_profile("mutation", database=None, derandomize=True, deadline=None,
                                      phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False)
            settings.load_profile("mutation")
            # --noconftest: unit tests use only pytest's own fixtures, and the root conftest
            # would import the whole app into every child.
            rc = pytest.main(["-x", "-q", "--noconftest", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "_hypothesis_pytestplugin", *tests])
        finally:
            os._exit(int(rc))
    return pid


def _poll(pid: int, deadline: float) -> str | None:
    """'passed', 'failed', 'timeout', or None while the child still runs."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
    if time.monotonic() > deadline:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return "timeout"
    return None


def _run(module: str, source: str | None, tests: list[str], timeout: float) -> str:
    pid, deadline = _start(module, source, tests), time.monotonic() + timeout
    while (result := _poll(pid, deadline)) is None:
        time.sleep(0.02)
    return result


def _run_all(module: str, sources: list[str], tests: list[str], timeout: float, jobs: int) -> list[str]:
    """The result for each source, at most `jobs` children at a time."""
    results: list[str] = [""] * len(sources)
    running: dict[int, tuple[int, float]] = {}  # pid: (index, deadline)
    todo = iter(range(len(sources)))
    more = True
    try:
        while more or running:
            while more and len(running) < jobs:
                k = next(todo, None)
                if k is None:
                    more = False
                    break
                running[_start(module, sources[k], tests)] = (k, time.monotonic() + timeout)
            for pid, (k, deadline) in list(running.items()):
                result = _poll(pid, deadline)
                if result is not None:
                    results[k] = result
                    del running[pid]
            time.sleep(0.02)
    finally:
        for pid in running:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return results


def _tests_for(module: str) -> list[str]:
    found: list[str] = []
    for pattern in MODULES[module]:
        for path in sorted(glob.glob(str(ROOT / pattern))):
            rel = os.path.relpath(path, ROOT)
            if rel not in found:
                found.append(rel)
    return found


def score(module: str, *, show_survivors: bool, jobs: int = 1, out=sys.stdout) -> tuple[int, int] | None:
    path = ROOT / module
    if not path.exists():
        print(f"{module}: not present, skipped", file=out, flush=True)
        return None
    tests = _tests_for(module)
    if not tests:
        print(f"{module}: no unit tests match {MODULES[module]}", file=out, flush=True)
    source = path.read_text()
    started = time.monotonic()
    if tests and _run(module, None, tests, timeout=300) != "passed":
        print(f"{module}: its tests fail without any mutation; fix them first ({' '.join(tests)})", file=out, flush=True)
        return None
    baseline = time.monotonic() - started
    timeout = max(10.0, 10 * baseline)
    found = list(mutants(source))
    results = _run_all(module, [text for _, _, text in found], tests, timeout, jobs) if tests else ["passed"] * len(found)
    survivors = [(line, desc) for (line, desc, _), result in zip(found, results, strict=True) if result == "passed"]
    total = len(found)
    killed = total - len(survivors)
    pct = 100.0 * killed / total if total else 100.0
    print(f"{module:34} {pct:5.1f} %  ({killed}/{total} killed, {time.monotonic() - started:.0f} s)"
          f"{'' if pct >= THRESHOLD else '  BELOW ' + str(THRESHOLD) + ' %'}", file=out, flush=True)
    if show_survivors:
        for line, desc in survivors:
            print(f"    survived  {module}:{line}  {desc}", file=out, flush=True)
    return killed, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--survivors", action="store_true", help="list the mutants that survived")
    parser.add_argument("--list", action="store_true", help="only list the mutants, run nothing")
    parser.add_argument("--tests", nargs="+", help="run these test files instead of the module's own (one module)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="mutants tested at once (default 1: the machine is shared)")
    parser.add_argument("--fail-under", type=float, default=None, help="exit 1 if a module scores below this")
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULES)
    for m in modules:
        if m not in MODULES:
            parser.error(f"{m} is not in MODULES ({', '.join(MODULES)})")
    if args.tests is not None:
        if len(modules) != 1:
            parser.error("--tests needs exactly one module")
        MODULES[modules[0]] = args.tests
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    if args.list:
        for m in modules:
            if (ROOT / m).exists():
                for line, desc, _ in mutants((ROOT / m).read_text()):
                    print(f"{m}:{line}  {desc}")
        return 0
    # Import the third-party packages once, here: every child starts with them loaded (and then
    # forgets the project's own modules, so the mutant is what they import).
    import hypothesis  # noqa: F401
    import pytest  # noqa: F401

    for name in PRELOAD:
        __import__(name)
    for m in modules:
        for name in [m] + _tests_for(m) if (ROOT / m).exists() else []:
            try:
                __import__(name[:-3].replace("/", "."))
            except Exception:  # noqa: BLE001 - a broken test module shows up in the baseline run
                pass
    _forget_project()
    below = False
    for m in modules:
        result = score(m, show_survivors=args.survivors, jobs=max(1, args.jobs))
        if result and args.fail_under is not None and result[1] and 100.0 * result[0] / result[1] < args.fail_under:
            below = True
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())

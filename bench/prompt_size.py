"""LLM prompt size against call length: it must grow at most linearly, then stop at the budget.

Builds the exact messages the providers send for calls of growing length (realistic lines, with
identifiers sprinkled in) and prints the estimated prompt tokens and the lines kept and elided.

Usage: .venv/bin/python -m bench.prompt_size
"""
from __future__ import annotations

import time

from app.summaries.base import ContextLine, SummaryInput
from app.summaries.prompt import DEFAULT_CONTEXT_BUDGET_TOKENS, build_messages, estimate_tokens, select_context


def context(lines: int) -> SummaryInput:
    entries = []
    for i in range(lines):
        if i % 25 == 0:
            text = f"Order #{10000 + i} was charged ${i % 90 + 10}.99 twice on card ending {1000 + i % 9000}."
        else:
            text = f"Customer explains step {i}: the app shows a spinner after login and nothing else happens."
        entries.append(ContextLine("customer" if i % 2 else "agent-a", "transcript", text))
    return SummaryInput("Jane Doe", tuple(entries))


def main() -> None:
    print(f"context budget: {DEFAULT_CONTEXT_BUDGET_TOKENS} tokens (estimate: characters / 4)")
    print(f"{'lines':>7} {'prompt tokens':>14} {'kept':>6} {'elided':>7} {'build ms':>9}")
    for n in (0, 10, 50, 100, 200, 400, 800, 1600, 3200, 6400):
        data = context(n)
        started = time.perf_counter()
        messages = build_messages(data)
        elapsed = (time.perf_counter() - started) * 1000
        tokens = sum(estimate_tokens(m["content"]) for m in messages)
        chosen = select_context(data)
        print(f"{n:>7} {tokens:>14} {len(chosen.lines):>6} {chosen.elided_lines:>7} {elapsed:>9.1f}")


if __name__ == "__main__":
    main()

"""Run the configured provider under a hard time budget; fall back to offline, never fail.

A transfer must not fail or stall because an LLM did. The provider runs on a small thread pool;
if it raises or overruns the budget, the offline summary is used and marked `degraded` with the
reason, and the (possibly still running) provider call is abandoned.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from app import metrics
from app.summaries.base import ProviderError, SummaryInput, SummaryProvider, SummaryResult, finish
from app.summaries.offline import OfflineProvider, summarize_offline
from app.summaries.team_match import settle

log = logging.getLogger(__name__)


class Summarizer:
    def __init__(self, provider: SummaryProvider, *, max_workers: int = 4):
        self.provider = provider
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="summary")

    @property
    def is_offline(self) -> bool:
        return isinstance(self.provider, OfflineProvider)

    def summarize(self, data: SummaryInput, budget_s: float) -> SummaryResult:
        started = time.perf_counter()
        provider = metrics.closed(self.provider.name, metrics.LLM_PROVIDERS)

        def observe(outcome: str) -> None:
            metrics.LLM_SECONDS.labels(provider, outcome).observe(time.perf_counter() - started)

        if self.is_offline:
            result = finish(settle(summarize_offline(data), data, offline=True), "offline", None)
            observe("ok")
            return result
        future = self._pool.submit(self.provider.summarize, data, timeout=budget_s)
        try:
            structured = future.result(timeout=budget_s)
        except FutureTimeout:
            future.cancel()
            observe("timeout")  # the budget ran out: the offline summary stands in
            reason = f"{self.provider.name} did not answer within {budget_s:g}s"
        except ProviderError as err:
            observe("error")
            log.warning("summary provider %s failed: %s", self.provider.name, err)
            reason = f"{self.provider.name}: {str(err)[:220]}"
        except Exception as err:  # a provider bug must not fail a transfer; it is logged and reported
            observe("error")
            log.exception("summary provider %s crashed", self.provider.name)
            reason = f"{self.provider.name} failed: {type(err).__name__}: {str(err)[:160]}"
        else:
            observe("ok")
            return finish(settle(structured, data, offline=False), self.provider.name, self.provider.model)
        return finish(settle(summarize_offline(data), data, offline=True), "offline", None, degraded=True, reason=reason)


def build_provider(settings) -> SummaryProvider:
    """Pick the provider named by LLM_PROVIDER (auto: Groq key, else OpenAI key, else offline)."""
    choice = settings.LLM_PROVIDER
    if choice == "auto":
        # A self-hosted OpenAI-compatible server is an explicit choice, so it wins over vendor keys.
        choice = (
            "openai" if settings.LLM_BASE_URL
            else "groq" if settings.GROQ_API_KEY
            else "openai" if settings.OPENAI_API_KEY
            else "offline"
        )
    if choice == "offline":
        return OfflineProvider()
    from app.summaries.llm import build_llm_provider

    return build_llm_provider(choice, settings)

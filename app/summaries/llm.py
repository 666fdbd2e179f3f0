"""LLM summary providers: Groq, OpenAI, and any OpenAI-compatible server, behind SummaryProvider.

All three speak the chat-completions API, so one class drives them; what differs is the SDK client,
the default model and how structured output is requested:

- OpenAI: `json_schema` with `strict: true` (constrained decoding, supported since gpt-4o-mini);
  `json_object` for the older gpt-3.5/gpt-4 models that lack it.
- Groq: `json_object` (JSON mode, available on every Groq model) for the default
  llama-3.3-70b-versatile, which does not support `json_schema`; `json_schema` strict for
  openai/gpt-oss-*, best-effort for the Llama 4 and Kimi K2 models Groq lists as supporting it.
- OpenAI-compatible servers: `json_object`, the one mode vLLM, Ollama, llama.cpp and most hosted
  gateways all accept.

Whatever was requested, the answer is parsed defensively and validated with StructuredSummary.

Retries: the SDKs' own retry is off (`max_retries=0`) because it sleeps for a server's
Retry-After (up to 60 s for Groq, 120 s for OpenAI) regardless of our budget. Instead one retry is
made here, only for transient failures (connection errors, 408/409/429/5xx) and only when the wait
plus a useful attempt still fit in the caller's timeout. Timeouts are not retried: the budget is gone.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import groq
import httpx
import openai
from pydantic import ValidationError

from app import metrics
from app.errors import ConfigError
from app.summaries.base import ProviderError, StructuredSummary, SummaryInput
from app.summaries.prompt import DEFAULT_CONTEXT_BUDGET_TOKENS, build_messages, summary_json_schema
from app.summaries.redact import redact

log = logging.getLogger(__name__)

DEFAULT_MODELS = {"groq": "llama-3.3-70b-versatile", "openai": "gpt-4o-mini"}
GROQ_BASE_URL = "https://api.groq.com"  # the SDK appends /openai/v1/...
OPENAI_BASE_URL = "https://api.openai.com/v1"
GROQ_STRICT_SCHEMA = ("openai/gpt-oss-",)
GROQ_BEST_EFFORT_SCHEMA = ("meta-llama/llama-4-", "moonshotai/kimi-k2")
OPENAI_JSON_OBJECT_ONLY = ("gpt-3.5", "gpt-4-")  # no Structured Outputs; plain "gpt-4" checked separately
FIXED_TEMPERATURE = ("o1", "o3", "o4", "gpt-5")  # reasoning models reject a custom temperature
MAX_OUTPUT_TOKENS = 1024
MIN_ATTEMPT_S = 0.5  # a retry with less time than this left cannot succeed; do not start it
RETRY_BACKOFF_S = 0.2
_RETRYABLE_STATUS = {408, 409, 429}


class LLMProviderError(ProviderError):
    """A ProviderError that says what kind of failure it was, for logs, events and retry decisions."""

    def __init__(self, message: str, *, kind: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind  # auth|rate_limited|server|timeout|connection|bad_request|bad_output|unexpected
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in {"rate_limited", "server", "connection"} or self.status in _RETRYABLE_STATUS


class ChatCompletionsProvider:
    """Summarize through any chat-completions client (groq.Groq or openai.OpenAI) with a deadline."""

    def __init__(
        self,
        *,
        name: str,
        model: str,
        client: Any,
        response_format: dict,
        token_param: str = "max_completion_tokens",
        max_retries: int = 1,
        retry_backoff_s: float = RETRY_BACKOFF_S,
        context_budget_tokens: int = DEFAULT_CONTEXT_BUDGET_TOKENS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.name = name
        self.model = model
        self.client = client
        self.response_format = response_format
        self.token_param = token_param
        self.max_retries = max(0, min(max_retries, 1))  # a transfer is waiting: never more than one retry
        self.retry_backoff_s = retry_backoff_s
        self.context_budget_tokens = context_budget_tokens
        self.sleep = sleep

    def request_params(self, data: SummaryInput) -> dict:
        params = {
            "model": self.model,
            "messages": build_messages(data, budget_tokens=self.context_budget_tokens),
            "response_format": self.response_format,
            self.token_param: MAX_OUTPUT_TOKENS,
        }
        if not self.model.startswith(FIXED_TEMPERATURE):
            params["temperature"] = 0.2  # a summary should be faithful, not creative
        return params

    def summarize(self, data: SummaryInput, *, timeout: float) -> StructuredSummary:
        params = self.request_params(data)
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            remaining = timeout if attempt == 0 else max(deadline - time.monotonic(), 0.01)
            try:
                completion = self.client.chat.completions.create(**params, timeout=remaining)
            except Exception as err:  # every SDK failure becomes a typed ProviderError below
                failure = classify_error(err, self.name)
                metrics.external_error("llm", failure.kind)  # each failed request, retried or not
                wait = self._retry_wait(failure, attempt, deadline)
                if wait is None:
                    raise failure from err
                log.info("retrying %s summary in %.2fs after %s", self.name, wait, failure)
                self.sleep(wait)
                attempt += 1
                continue
            return parse_completion(completion, data, self.name)

    def _retry_wait(self, failure: LLMProviderError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before the one retry, or None when a retry cannot help within the deadline."""
        if attempt >= self.max_retries or not failure.retryable:
            return None
        wait = self.retry_backoff_s if failure.retry_after is None else failure.retry_after
        if time.monotonic() + wait + MIN_ATTEMPT_S > deadline:
            return None
        return wait


# -- errors ------------------------------------------------------------------------------------
_TIMEOUTS = (openai.APITimeoutError, groq.APITimeoutError)
_CONNECTION = (openai.APIConnectionError, groq.APIConnectionError)
_STATUS = (openai.APIStatusError, groq.APIStatusError)


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None  # an HTTP-date Retry-After is always far beyond a transfer's budget
    return None


def classify_error(err: Exception, provider: str) -> LLMProviderError:
    """Turn an SDK exception into a clear, typed ProviderError; the API key never appears in it."""
    if isinstance(err, _TIMEOUTS):
        return LLMProviderError(f"{provider} timed out before answering", kind="timeout")
    if isinstance(err, _CONNECTION):
        return LLMProviderError(f"could not connect to {provider}: {err.__cause__ or err}", kind="connection")
    if not isinstance(err, _STATUS):
        return LLMProviderError(f"{provider} call failed: {type(err).__name__}: {str(err)[:200]}", kind="unexpected")
    status = err.status_code
    detail = str(getattr(err, "message", "") or err)[:200]
    if status in (401, 403):
        message = f"{provider} rejected the credentials (HTTP {status}); check the API key"
        return LLMProviderError(message, kind="auth", status=status)
    kind, what = (
        ("rate_limited", "rate limit or quota exceeded") if status == 429
        else ("server", "server error") if status >= 500
        else ("bad_request", "refused the request")
    )
    return LLMProviderError(
        f"{provider} {what} (HTTP {status}): {detail}", kind=kind, status=status, retry_after=_retry_after(err.response)
    )


# -- output ------------------------------------------------------------------------------------
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_TEXT_LIMITS = {n: f.metadata[0].max_length for n, f in StructuredSummary.model_fields.items() if f.annotation is str}
_INVENTED_ID = re.compile(r"\b[A-Z0-9-]*\d[A-Z0-9-]*\b", re.I)
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z|^\d{1,2}-\d{1,2}-\d{2,4}\Z")


def extract_json(content: str) -> dict:
    """Parse a JSON object out of what models really return: fences, prose around it, trailing commas."""
    text = content.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        raise LLMProviderError("the answer contains no JSON object", kind="bad_output")
    text = text[start : end + 1]
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise LLMProviderError("the answer is not a valid JSON object", kind="bad_output")


def _normalise(raw: dict, data: SummaryInput) -> dict:
    """Repair what is harmless to repair (wrapping, case, overlong text); leave real violations to pydantic."""
    fields = StructuredSummary.model_fields
    if not fields.keys() & raw.keys() and len(raw) == 1 and isinstance(next(iter(raw.values())), dict):
        raw = next(iter(raw.values()))  # {"summary": {...}}
    out = {k: v for k, v in raw.items() if k in fields}
    if not out.get("customer_name"):
        out["customer_name"] = data.customer_name.strip() or "Unknown caller"
    for key in ("details", "steps_taken"):
        if isinstance(out.get(key), str):
            out[key] = [out[key]]
        if isinstance(out.get(key), list):
            out[key] = [redact(i) if isinstance(i, str) else i for i in out[key]][: fields[key].metadata[0].max_length]
    for key in ("sentiment", "urgency"):
        if isinstance(out.get(key), str):
            out[key] = out[key].strip().lower()
    for key, limit in _TEXT_LIMITS.items():
        if isinstance(out.get(key), str):
            out[key] = redact(out[key])[:limit]
    return out


def _check_identifiers(summary: StructuredSummary, data: SummaryInput) -> None:
    """Reject an answer that carries a long number the call never mentioned: Agent B would act on it."""
    # Compared on letters and digits only, so "(555) 123-4567" in the call matches "555-123-4567".
    context = _NON_ALNUM.sub("", " ".join(e.text for e in data.entries) + data.customer_name).upper()
    text = " ".join([summary.reason, summary.next_steps, *summary.details, *summary.steps_taken])
    for token in _INVENTED_ID.findall(text):
        digits = sum(ch.isdigit() for ch in token)
        if digits >= 5 and not _DATE.match(token) and _NON_ALNUM.sub("", token).upper() not in context:
            message = f"the answer contains an identifier the call never mentioned: {token[:40]}"
            raise LLMProviderError(message, kind="bad_output")


def parse_summary(content: str | None, data: SummaryInput) -> StructuredSummary:
    if not content or not content.strip():
        raise LLMProviderError("the answer was empty", kind="bad_output")
    raw = _normalise(extract_json(content), data)
    try:
        summary = StructuredSummary.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:4])
        raise LLMProviderError(f"the answer does not match the summary schema ({problems})", kind="bad_output") from err
    _check_identifiers(summary, data)
    return summary


def parse_completion(completion: Any, data: SummaryInput, provider: str) -> StructuredSummary:
    if not getattr(completion, "choices", None):
        raise LLMProviderError(f"{provider} returned no choices", kind="bad_output")
    choice = completion.choices[0]
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        raise LLMProviderError(f"{provider} refused to summarize: {refusal[:160]}", kind="bad_output")
    try:
        return parse_summary(choice.message.content, data)
    except LLMProviderError as err:
        if choice.finish_reason == "length":
            raise LLMProviderError(f"{err} (the answer was cut off at the token limit)", kind="bad_output") from err
        raise


# -- construction ------------------------------------------------------------------------------
def response_format_for(provider: str, model: str) -> dict:
    """The strongest structured-output mode this provider offers for this model (see module docstring)."""
    if provider == "groq":
        strict = model.startswith(GROQ_STRICT_SCHEMA)
        schema_ok = strict or model.startswith(GROQ_BEST_EFFORT_SCHEMA)
    else:
        legacy = model == "gpt-4" or model.startswith(OPENAI_JSON_OBJECT_ONLY)
        schema_ok = strict = provider == "openai" and not legacy
    if not schema_ok:
        return {"type": "json_object"}
    schema = {"name": "call_summary", "schema": summary_json_schema(), "strict": strict}
    return {"type": "json_schema", "json_schema": schema}


def build_llm_provider(choice: str, settings, *, http_client: httpx.Client | None = None) -> ChatCompletionsProvider:
    """Build the provider LLM_PROVIDER names, failing fast (ConfigError) on settings that cannot work."""
    timeout = float(settings.LLM_TIMEOUT_S)
    if timeout <= 0:
        raise ConfigError("LLM_TIMEOUT_S must be a positive number of seconds")
    base_url = settings.LLM_BASE_URL.strip().rstrip("/")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"LLM_BASE_URL must be an http(s) URL, got {base_url!r}")
    common = {"timeout": timeout, "max_retries": 0, "http_client": http_client}
    token_param = "max_completion_tokens"

    if choice == "groq":
        if base_url:
            raise ConfigError("LLM_BASE_URL is for OpenAI-compatible servers: set LLM_PROVIDER=openai to use it")
        if not settings.GROQ_API_KEY:
            raise ConfigError("LLM_PROVIDER=groq needs GROQ_API_KEY (or choose LLM_PROVIDER=offline)")
        name, model = "groq", settings.LLM_MODEL or DEFAULT_MODELS["groq"]
        client = groq.Groq(api_key=settings.GROQ_API_KEY, base_url=GROQ_BASE_URL, **common)
    elif choice == "openai" and base_url:
        if not settings.LLM_MODEL:
            raise ConfigError("LLM_BASE_URL is set: LLM_MODEL must name the model that server serves")
        name, model, token_param = "openai-compatible", settings.LLM_MODEL, "max_tokens"
        # Self-hosted servers often need no key, but the SDK insists on one: send a placeholder.
        client = openai.OpenAI(api_key=settings.OPENAI_API_KEY or "not-needed", base_url=base_url, **common)
    elif choice == "openai":
        if not settings.OPENAI_API_KEY:
            raise ConfigError("LLM_PROVIDER=openai needs OPENAI_API_KEY, or LLM_BASE_URL for an OpenAI-compatible server")
        name, model = "openai", settings.LLM_MODEL or DEFAULT_MODELS["openai"]
        client = openai.OpenAI(api_key=settings.OPENAI_API_KEY, base_url=OPENAI_BASE_URL, **common)
    else:
        raise ConfigError(f"unknown LLM provider {choice!r}: expected groq, openai or offline")
    return ChatCompletionsProvider(
        name=name, model=model, client=client, response_format=response_format_for(name, model), token_param=token_param
    )

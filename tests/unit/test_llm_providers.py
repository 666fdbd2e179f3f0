"""Groq, OpenAI and OpenAI-compatible providers against an in-process HTTP double.

The real SDK clients run unmodified; only their transport is swapped for `httpx.MockTransport`, so
these tests see the exact bytes each provider would put on the wire (URL, headers, JSON body,
timeout) and exercise the SDKs' own error handling. No test touches the network.
"""
from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from app.config import Settings
from app.errors import ConfigError
from app.summaries import llm
from app.summaries.base import ContextLine, ProviderError, StructuredSummary, SummaryInput
from app.summaries.prompt import build_messages, summary_json_schema
from app.summaries.summarizer import Summarizer, build_provider

DATA = SummaryInput(
    customer_name="Dana Whitfield",
    entries=(
        ContextLine("customer", "transcript", "I was charged twice for order #A12345, $45.00 each time."),
        ContextLine("agent-1", "note", "Verified the duplicate charge on account 7781-2231."),
        ContextLine("agent-1", "note", "Customer wants a refund for the second charge today."),
    ),
)
GOOD = {
    "customer_name": "Dana Whitfield",
    "reason": "Charged twice for order #A12345.",
    "details": ["Two charges of $45.00 on account 7781-2231"],
    "steps_taken": ["Verified the duplicate charge"],
    "next_steps": "Refund the second charge today.",
    "sentiment": "frustrated",
    "urgency": "high",
}
KEYS = {"groq": "gsk-test-secret", "openai": "sk-test-secret"}


class FakeLLM:
    """A chat-completions server double: answers from a script and records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, i: int = 0) -> dict:
        return json.loads(self.requests[i].content)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def completion(content, finish_reason: str = "stop", **message) -> httpx.Response:
    if not isinstance(content, str) and content is not None:
        content = json.dumps(content)
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "m",
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": content, **message}}],
        },
    )


def error(status: int, message: str = "nope", headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": "x"}}, headers=headers or {})


def settings(**overrides) -> Settings:
    base = Settings(SECRET_KEY="x", LLM_TIMEOUT_S=4.0, GROQ_API_KEY=KEYS["groq"], OPENAI_API_KEY=KEYS["openai"])
    return replace(base, **overrides)


def provider(choice: str, fake: FakeLLM, **overrides):
    built = llm.build_llm_provider(choice, settings(**overrides), http_client=fake.client())
    built.sleep = lambda seconds: None  # retries in tests never wait for real
    return built


# -- the exact request -------------------------------------------------------------------------
def test_groq_sends_exact_request_with_json_mode_and_timeout():
    fake = FakeLLM(completion(GOOD))
    p = provider("groq", fake)

    result = p.summarize(DATA, timeout=2.5)

    assert result == StructuredSummary(**GOOD)
    assert (p.name, p.model) == ("groq", "llama-3.3-70b-versatile")
    (request,) = fake.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.groq.com/openai/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEYS['groq']}"
    assert fake.body() == {
        "model": "llama-3.3-70b-versatile",
        "messages": build_messages(DATA),
        "response_format": {"type": "json_object"},
        "max_completion_tokens": llm.MAX_OUTPUT_TOKENS,
        "temperature": 0.2,
    }
    assert request.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    assert request.headers["x-stainless-retry-count"] == "0"


def test_openai_sends_exact_request_with_strict_json_schema_and_timeout():
    fake = FakeLLM(completion(GOOD))
    p = provider("openai", fake)

    result = p.summarize(DATA, timeout=1.75)

    assert result == StructuredSummary(**GOOD)
    assert (p.name, p.model) == ("openai", "gpt-4o-mini")
    (request,) = fake.requests
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEYS['openai']}"
    body = fake.body()
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == build_messages(DATA)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "call_summary", "schema": summary_json_schema(), "strict": True},
    }
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["required"]) == set(StructuredSummary.model_fields) and schema["additionalProperties"] is False
    assert body["max_completion_tokens"] == llm.MAX_OUTPUT_TOKENS
    assert request.extensions["timeout"] == {"connect": 1.75, "read": 1.75, "write": 1.75, "pool": 1.75}


def test_openai_compatible_server_through_base_url_without_a_key():
    fake = FakeLLM(completion(GOOD))
    p = provider("openai", fake, OPENAI_API_KEY="", LLM_BASE_URL="http://llm.internal:8000/v1/", LLM_MODEL="qwen2.5-7b-instruct")

    p.summarize(DATA, timeout=3)

    assert (p.name, p.model) == ("openai-compatible", "qwen2.5-7b-instruct")
    (request,) = fake.requests
    assert str(request.url) == "http://llm.internal:8000/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer not-needed"
    body = fake.body()
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] == llm.MAX_OUTPUT_TOKENS and "max_completion_tokens" not in body


@pytest.mark.parametrize(
    "choice, model, expected",
    [
        ("groq", "openai/gpt-oss-120b", ("json_schema", True)),
        ("groq", "meta-llama/llama-4-scout-17b-16e-instruct", ("json_schema", False)),
        ("groq", "llama-3.1-8b-instant", ("json_object", None)),
        ("openai", "gpt-4.1-mini", ("json_schema", True)),
        ("openai", "gpt-3.5-turbo", ("json_object", None)),
    ],
)
def test_llm_model_overrides_default_and_picks_the_models_structured_output(choice, model, expected):
    fake = FakeLLM(completion(GOOD))
    provider(choice, fake, LLM_MODEL=model).summarize(DATA, timeout=2)
    body = fake.body()
    fmt = body["response_format"]
    assert body["model"] == model
    assert (fmt["type"], fmt.get("json_schema", {}).get("strict")) == expected


def test_reasoning_models_get_no_custom_temperature():
    fake = FakeLLM(completion(GOOD))
    provider("openai", fake, LLM_MODEL="gpt-5-mini").summarize(DATA, timeout=2)
    assert "temperature" not in fake.body()


# -- failures map to ProviderError -------------------------------------------------------------
@pytest.mark.parametrize("choice", ["groq", "openai"])
@pytest.mark.parametrize(
    "answers, kind, text, attempts",
    [
        ([error(401, "Invalid API Key")], "auth", "rejected the credentials (HTTP 401)", 1),
        ([error(403)], "auth", "HTTP 403", 1),
        ([error(400, "model_not_found")], "bad_request", "refused the request (HTTP 400)", 1),
        ([error(429, "slow down", {"retry-after": "30"})], "rate_limited", "rate limit", 1),
        ([error(429, "slow down"), error(429, "still")], "rate_limited", "HTTP 429", 2),
        ([error(500, "boom"), error(502, "boom")], "server", "server error (HTTP 502)", 2),
        ([httpx.ReadTimeout("slow")], "timeout", "timed out", 1),
        ([httpx.ConnectError("refused")], "connection", "could not connect", 2),
    ],
)
def test_transport_failures_become_typed_provider_errors(choice, answers, kind, text, attempts):
    fake = FakeLLM(*answers)
    p = provider(choice, fake)

    with pytest.raises(ProviderError) as caught:
        p.summarize(DATA, timeout=2)

    assert caught.value.kind == kind
    assert text in str(caught.value) and choice in str(caught.value)
    assert KEYS[choice] not in str(caught.value)
    assert len(fake.requests) == attempts  # at most one retry, and only for transient failures


@pytest.mark.parametrize("choice", ["groq", "openai"])
@pytest.mark.parametrize("first", [error(503), error(429, headers={"retry-after": "0.3"}), httpx.ConnectError("reset")])
def test_one_retry_recovers_from_a_transient_failure(choice, first):
    fake = FakeLLM(first, completion(GOOD))
    p = provider(choice, fake)
    waits: list[float] = []
    p.sleep = waits.append

    assert p.summarize(DATA, timeout=3) == StructuredSummary(**GOOD)

    assert len(fake.requests) == 2
    honoured = isinstance(first, httpx.Response) and "retry-after" in first.headers
    assert waits == ([0.3] if honoured else [p.retry_backoff_s])
    retry_timeout = fake.requests[1].extensions["timeout"]["read"]
    assert 0 < retry_timeout < 3  # the retry only gets what is left of the budget


def test_no_retry_when_the_budget_cannot_fit_it():
    fake = FakeLLM(error(500), completion(GOOD))
    p = provider("groq", fake)
    with pytest.raises(ProviderError, match="server error"):
        p.summarize(DATA, timeout=llm.MIN_ATTEMPT_S / 2)
    assert len(fake.requests) == 1


# -- what the model answered -------------------------------------------------------------------
REPAIRABLE = {
    "code fence with prose": "Here is the summary:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nHope this helps!",
    "bare fence": "```\n" + json.dumps(GOOD) + "\n```",
    "leading prose": "Sure! " + json.dumps(GOOD),
    "trailing commas": json.dumps(GOOD).replace('"]', '",]')[:-1] + ",}",
    "wrapped object": json.dumps({"summary": GOOD}),
    "enum case": json.dumps({**GOOD, "sentiment": "Frustrated", "urgency": " HIGH "}),
    "extra key": json.dumps({**GOOD, "confidence": 0.9}),
}


@pytest.mark.parametrize("content", REPAIRABLE.values(), ids=REPAIRABLE.keys())
def test_common_malformations_are_repaired(content):
    fake = FakeLLM(completion(content))
    assert provider("openai", fake).summarize(DATA, timeout=2) == StructuredSummary(**GOOD)


def test_list_fields_given_as_a_string_and_overlong_text_are_repaired():
    answer = {**GOOD, "details": "Two charges of $45.00", "reason": "Charged twice. " * 80, "customer_name": ""}
    summary = provider("groq", FakeLLM(completion(answer))).summarize(DATA, timeout=2)
    assert summary.details == ["Two charges of $45.00"]
    assert len(summary.reason) <= 600
    assert summary.customer_name == "Dana Whitfield"


REJECTED = {
    "prose only": ("I am sorry, I cannot help with that.", "no JSON object"),
    "broken json": ('{"customer_name": "Dana", "reason": ', "no JSON object"),
    "unterminated": ('{"customer_name": "Dana", "reason": "x" "details": []}', "not a valid JSON object"),
    "array": ("[1, 2, 3]", "no JSON object"),
    "missing reason": (json.dumps({k: v for k, v in GOOD.items() if k != "reason"}), "reason: Field required"),
    "bad enum": (json.dumps({**GOOD, "sentiment": "ecstatic"}), "sentiment"),
    "wrong type": (json.dumps({**GOOD, "details": 5}), "details"),
    "invented id": (json.dumps({**GOOD, "details": ["Refund order #Z99999"]}), "never mentioned: Z99999"),
    "empty": ("", "empty"),
}


@pytest.mark.parametrize("content, message", REJECTED.values(), ids=REJECTED.keys())
def test_invalid_answers_are_rejected(content, message):
    fake = FakeLLM(completion(content))
    with pytest.raises(ProviderError, match=message) as caught:
        provider("groq", fake).summarize(DATA, timeout=2)
    assert caught.value.kind == "bad_output"
    assert len(fake.requests) == 1  # bad output is not retried: offline takes over


def test_truncated_answer_says_it_was_cut_off():
    fake = FakeLLM(completion(json.dumps(GOOD)[:40], finish_reason="length"))
    with pytest.raises(ProviderError, match="cut off at the token limit"):
        provider("openai", fake).summarize(DATA, timeout=2)


def test_refusal_is_rejected():
    fake = FakeLLM(completion(None, refusal="I can't help with that."))
    with pytest.raises(ProviderError, match="refused to summarize"):
        provider("openai", fake).summarize(DATA, timeout=2)


def test_identifiers_reformatted_from_the_context_are_accepted():
    data = replace(DATA, entries=DATA.entries + (ContextLine("customer", "transcript", "Call me on (555) 123 4567."),))
    answer = {**GOOD, "details": ["Callback number 555-123-4567", "Account 77812231", "Order A12345"]}
    summary = provider("groq", FakeLLM(completion(answer))).summarize(data, timeout=2)
    assert summary.details == answer["details"]


def test_a_card_number_the_model_emits_is_redacted():
    answer = {**GOOD, "details": ["Card 4111 1111 1111 1111 was charged $45.00"]}
    summary = provider("groq", FakeLLM(completion(answer))).summarize(DATA, timeout=2)
    assert summary.details == ["Card [card ending 1111] was charged $45.00"]


# -- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "choice, overrides, message",
    [
        ("groq", {"GROQ_API_KEY": ""}, "needs GROQ_API_KEY"),
        ("openai", {"OPENAI_API_KEY": ""}, "needs OPENAI_API_KEY"),
        ("groq", {"LLM_BASE_URL": "http://localhost:8000/v1"}, "LLM_PROVIDER=openai"),
        ("openai", {"LLM_BASE_URL": "http://localhost:8000/v1"}, "LLM_MODEL must name"),
        ("openai", {"LLM_BASE_URL": "localhost:8000", "LLM_MODEL": "m"}, "http"),
        ("openai", {"LLM_TIMEOUT_S": 0.0}, "LLM_TIMEOUT_S"),
        ("anthropic", {}, "unknown LLM provider"),
    ],
)
def test_unusable_settings_fail_at_build_time(choice, overrides, message):
    with pytest.raises(ConfigError, match=message):
        llm.build_llm_provider(choice, settings(**overrides))


def test_service_builds_the_sdk_clients_without_an_injected_transport():
    groq_provider = build_provider(settings(LLM_PROVIDER="groq"))
    openai_provider = build_provider(settings(LLM_PROVIDER="openai", LLM_MODEL="gpt-4.1-mini"))
    assert (groq_provider.name, groq_provider.model) == ("groq", "llama-3.3-70b-versatile")
    assert (openai_provider.name, openai_provider.model) == ("openai", "gpt-4.1-mini")
    assert groq_provider.client.max_retries == 0 and groq_provider.client.timeout == 4.0
    assert openai_provider.client.max_retries == 0 and openai_provider.client.timeout == 4.0


def test_summarizer_falls_back_to_offline_when_the_provider_fails():
    fake = FakeLLM(error(401))
    result = Summarizer(provider("groq", fake), max_workers=1).summarize(DATA, budget_s=2)
    assert result.degraded and result.provider == "offline"
    assert "groq" in result.degraded_reason and "401" in result.degraded_reason
    assert "#A12345" in result.text


def test_summarizer_uses_the_llm_answer_when_it_is_valid():
    result = Summarizer(provider("openai", FakeLLM(completion(GOOD))), max_workers=1).summarize(DATA, budget_s=2)
    assert not result.degraded and (result.provider, result.model) == ("openai", "gpt-4o-mini")
    assert result.structured == StructuredSummary(**GOOD)

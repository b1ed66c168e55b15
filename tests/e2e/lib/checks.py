"""What the gateway tests expect: usage records derived from what the mock reported (with the
gateway's documented normalization, crates/domain/src/usage.rs), list-price costs, and the
hygiene of every request that reached the upstream.

Normalization (records never double-count a token):
- Anthropic: `input_tokens` as reported (it already excludes cache reads and writes);
  cache reads/writes as reported.
- OpenAI (chat, responses, embeddings): `input_tokens` = reported input minus its cached part;
  the cached part is `cache_read_tokens`; `reasoning_tokens` as reported (part of output).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from .mock_llm import RecordedRequest

# USD micro-dollars per million tokens, from the providers' public list prices (the gateway's
# built-in table, crates/domain/src/pricing.rs, must agree).
PRICES: dict[str, dict[str, int]] = {
    # Anthropic: cache writes 1.25x input, cache reads 0.1x input.
    "claude-sonnet-4-5": {"input": 3_000_000, "output": 15_000_000, "cache_write": 3_750_000, "cache_read": 300_000},
    # OpenAI: cached input at its own rate.
    "gpt-5": {"input": 1_250_000, "output": 10_000_000, "cache_write": 1_250_000, "cache_read": 125_000},
    "gpt-5-mini": {"input": 250_000, "output": 2_000_000, "cache_write": 250_000, "cache_read": 25_000},
    "text-embedding-3-small": {"input": 20_000, "output": 0, "cache_write": 20_000, "cache_read": 20_000},
}

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "reasoning_tokens")


def anthropic_tokens(usage: Mapping[str, int]) -> dict[str, int]:
    """Record token fields for a mock Anthropic usage script {input, output, cache_read, cache_write}."""
    return {
        "input_tokens": usage.get("input", 0),
        "output_tokens": usage.get("output", 0),
        "cache_creation_tokens": usage.get("cache_write", 0),
        "cache_read_tokens": usage.get("cache_read", 0),
        "reasoning_tokens": 0,
    }


def openai_tokens(usage: Mapping[str, int]) -> dict[str, int]:
    """Record token fields for a mock OpenAI usage script {input, output, cache_read, reasoning}."""
    return {
        "input_tokens": usage.get("input", 0) - usage.get("cache_read", 0),
        "output_tokens": usage.get("output", 0),
        "cache_creation_tokens": 0,
        "cache_read_tokens": usage.get("cache_read", 0),
        "reasoning_tokens": usage.get("reasoning", 0),
    }


def cost_micro_usd(model: str, tokens: Mapping[str, int]) -> int:
    """List-price cost of record tokens, rounded up to the next micro-dollar."""
    p = PRICES[model]
    pico = (
        tokens["input_tokens"] * p["input"]
        + tokens["output_tokens"] * p["output"]
        + tokens["cache_creation_tokens"] * p["cache_write"]
        + tokens["cache_read_tokens"] * p["cache_read"]
    )
    return -(-pico // 1_000_000)


def record_tokens(record: Mapping[str, Any]) -> dict[str, int]:
    return {k: record[k] for k in TOKEN_FIELDS}


def assert_record(
    record: Mapping[str, Any],
    *,
    principal: str,
    provider: str | None,
    api: str,
    endpoint: str,
    model: str | None,
    stream: bool,
    tokens: Mapping[str, int] | None = None,
    cost: int | None | str = "skip",
    status: int = 200,
    reason: str = "ok",
    usage_reported: bool | None = None,
    **more: Any,
) -> None:
    """One usage record, field by field (a mismatch names the field and shows the record)."""
    want: dict[str, Any] = {
        "principal": principal,
        "provider": provider,
        "api": api,
        "endpoint": endpoint,
        "model": model,
        "stream": stream,
        "status": status,
        "reason": reason,
        **more,
    }
    if tokens is not None:
        want.update(tokens)
    if cost != "skip":
        want["cost_micro_usd"] = cost
        want["cost_known"] = cost is not None
    if usage_reported is not None:
        want["usage_reported"] = usage_reported
    got = {k: record.get(k) for k in want}
    assert got == want, f"usage record differs:\n  want {want}\n  got  {got}\n  record {json.dumps(record, indent=1)}"


def upstream_for(requests: Iterable[RecordedRequest], request_id: str) -> RecordedRequest:
    """The request the mock received for the gateway request `request_id`."""
    found = [r for r in requests if r.header("x-agentnet-request-id") == request_id]
    assert len(found) == 1, f"expected one upstream request stamped {request_id}, got {len(found)}"
    return found[0]


def assert_upstream_hygiene(
    req: RecordedRequest, *, provider_kind: str, server_key: str, forbidden: Iterable[str]
) -> None:
    """The provider key in the provider's header, no client credential anywhere, and none of the
    `forbidden` strings (user tokens, the other provider's key) in any header."""
    if provider_kind == "anthropic":
        assert req.header("x-api-key") == server_key, req.headers
        assert req.header("authorization") is None, req.headers
    else:
        assert req.header("authorization") == f"Bearer {server_key}", req.headers
        assert req.header("x-api-key") is None, req.headers
    for bad in forbidden:
        for name, value in req.headers.items():
            assert bad not in value, f"upstream header {name} carries a forbidden credential"
        assert bad not in req.body, "upstream body carries a forbidden credential"


def known_gateway_bug(still_broken: bool, description: str) -> None:
    """The last check of a test that pins a known gateway bug: xfail while it reproduces, fail
    once it does not (then make the check a plain assertion). Everything the test asserted
    before this call must have passed, unlike a whole-test xfail marker."""
    if still_broken:
        pytest.xfail(f"known gateway bug: {description}")
    pytest.fail(f"known gateway bug no longer reproduces (fixed?): {description}; make this a plain assertion")

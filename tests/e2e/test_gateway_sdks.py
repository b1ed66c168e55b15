"""The official SDKs (anthropic, openai) through the real `agentnet server` to the mock upstream,
with alice's IdP access token (device flow) as their api_key.

Each test asserts three things: what the SDK got (content, usage), what the upstream got (the
server-held key instead of the user's token, the identity stamp), and the usage record the
gateway wrote (read back from its admin API), which must match what the mock reported exactly.
"""

from __future__ import annotations

import json

import pytest

from lib.checks import (
    anthropic_tokens,
    assert_record,
    assert_upstream_hygiene,
    cost_micro_usd,
    openai_tokens,
    upstream_for,
)

ALICE = "alice@example.com"


@pytest.fixture
def alice_anthropic(recorder, gateway, alice):
    return recorder.anthropic(base_url=gateway.ai_url, api_key=alice.access_token)


@pytest.fixture
def alice_openai(recorder, gateway, alice):
    return recorder.openai(base_url=gateway.ai_url, api_key=alice.access_token)


def _upstream(mock_llm, request_id, kind, server_keys, alice):
    """The mock's copy of the request, checked for key injection and credential stripping."""
    req = upstream_for(mock_llm.requests(), request_id)
    key = server_keys.anthropic if kind == "anthropic" else server_keys.openai
    other = server_keys.openai if kind == "anthropic" else server_keys.anthropic
    assert_upstream_hygiene(req, provider_kind=kind, server_key=key, forbidden=[alice.access_token, other])
    assert req.header("x-agentnet-user") == ALICE
    assert req.header("x-agentnet-groups") == "engineering"
    return req


# ---- Anthropic Messages ----------------------------------------------------------------------------


def test_anthropic_messages_create(alice_anthropic, recorder, gateway, mock_llm, server_keys, alice):
    usage = {"input": 1234, "output": 56, "cache_read": 300, "cache_write": 40}
    mock_llm.script([{"text": "Hello alice, non-streamed", "usage": usage}])

    msg = alice_anthropic.messages.create(
        model="claude-sonnet-4-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    )
    ex = recorder.last()
    assert ex.status == 200
    assert msg.content[0].text == "Hello alice, non-streamed"
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (1234, 56)
    assert (msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (300, 40)

    req = _upstream(mock_llm, ex.request_id, "anthropic", server_keys, alice)
    assert req.path == "/v1/messages"
    # The body goes upstream byte for byte; the client's anthropic-version is forwarded as is.
    assert req.body.encode() == ex.request_body
    assert req.header("anthropic-version") == dict((k.lower(), v) for k, v in ex.request_headers)["anthropic-version"]

    tokens = anthropic_tokens(usage)
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="anthropic",
        api="anthropic",
        endpoint="messages",
        model="claude-sonnet-4-5",
        stream=False,
        tokens=tokens,
        cost=cost_micro_usd("claude-sonnet-4-5", tokens),
        usage_reported=True,
        principal_kind="user",
        subject="usr_alice",
        groups=["engineering"],
        policy="engineering-all",
        session_id=None,
    )


def test_anthropic_messages_stream(alice_anthropic, recorder, gateway, mock_llm, server_keys, alice):
    usage = {"input": 2100, "output": 77, "cache_read": 1000, "cache_write": 0}
    mock_llm.script([{"text": "Streaming to alice through the gateway, piece by piece.", "usage": usage}])

    with alice_anthropic.messages.stream(
        model="claude-sonnet-4-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    ex = recorder.last()
    assert text == "Streaming to alice through the gateway, piece by piece."
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2100, 77)
    assert ex.header("content-type").startswith("text/event-stream")
    assert "event: message_stop" in ex.text()

    req = _upstream(mock_llm, ex.request_id, "anthropic", server_keys, alice)
    assert json.loads(req.body)["stream"] is True

    tokens = anthropic_tokens(usage)
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="anthropic",
        api="anthropic",
        endpoint="messages",
        model="claude-sonnet-4-5",
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd("claude-sonnet-4-5", tokens),
        usage_reported=True,
    )


def test_anthropic_count_tokens(alice_anthropic, recorder, gateway, mock_llm, server_keys, alice):
    mock_llm.script([{"usage": {"input": 4321, "output": 0}}])  # count_tokens answers the next reply's input
    counted = alice_anthropic.messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "how many tokens is this?"}]
    )
    ex = recorder.last()
    assert counted.input_tokens == 4321

    req = _upstream(mock_llm, ex.request_id, "anthropic", server_keys, alice)
    assert req.path_only == "/v1/messages/count_tokens"
    # Counting tokens is not consumption: a record with no tokens and no cost.
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="anthropic",
        api="anthropic",
        endpoint="count_tokens",
        model="claude-sonnet-4-5",
        stream=False,
        tokens=anthropic_tokens({}),
        cost=0,
    )


def test_anthropic_models_list(alice_anthropic, recorder, gateway, mock_llm, server_keys):
    before = {r["id"] for r in gateway.usage(principal=ALICE)}
    models = alice_anthropic.models.list()
    ids = [m.id for m in models.data]
    assert recorder.last().status == 200
    # The gateway asked the anthropic provider for its list with the provider key; alice's
    # policy allows every model there.
    listed = [r for r in mock_llm.requests() if r.method == "GET" and r.path_only == "/v1/models"]
    assert listed, "the gateway did not ask the upstream for its model list"
    for r in listed:
        assert r.header("x-api-key") == server_keys.anthropic
        assert r.header("authorization") is None
    assert "claude-sonnet-4-5-20250929" in ids and "claude-haiku-4-5-20251001" in ids
    assert len(ids) == len(set(ids))
    (rec,) = gateway.records_where(lambda r: r["id"] not in before, count=1, principal=ALICE)
    assert (rec["endpoint"], rec["api"], rec["status"], rec["reason"]) == ("models", "anthropic", 200, "ok")


def test_models_list_response_carries_its_request_id(alice_anthropic, recorder, gateway):
    before = {r["id"] for r in gateway.usage(principal=ALICE)}
    alice_anthropic.models.list()
    (rec,) = gateway.records_where(lambda r: r["id"] not in before, count=1, principal=ALICE)
    assert recorder.last().request_id == rec["id"]


# ---- OpenAI Chat Completions -----------------------------------------------------------------------


def test_openai_chat_create(alice_openai, recorder, gateway, mock_llm, server_keys, alice):
    usage = {"input": 500, "output": 40, "cache_read": 100, "reasoning": 12}
    mock_llm.script([{"text": "Hello alice from chat", "usage": usage}])

    chat = alice_openai.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
    )
    ex = recorder.last()
    assert chat.choices[0].message.content == "Hello alice from chat"
    assert chat.choices[0].finish_reason == "stop"
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (500, 40)

    req = _upstream(mock_llm, ex.request_id, "openai", server_keys, alice)
    assert req.path == "/v1/chat/completions"
    assert req.body.encode() == ex.request_body

    tokens = openai_tokens(usage)
    assert tokens["input_tokens"] == 400  # 500 reported, 100 of them cached
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="openai",
        api="openai",
        endpoint="chat_completions",
        model="gpt-5-mini",
        stream=False,
        tokens=tokens,
        cost=cost_micro_usd("gpt-5-mini", tokens),
        usage_reported=True,
        policy="engineering-all",
    )


def test_openai_chat_stream_without_include_usage(alice_openai, recorder, gateway, mock_llm, server_keys, alice):
    """The client did not ask for usage: the gateway asks upstream for it (to meter), and removes
    the usage chunk from what the client receives."""
    usage = {"input": 321, "output": 23, "cache_read": 0, "reasoning": 0}
    text = "A streamed chat answer for alice, in several chunks."
    mock_llm.script([{"text": text, "usage": usage}])

    stream = alice_openai.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    ex = recorder.last()
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c for c in chunks if not c.choices] == [], "the client received a choice-less (usage) chunk"
    assert all(c.usage is None for c in chunks), "the client received usage it did not ask for"
    assert ex.text().rstrip().endswith("data: [DONE]")

    req = _upstream(mock_llm, ex.request_id, "openai", server_keys, alice)
    sent = json.loads(req.body)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert "stream_options" not in json.loads(ex.request_body)

    tokens = openai_tokens(usage)
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="openai",
        api="openai",
        endpoint="chat_completions",
        model="gpt-5",
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd("gpt-5", tokens),
        usage_reported=True,
    )


def test_openai_chat_stream_without_include_usage_from_a_compressing_upstream(
    alice_openai, recorder, gateway, mock_llm
):
    mock_llm.script([{"text": "compressed chunks", "gzip": "force"}])
    chunks = list(
        alice_openai.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "compressed chunks"
    rec = gateway.record(recorder.last().request_id, principal=ALICE)
    assert rec["usage_reported"] and rec["input_tokens"] == 10
    # The gateway decodes the stream to remove the usage chunk it asked for.
    assert [c for c in chunks if not c.choices] == []


def test_openai_chat_stream_with_include_usage(alice_openai, recorder, gateway, mock_llm, server_keys, alice):
    usage = {"input": 900, "output": 61, "cache_read": 256, "reasoning": 30}
    text = "Streamed with usage for alice."
    mock_llm.script([{"text": text, "usage": usage}])

    stream = alice_openai.chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    ex = recorder.last()
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].choices == [] and usage_chunks[0] is chunks[-1]
    u = usage_chunks[0].usage
    assert (u.prompt_tokens, u.completion_tokens) == (900, 61)
    assert u.prompt_tokens_details.cached_tokens == 256
    assert u.completion_tokens_details.reasoning_tokens == 30

    req = _upstream(mock_llm, ex.request_id, "openai", server_keys, alice)
    assert req.body.encode() == ex.request_body  # nothing to inject: forwarded as sent

    tokens = openai_tokens(usage)
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="openai",
        api="openai",
        endpoint="chat_completions",
        model="gpt-5-mini",
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd("gpt-5-mini", tokens),
        usage_reported=True,
    )


# ---- OpenAI Responses and Embeddings ---------------------------------------------------------------


def test_openai_responses_create(alice_openai, recorder, gateway, mock_llm, server_keys, alice):
    usage = {"input": 1500, "output": 88, "cache_read": 500, "reasoning": 40}
    mock_llm.script([{"text": "Responses API, non-streamed", "usage": usage}])

    resp = alice_openai.responses.create(model="gpt-5", input="hi")
    ex = recorder.last()
    assert resp.output_text == "Responses API, non-streamed"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (1500, 88)

    req = _upstream(mock_llm, ex.request_id, "openai", server_keys, alice)
    assert req.path == "/v1/responses"
    assert req.body.encode() == ex.request_body

    tokens = openai_tokens(usage)
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="openai",
        api="openai",
        endpoint="responses",
        model="gpt-5",
        stream=False,
        tokens=tokens,
        cost=cost_micro_usd("gpt-5", tokens),
        usage_reported=True,
    )


def test_openai_responses_stream(alice_openai, recorder, gateway, mock_llm, server_keys, alice):
    usage = {"input": 2048, "output": 128, "cache_read": 1024, "reasoning": 64}
    mock_llm.script([{"text": "Responses API, streamed to alice.", "usage": usage}])

    events = list(alice_openai.responses.create(model="gpt-5-mini", input="hi", stream=True))
    ex = recorder.last()
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_item.done" in kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Responses API, streamed to alice."
    done = events[-1].response
    assert (done.usage.input_tokens, done.usage.output_tokens) == (2048, 128)

    req = _upstream(mock_llm, ex.request_id, "openai", server_keys, alice)
    assert req.body.encode() == ex.request_body

    tokens = openai_tokens(usage)
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="openai",
        api="openai",
        endpoint="responses",
        model="gpt-5-mini",
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd("gpt-5-mini", tokens),
        usage_reported=True,
    )


def test_openai_embeddings(alice_openai, recorder, gateway, mock_llm, server_keys, alice):
    mock_llm.script([{"usage": {"input": 17, "output": 0}}])
    emb = alice_openai.embeddings.create(
        model="text-embedding-3-small", input=["first text", "second text"], encoding_format="float"
    )
    ex = recorder.last()
    assert len(emb.data) == 2 and all(len(d.embedding) == 8 for d in emb.data)
    assert emb.usage.prompt_tokens == 17

    req = _upstream(mock_llm, ex.request_id, "openai", server_keys, alice)
    assert req.path == "/v1/embeddings"

    tokens = openai_tokens({"input": 17})
    assert_record(
        gateway.record(ex.request_id, principal=ALICE),
        principal=ALICE,
        provider="openai",
        api="openai",
        endpoint="embeddings",
        model="text-embedding-3-small",
        stream=False,
        tokens=tokens,
        cost=cost_micro_usd("text-embedding-3-small", tokens),
        usage_reported=True,
    )


# ---- the admin CLI reads the same records ----------------------------------------------------------


def test_admin_cli_logs_and_usage_agree_with_the_api(alice_openai, recorder, gateway, mock_llm):
    mock_llm.script([{"text": "for the CLI", "usage": {"input": 10, "output": 5}}])
    alice_openai.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
    rid = recorder.last().request_id
    gateway.record(rid, principal=ALICE)

    logs = json.loads(gateway.cli("logs", "--json", "--principal", ALICE, "--limit", "1000").stdout)
    api = gateway.usage(principal=ALICE)
    assert [r["id"] for r in logs] == [r["id"] for r in api]
    assert logs[0]["id"] == rid

    summary = json.loads(gateway.cli("usage", "--json", "--principal", ALICE).stdout)
    (row,) = summary["principals"]
    assert row["principal"] == ALICE and row["principal_kind"] == "user"
    assert row["requests"] == len(api)
    assert row["input_tokens"] == sum(r["input_tokens"] for r in api)
    assert row["output_tokens"] == sum(r["output_tokens"] for r in api)
    assert row["cost_micro_usd"] == sum(r["cost_micro_usd"] or 0 for r in api)


"""The real Claude Code and Codex CLIs through the real gateway, configured only by
`agentnet setup claude-code|codex` in a throwaway HOME / CODEX_HOME, with alice's IdP token
(device flow) as their credential: answers, tool round trips, and the usage records they leave
(provider, endpoint, model as the CLI sent it, the CLI's session id)."""

from __future__ import annotations

import json
import tomllib

import pytest

from lib.checks import (
    PRICES,
    anthropic_tokens,
    assert_record,
    assert_upstream_hygiene,
    cost_micro_usd,
    openai_tokens,
)
from lib.gateway import claude_code_via_setup, codex_via_setup

pytestmark = pytest.mark.clis

ALICE = "alice@example.com"
TOKEN_ENV = "AGENTNET_TOKEN"


def _hygiene(mock_llm, kind, server_keys, *tokens):
    key = server_keys.anthropic if kind == "anthropic" else server_keys.openai
    gen = mock_llm.generation_requests()
    for r in gen:
        assert_upstream_hygiene(r, provider_kind=kind, server_key=key, forbidden=tokens)
        assert r.header("x-agentnet-user") == ALICE
    return gen


# ---- Claude Code ---------------------------------------------------------------------------------------


@pytest.fixture
def claude(gateway, alice, tmp_path, transcripts):
    token_file = tmp_path / "alice.token"
    token_file.write_text(alice.access_token + "\n")
    token_file.chmod(0o600)
    cc, setup = claude_code_via_setup(tmp_path / "claude", endpoint=gateway.ai_url, token_command=f"cat {token_file}")
    transcripts.add("agentnet setup claude-code", setup.stdout + setup.stderr)
    settings = json.loads((cc.home / ".claude" / "settings.json").read_text())
    assert settings["apiKeyHelper"] == f"cat {token_file}"
    assert settings["env"]["ANTHROPIC_BASE_URL"].rstrip("/") == gateway.ai_url
    assert settings["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert alice.access_token not in json.dumps(settings)
    return cc


def _claude_run(cc, transcripts, prompt, *args, **kw):
    res = cc.run(prompt, *args, **kw)
    transcripts.add(f"claude -p {prompt!r}", res.run.stdout + res.run.stderr)
    assert res.result is not None, f"no JSON result\n{res.run.stdout}\n{res.run.stderr}"
    return res


def test_claude_code_text_answer(claude, gateway, mock_llm, server_keys, alice, transcripts):
    usage = {"input": 3210, "output": 42, "cache_read": 2048, "cache_write": 512}
    mock_llm.script([{"text": "Hello from the gateway, Claude", "usage": usage}])
    res = _claude_run(claude, transcripts, "say hi", "--model", "claude-sonnet-4-5")
    assert res.ok, res.run.stdout + res.run.stderr
    assert res.text == "Hello from the gateway, Claude"
    assert res.result["stop_reason"] == "end_turn"
    assert res.result["usage"]["input_tokens"] == 3210 and res.result["usage"]["output_tokens"] == 42
    session = res.result["session_id"]

    (req,) = _hygiene(mock_llm, "anthropic", server_keys, alice.access_token)
    assert req.path == "/v1/messages?beta=true"
    body = json.loads(req.body)
    assert body["model"] == "claude-sonnet-4-5" and body["stream"] is True
    assert req.header("x-claude-code-session-id") == session

    rid = req.header("x-agentnet-request-id")
    tokens = anthropic_tokens(usage)
    assert_record(
        gateway.record(rid, principal=ALICE),
        principal=ALICE,
        provider="anthropic",
        api="anthropic",
        endpoint="messages",
        model="claude-sonnet-4-5",
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd("claude-sonnet-4-5", tokens),
        usage_reported=True,
        session_id=session,
        policy="engineering-all",
    )


def test_claude_code_tool_round_trip(claude, gateway, mock_llm, server_keys, alice, transcripts):
    """Claude Code's default model: it has no built-in price, so its cost is unknown (null),
    never zero, while its tokens are metered exactly."""
    usage = {"input": 700, "output": 30}
    mock_llm.script([{"shell": "echo tool-ok", "usage": usage}, {"text": "The command printed", "usage": usage}])
    res = _claude_run(claude, transcripts, "run the command", allowed_tools=["Bash"])
    assert res.ok, res.run.stdout + res.run.stderr
    assert "tool-ok" in res.text
    assert res.result["stop_reason"] == "end_turn"
    assert res.result["num_turns"] >= 2
    session = res.result["session_id"]

    first, second = _hygiene(mock_llm, "anthropic", server_keys, alice.access_token)
    model = json.loads(first.body)["model"]
    assert json.loads(second.body)["model"] == model
    last = json.loads(second.body)["messages"][-1]
    results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
    assert results and "tool-ok" in json.dumps(results)

    rids = [first.header("x-agentnet-request-id"), second.header("x-agentnet-request-id")]
    for rid in rids:
        assert_record(
            gateway.record(rid, principal=ALICE),
            principal=ALICE,
            provider="anthropic",
            api="anthropic",
            endpoint="messages",
            model=model,
            stream=True,
            tokens=anthropic_tokens(usage),
            cost=None,
            usage_reported=True,
            session_id=session,
        )


def test_claude_code_with_a_compressing_upstream(claude, gateway, mock_llm, server_keys, alice, transcripts):
    """An upstream that gzips its SSE although the gateway asked for `identity`: Claude Code
    still gets its answer and the gateway still meters it exactly (its tap decodes gzip)."""
    usage = {"input": 640, "output": 48, "cache_read": 64, "cache_write": 0}
    mock_llm.script([{"text": "compressed through the gateway", "gzip": "force", "usage": usage}])
    res = _claude_run(claude, transcripts, "say hi", "--model", "claude-sonnet-4-5")
    assert res.ok and res.text == "compressed through the gateway", res.run.stdout + res.run.stderr
    (req,) = _hygiene(mock_llm, "anthropic", server_keys, alice.access_token)
    assert req.header("accept-encoding") == "identity"
    tokens = anthropic_tokens(usage)
    assert_record(
        gateway.record(req.header("x-agentnet-request-id"), principal=ALICE),
        principal=ALICE,
        provider="anthropic",
        api="anthropic",
        endpoint="messages",
        model="claude-sonnet-4-5",
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd("claude-sonnet-4-5", tokens),
        session_id=res.result["session_id"],
    )


def test_claude_code_cut_stream_is_retried_and_both_attempts_metered(
    claude, gateway, mock_llm, server_keys, alice, transcripts
):
    """A stream cut after message_start: Claude Code retries non-streaming; the gateway records
    the cut attempt (what the upstream reported before the cut) and the retry."""
    mock_llm.script(
        [
            {"text": "never finished", "cut_after_events": 3, "usage": {"input": 900, "output": 70}},
            {"text": "second try", "usage": {"input": 900, "output": 12}},
        ]
    )
    res = _claude_run(claude, transcripts, "say hi", "--model", "claude-sonnet-4-5")
    assert res.text == "second try", res.run.stdout + res.run.stderr
    first, second = _hygiene(mock_llm, "anthropic", server_keys, alice.access_token)
    assert json.loads(first.body)["stream"] is True and json.loads(second.body).get("stream") in (False, None)

    cut = gateway.record(first.header("x-agentnet-request-id"), principal=ALICE)
    assert (cut["status"], cut["reason"], cut["stream"]) == (200, "upstream_stream_error", True)
    # message_start carried the input and a first output count; the final count never came.
    assert (cut["input_tokens"], cut["output_tokens"], cut["usage_reported"]) == (900, 1, True)
    retry = gateway.record(second.header("x-agentnet-request-id"), principal=ALICE)
    tokens = anthropic_tokens({"input": 900, "output": 12})
    assert_record(
        retry,
        principal=ALICE,
        provider="anthropic",
        api="anthropic",
        endpoint="messages",
        model="claude-sonnet-4-5",
        stream=False,
        tokens=tokens,
        cost=cost_micro_usd("claude-sonnet-4-5", tokens),
        session_id=res.result["session_id"],
    )


# ---- Codex ---------------------------------------------------------------------------------------------


@pytest.fixture
def codex(gateway, alice, tmp_path, transcripts):
    cx, setup = codex_via_setup(
        tmp_path / "codex", endpoint=gateway.ai_url, token_env=TOKEN_ENV, token=alice.access_token
    )
    transcripts.add("agentnet setup codex", setup.stdout + setup.stderr)
    cfg = tomllib.loads((cx.codex_home / "config.toml").read_text())
    assert cfg["model_provider"] == "agentnet"
    provider = cfg["model_providers"]["agentnet"]
    assert provider["base_url"].rstrip("/") == f"{gateway.ai_url}/v1"
    assert provider["wire_api"] == "responses"
    assert provider["env_key"] == TOKEN_ENV
    assert (provider["request_max_retries"], provider["stream_max_retries"]) == (0, 0)
    assert cfg["analytics"]["enabled"] is False and cfg["features"]["plugins"] is False
    assert alice.access_token not in (cx.codex_home / "config.toml").read_text()
    return cx


def _codex_exec(cx, transcripts, prompt, *args):
    res = cx.exec(prompt, *args)
    transcripts.add(f"codex exec {prompt!r}", res.run.stdout + res.run.stderr)
    return res


def test_codex_text_answer(codex, gateway, mock_llm, server_keys, alice, transcripts):
    usage = {"input": 5000, "output": 64, "cache_read": 4096, "reasoning": 16}
    mock_llm.script([{"text": "Hello from the gateway, Codex", "usage": usage}])
    res = _codex_exec(codex, transcripts, "say hi")
    assert res.ok, res.run.stdout + res.run.stderr
    assert res.agent_messages == ["Hello from the gateway, Codex"]
    assert res.usage["input_tokens"] == 5000 and res.usage["output_tokens"] == 64
    assert res.usage["cached_input_tokens"] == 4096
    thread_id = res.of_type("thread.started")[0]["thread_id"]

    (req,) = _hygiene(mock_llm, "openai", server_keys, alice.access_token)
    assert req.path == "/v1/responses"
    assert req.header("session-id") == thread_id
    model = json.loads(req.body)["model"]  # setup writes none: Codex's own default

    tokens = openai_tokens(usage)
    assert_record(
        gateway.record(req.header("x-agentnet-request-id"), principal=ALICE),
        principal=ALICE,
        provider="openai",
        api="openai",
        endpoint="responses",
        model=model,
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd(model, tokens) if model in PRICES else None,
        usage_reported=True,
        session_id=thread_id,
        policy="engineering-all",
    )


def test_codex_exec_command_round_trip(codex, gateway, mock_llm, server_keys, alice, transcripts):
    usage = {"input": 1200, "output": 20, "cache_read": 0, "reasoning": 0}
    mock_llm.script([{"shell": "echo tool-ok", "usage": usage}, {"text": "The command printed", "usage": usage}])
    # setup writes no `model`; Codex's built-in default (gpt-6.2-sol in 0.171) is offered no
    # tools at all, so pick a model from its list that has the exec_command tool.
    res = _codex_exec(codex, transcripts, "run the command", "--model", "gpt-5.5")
    assert res.ok, res.run.stdout + res.run.stderr
    assert any("tool-ok" in (c.get("aggregated_output") or "") for c in res.commands), res.items
    assert "tool-ok" in res.agent_messages[-1]
    thread_id = res.of_type("thread.started")[0]["thread_id"]

    first, second = _hygiene(mock_llm, "openai", server_keys, alice.access_token)
    assert json.loads(first.body)["model"] == "gpt-5.5"
    calls = [i for i in json.loads(second.body)["input"] if i.get("type") == "function_call"]
    outputs = [i for i in json.loads(second.body)["input"] if i.get("type") == "function_call_output"]
    assert calls[0]["name"] == "exec_command" and json.loads(calls[0]["arguments"])["cmd"] == "echo tool-ok"
    assert outputs[0]["call_id"] == calls[0]["call_id"] and "tool-ok" in json.dumps(outputs[0])

    for req in (first, second):
        assert req.header("session-id") == thread_id
        assert_record(
            gateway.record(req.header("x-agentnet-request-id"), principal=ALICE),
            principal=ALICE,
            provider="openai",
            api="openai",
            endpoint="responses",
            model=json.loads(req.body)["model"],
            stream=True,
            tokens=openai_tokens(usage),
            usage_reported=True,
            session_id=thread_id,
        )


# ---- what a refused user sees in the real CLIs --------------------------------------------------------

BOB = "bob@example.com"


def test_claude_code_for_a_user_without_anthropic_access(gateway, mock_llm, bob, tmp_path, transcripts):
    """bob (sales) has no anthropic policy: Claude Code shows the gateway's 403 message (after
    re-running its key helper and retrying, as it does on any 401/403), nothing reaches the
    upstream, and every attempt is recorded as a no_policy refusal in bob's session."""
    token_file = tmp_path / "bob.token"
    token_file.write_text(bob.access_token + "\n")
    cc, _ = claude_code_via_setup(tmp_path / "claude", endpoint=gateway.ai_url, token_command=f"cat {token_file}")
    before = {r["id"] for r in gateway.usage(principal=BOB)}
    res = _claude_run(cc, transcripts, "say hi")
    assert res.result["is_error"] is True
    assert res.result["api_error_status"] == 403
    assert res.result["api_error_type"] == "permission_error"
    assert "no policy allows you to use provider 'anthropic'" in res.text
    assert mock_llm.generation_requests() == []

    recs = gateway.records_where(lambda r: r["id"] not in before, count=1, principal=BOB)
    for r in recs:
        assert (r["status"], r["reason"], r["provider"], r["policy"]) == (403, "no_policy", "anthropic", None)
        assert r["session_id"] == res.result["session_id"] and r["cost_micro_usd"] == 0


def test_codex_for_a_user_limited_to_gpt_5_mini(gateway, mock_llm, server_keys, bob, tmp_path, transcripts):
    """bob may use openai's gpt-5-mini* only: Codex with gpt-5.5 fails with the gateway's
    message (one request, no retries configured), with gpt-5-mini it works."""
    cx, _ = codex_via_setup(tmp_path / "codex", endpoint=gateway.ai_url, token_env=TOKEN_ENV, token=bob.access_token)
    res = _codex_exec(cx, transcripts, "say hi", "--model", "gpt-5.5")
    assert not res.ok and res.of_type("turn.failed")
    msg = res.of_type("turn.failed")[0]["error"]["message"]
    assert "403" in msg and "model 'gpt-5.5' is not allowed for you on provider 'openai'" in msg
    assert mock_llm.generation_requests() == []
    denied = res.of_type("thread.started")[0]["thread_id"]
    (rec,) = gateway.records_where(lambda r: r["session_id"] == denied, count=1, principal=BOB)
    assert (rec["status"], rec["reason"], rec["model"], rec["endpoint"]) == (403, "model_not_allowed", "gpt-5.5", "responses")

    mock_llm.script([{"text": "Hello bob, on gpt-5-mini", "usage": {"input": 100, "output": 10}}])
    res = _codex_exec(cx, transcripts, "say hi", "--model", "gpt-5-mini")
    assert res.ok, res.run.stdout + res.run.stderr
    assert res.agent_messages == ["Hello bob, on gpt-5-mini"]
    (req,) = mock_llm.generation_requests()
    assert_upstream_hygiene(req, provider_kind="openai", server_key=server_keys.openai, forbidden=[bob.access_token])
    tokens = openai_tokens({"input": 100, "output": 10})
    assert_record(
        gateway.record(req.header("x-agentnet-request-id"), principal=BOB),
        principal=BOB,
        provider="openai",
        api="openai",
        endpoint="responses",
        model="gpt-5-mini",
        stream=True,
        tokens=tokens,
        cost=cost_micro_usd("gpt-5-mini", tokens),
        policy="sales-mini",
        session_id=res.of_type("thread.started")[0]["thread_id"],
    )

"""The real CLIs and SDKs against the bare mock upstream (no gateway): proves the mock speaks what
each client needs, and pins down what each client sends (the gateway must handle exactly this)."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from lib.clis import ClaudeCode, Codex

pytestmark = pytest.mark.clis

TOKEN = "tok-e2e-123"


def _json_body(req) -> dict:
    return json.loads(req.body)


# ---- Claude Code -------------------------------------------------------------------------------


@pytest.fixture
def claude(mock_llm, tmp_path) -> ClaudeCode:
    return ClaudeCode.configure(tmp_path / "claude", base_url=mock_llm.url, token=TOKEN)


def test_claude_code_says_hi(claude, mock_llm):
    res = claude.run("say hi")
    assert res.ok, res.run.stdout + res.run.stderr
    assert res.text == "Hello from mock"
    assert res.result["stop_reason"] == "end_turn"
    assert res.result["usage"]["input_tokens"] == 10 and res.result["usage"]["output_tokens"] == 5

    reqs = mock_llm.requests()
    gen = [r for r in reqs if r.method == "POST"]
    assert [r.path for r in gen] == ["/v1/messages?beta=true"], [(r.method, r.path) for r in reqs]
    assert {r.method for r in reqs} <= {"POST", "HEAD"}
    (req,) = gen
    assert req.header("x-api-key") == TOKEN
    assert req.header("authorization") == f"Bearer {TOKEN}"
    assert req.header("anthropic-version") == "2023-06-01"
    assert "claude-code-20250219" in req.header("anthropic-beta").split(",")
    assert req.header("x-app") == "cli"
    assert req.header("user-agent").startswith("claude-cli/2.1.")
    assert req.header("x-claude-code-session-id") == res.result["session_id"]
    assert "gzip" in req.header("accept-encoding")
    body = _json_body(req)
    assert body["stream"] is True
    assert body["model"]
    assert body["thinking"]["type"] == "adaptive"
    assert any(m["role"] == "system" for m in body["messages"])
    assert "Bash" in [t["name"] for t in body["tools"]]


def test_claude_code_tool_round_trip(claude, mock_llm):
    mock_llm.script([{"shell": "echo tool-ok"}])
    res = claude.run("run the command", allowed_tools=["Bash"])
    assert res.ok, res.run.stdout + res.run.stderr
    assert "tool-ok" in res.text

    first, second = mock_llm.generation_requests()
    assert "Bash" in [t["name"] for t in _json_body(first)["tools"]]
    last = _json_body(second)["messages"][-1]
    results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
    assert results and "tool-ok" in json.dumps(results)


def test_claude_code_accepts_gzip_from_upstream(claude, mock_llm):
    mock_llm.script([{"text": "compressed hello", "gzip": "auto"}])
    res = claude.run("say hi")
    assert res.ok and res.text == "compressed hello"


def test_claude_code_falls_back_to_non_streaming_on_a_cut_stream(claude, mock_llm):
    mock_llm.script([{"text": "never finished", "cut_after_events": 3}, {"text": "second try"}])
    res = claude.run("say hi")
    assert res.text == "second try", res.run.stdout + res.run.stderr
    first, second = mock_llm.generation_requests()
    assert _json_body(first)["stream"] is True
    assert _json_body(second).get("stream") in (False, None)


# ---- Codex -------------------------------------------------------------------------------------


@pytest.fixture
def codex(mock_llm, tmp_path) -> Codex:
    return Codex.configure(tmp_path / "codex", base_url=f"{mock_llm.url}/v1", token=TOKEN)


def test_codex_says_hi(codex, mock_llm):
    res = codex.exec("say hi")
    assert res.ok, res.run.stdout + res.run.stderr
    assert res.agent_messages == ["Hello from mock"]
    assert res.usage["input_tokens"] == 10 and res.usage["output_tokens"] == 5
    thread_id = res.of_type("thread.started")[0]["thread_id"]

    reqs = mock_llm.requests()
    assert [(r.method, r.path) for r in reqs] == [("POST", "/v1/responses")]
    (req,) = reqs
    assert req.header("authorization") == f"Bearer {TOKEN}"
    assert req.header("originator") == "codex_exec"
    assert req.header("session-id") == thread_id
    assert req.header("accept") == "text/event-stream"
    body = _json_body(req)
    assert body["stream"] is True and body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert "instructions" not in body and "previous_response_id" not in body
    assert {i.get("role") for i in body["input"] if i.get("type") == "message"} == {"developer", "user"}
    assert "exec_command" in [t.get("name") for t in body["tools"]]


def test_codex_tool_round_trip(codex, mock_llm):
    mock_llm.script([{"shell": "echo tool-ok"}])
    res = codex.exec("run the command")  # inside Codex's own read-only sandbox (works as root here)
    assert res.ok, res.run.stdout + res.run.stderr
    assert any("tool-ok" in (c.get("aggregated_output") or "") for c in res.commands), res.items
    assert "tool-ok" in res.agent_messages[-1]

    first, second = mock_llm.generation_requests()
    calls = [i for i in _json_body(second)["input"] if i.get("type") == "function_call"]
    outputs = [i for i in _json_body(second)["input"] if i.get("type") == "function_call_output"]
    assert calls[0]["name"] == "exec_command"
    assert json.loads(calls[0]["arguments"])["cmd"] == "echo tool-ok"
    assert outputs[0]["call_id"] == calls[0]["call_id"] and "tool-ok" in json.dumps(outputs[0])


def test_codex_without_env_key_sends_no_authorization(mock_llm, tmp_path):
    cx = Codex.configure(tmp_path / "codex", base_url=f"{mock_llm.url}/v1", token=None)
    res = cx.exec("say hi")
    assert res.ok, res.run.stdout + res.run.stderr
    (req,) = mock_llm.requests()
    assert req.header("authorization") is None


# ---- the official SDKs ---------------------------------------------------------------------------


def test_sdks_against_the_mock(mock_llm):
    a = anthropic.Anthropic(base_url=mock_llm.url, api_key=TOKEN, max_retries=0)
    msg = a.messages.create(model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "Hello from mock" and msg.usage.output_tokens == 5
    with a.messages.stream(model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        assert s.get_final_text() == "Hello from mock"

    o = openai.OpenAI(base_url=f"{mock_llm.url}/v1", api_key=TOKEN, max_retries=0)
    chat = o.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])
    assert chat.choices[0].message.content == "Hello from mock"
    resp = o.responses.create(model="gpt-5.5", input="hi")
    assert resp.output_text == "Hello from mock"
    stream = o.responses.create(model="gpt-5.5", input="hi", stream=True)
    done = [e for e in stream if e.type == "response.completed"]
    assert done and done[0].response.usage.output_tokens == 5

    # anthropic 2.x sends its api_key as `Authorization: Bearer` (no x-api-key) and a newer
    # anthropic-version than Claude Code's 2023-06-01: a gateway must take both.
    auth = {(r.path_only, r.header("x-api-key") or r.header("authorization")) for r in mock_llm.requests()}
    assert auth == {
        ("/v1/messages", f"Bearer {TOKEN}"),
        ("/v1/chat/completions", f"Bearer {TOKEN}"),
        ("/v1/responses", f"Bearer {TOKEN}"),
    }

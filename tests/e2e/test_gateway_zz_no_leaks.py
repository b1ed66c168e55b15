"""No key leaks: after the session's gateway traffic (this file sorts after the other
test_gateway_* files), the provider keys the gateway holds appear nowhere but at the upstream:
not in any server's log (debug level for agentnet's crates), not in any file of its data dir (the
database, its WAL, the master key file), not in anything a client received (every SDK response
head and body, every CLI's output). The callers' IdP tokens are not logged or stored either.

Run alone, it first sends its own traffic through every API, so the scan is never vacuous.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from lib.gateway import data_dir_files


def _needles(secret: str) -> list[str]:
    """The secret, and its random part alone (in case something re-encodes the prefix)."""
    return [secret, secret.rsplit("-", 1)[-1]]


@pytest.fixture(scope="module")
def traffic(gateway, transcripts, _mock_llm_process, alice, bob, ci_bot):
    """A little of everything through the suite's gateway: successes, a refusal, a 401."""
    recorder = transcripts.recorder
    _mock_llm_process.reset()
    a = recorder.anthropic(base_url=gateway.ai_url, api_key=alice.access_token)
    o = recorder.openai(base_url=gateway.ai_url, api_key=alice.access_token)
    a.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    with a.messages.stream(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as s:
        s.get_final_text()
    list(o.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True))
    list(o.responses.create(model="gpt-5", input="hi", stream=True))
    o.embeddings.create(model="text-embedding-3-small", input="hi")
    o.models.list()
    recorder.openai(base_url=gateway.ai_url, api_key=ci_bot.access_token).chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(anthropic.PermissionDeniedError):
        recorder.anthropic(base_url=gateway.ai_url, api_key=bob.access_token).messages.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.AuthenticationError):
        recorder.openai(base_url=gateway.ai_url, api_key="garbage").chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi"}]
        )
    # Every record written (the writer is asynchronous) before anything is scanned.
    gateway.records_where(lambda r: r["reason"] == "token_malformed", count=1)
    # The keys did reach the upstream: the scan below looks for strings that really flowed.
    assert _mock_llm_process.requests(), "no upstream traffic"
    return gateway


def _sources(transcripts):
    """(name, bytes) of everything to scan."""
    out: list[tuple[str, bytes]] = []
    for gw in transcripts.gateways:
        out.append((f"{gw.proc.name} stderr log {gw.proc.stderr_log}", gw.proc.stderr_log.read_bytes()))
        out.append((f"{gw.proc.name} stdout log {gw.proc.stdout_log}", gw.proc.stdout_log.read_bytes()))
        for f in data_dir_files(gw.data_dir):
            out.append((f"{gw.proc.name} data file {f}", f.read_bytes()))
    for name, text in transcripts.everything():
        out.append((f"client received: {name}", text.encode("utf-8", errors="replace")))
    return out


def test_scan_material_is_not_vacuous(traffic, transcripts, server_keys, _mock_llm_process):
    # The needles are right: they are found where the keys belong, at the upstream.
    upstream = json.dumps([r.headers for r in _mock_llm_process.requests()])
    assert all(n in upstream for key in server_keys.all() for n in _needles(key))
    assert transcripts.gateways and transcripts.recorder.exchanges
    for gw in transcripts.gateways:
        settled = [e for e in gw.log_events() if e.get("fields", {}).get("message") == "request settled"]
        assert settled, f"{gw.proc.name} logged no settled requests"
        names = {f.name for f in data_dir_files(gw.data_dir)}
        assert "agentnet.db" in names, names
    assert any(e.header("x-agentnet-request-id") for e in transcripts.recorder.exchanges)


def test_provider_keys_never_leave_for_anywhere_but_the_upstream(traffic, transcripts, server_keys):
    leaks = []
    for name, data in _sources(transcripts):
        for key in server_keys.all():
            for needle in _needles(key):
                if needle.encode() in data:
                    leaks.append(f"{name} contains {needle[:24]}…")
    assert not leaks, "provider key leaked:\n" + "\n".join(leaks)


def test_caller_tokens_are_not_logged_or_stored(traffic, transcripts, alice, bob, ci_bot):
    tokens = {"alice": alice.access_token, "bob": bob.access_token, "ci-bot": ci_bot.access_token}
    leaks = []
    for name, data in _sources(transcripts):
        if name.startswith("client received"):
            continue  # a client may see its own token (e.g. in a CLI's own output); the server may not
        for who, token in tokens.items():
            # The signature segment is the secret-bearing, unique part of a JWT.
            if token.encode() in data or token.rsplit(".", 1)[-1].encode() in data:
                leaks.append(f"{name} contains {who}'s access token")
    assert not leaks, "caller token logged or stored:\n" + "\n".join(leaks)


def test_server_logs_are_json_events_without_panics_or_errors(traffic, transcripts):
    for gw in transcripts.gateways:
        text = gw.proc.stderr_log.read_text(errors="replace")
        assert "panicked at" not in text, f"{gw.proc.name} panicked:\n{text[-4000:]}"
        for line in text.splitlines():
            if line.strip():
                event = json.loads(line)  # a non-JSON line is output that bypassed the subscriber
                assert event["level"] != "ERROR", line

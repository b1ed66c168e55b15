"""Default-deny policies through the SDKs: bob (sales) may use openai's gpt-5-mini* only, the
ci-bot agent (client credentials, group `ci` given by the gateway config) may use openai. A
refusal is a 403 in the called API's error shape with the reason code, is never forwarded, and
is recorded."""

from __future__ import annotations

import anthropic
import openai
import pytest

from lib.checks import assert_record, assert_upstream_hygiene, cost_micro_usd, openai_tokens, upstream_for

BOB = "bob@example.com"


def _no_generation_upstream(mock_llm):
    assert mock_llm.generation_requests() == [], "a refused request reached the upstream"


# ---- bob ---------------------------------------------------------------------------------------------


def test_bob_has_no_policy_for_anthropic(recorder, gateway, mock_llm, bob):
    client = recorder.anthropic(base_url=gateway.ai_url, api_key=bob.access_token)
    with pytest.raises(anthropic.PermissionDeniedError) as err:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    e = err.value
    assert e.status_code == 403
    body = e.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "permission_error"
    assert body["error"]["reason"] == "no_policy"
    assert "anthropic" in body["error"]["message"]
    assert e.response.headers["x-agentnet-reason"] == "no_policy"
    _no_generation_upstream(mock_llm)

    assert_record(
        gateway.record(e.response.headers["x-agentnet-request-id"], principal=BOB),
        principal=BOB,
        provider="anthropic",
        api="anthropic",
        endpoint="messages",
        model="claude-sonnet-4-5",
        stream=False,
        status=403,
        reason="no_policy",
        cost=0,
        policy=None,
        groups=["sales"],
        usage_reported=False,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_bob_may_not_use_gpt_5(stream, recorder, gateway, mock_llm, bob):
    client = recorder.openai(base_url=gateway.ai_url, api_key=bob.access_token)
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=stream)
    e = err.value
    assert e.status_code == 403
    body = e.response.json()
    assert body["error"]["type"] == "permission_error"
    assert body["error"]["code"] == "model_not_allowed"
    assert e.code == "model_not_allowed"
    _no_generation_upstream(mock_llm)
    assert_record(
        gateway.record(e.response.headers["x-agentnet-request-id"], principal=BOB),
        principal=BOB,
        provider="openai",
        api="openai",
        endpoint="chat_completions",
        model="gpt-5",
        stream=stream,
        status=403,
        reason="model_not_allowed",
        cost=0,
    )


def test_bob_may_not_use_gpt_5_through_responses_either(recorder, gateway, mock_llm, bob):
    client = recorder.openai(base_url=gateway.ai_url, api_key=bob.access_token)
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.responses.create(model="gpt-5", input="hi", stream=True)
    assert err.value.response.json()["error"]["code"] == "model_not_allowed"
    _no_generation_upstream(mock_llm)


def test_bob_may_use_gpt_5_mini(recorder, gateway, mock_llm, server_keys, bob):
    usage = {"input": 60, "output": 7}
    mock_llm.script([{"text": "hi bob", "usage": usage}, {"text": "hi again bob", "usage": usage}])
    client = recorder.openai(base_url=gateway.ai_url, api_key=bob.access_token)
    for model, want in (("gpt-5-mini", "hi bob"), ("gpt-5-mini-2025-08-07", "hi again bob")):
        chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content == want
        rid = recorder.last().request_id
        req = upstream_for(mock_llm.requests(), rid)
        assert_upstream_hygiene(req, provider_kind="openai", server_key=server_keys.openai, forbidden=[bob.access_token])
        assert (req.header("x-agentnet-user"), req.header("x-agentnet-groups")) == (BOB, "sales")
        tokens = openai_tokens(usage)
        assert_record(
            gateway.record(rid, principal=BOB),
            principal=BOB,
            provider="openai",
            api="openai",
            endpoint="chat_completions",
            model=model,
            stream=False,
            tokens=tokens,
            cost=cost_micro_usd("gpt-5-mini", tokens),
            policy="sales-mini",
        )


def test_bob_sees_only_the_models_he_may_use(recorder, gateway, mock_llm, bob):
    oa = recorder.openai(base_url=gateway.ai_url, api_key=bob.access_token)
    ids = [m.id for m in oa.models.list()]
    # The mock lists gpt-5.5, gpt-5, gpt-4o…, no gpt-5-mini*: bob's policy leaves nothing.
    assert all(i.startswith("gpt-5-mini") for i in ids), ids
    assert not {"gpt-5", "gpt-5.5", "gpt-4o"} & set(ids)
    an = recorder.anthropic(base_url=gateway.ai_url, api_key=bob.access_token)
    assert [m.id for m in an.models.list()] == []


# ---- the ci-bot agent --------------------------------------------------------------------------------


def test_ci_bot_agent_is_allowed_on_openai(recorder, gateway, mock_llm, server_keys, ci_bot):
    claims = ci_bot.claims()
    assert "email" not in claims and claims["sub"] == "ci-bot"  # a real client-credentials token
    usage = {"input": 250, "output": 25, "cache_read": 50}
    mock_llm.script([{"text": "hello agent", "usage": usage}])
    client = recorder.openai(base_url=gateway.ai_url, api_key=ci_bot.access_token)
    resp = client.responses.create(model="gpt-5-mini", input="run the nightly job")
    assert resp.output_text == "hello agent"
    rid = recorder.last().request_id

    req = upstream_for(mock_llm.requests(), rid)
    assert_upstream_hygiene(req, provider_kind="openai", server_key=server_keys.openai, forbidden=[ci_bot.access_token])
    assert (req.header("x-agentnet-user"), req.header("x-agentnet-groups")) == ("ci-bot", "ci")
    assertion = gateway.assertion_claims(req.header("x-agentnet-assertion"), audience="openai")
    assert assertion["kind"] == "agent" and assertion["name"] == "ci-bot" and "email" not in assertion
    assert assertion["groups"] == ["ci"]

    tokens = openai_tokens(usage)
    assert_record(
        gateway.record(rid, principal="ci-bot"),
        principal="ci-bot",
        provider="openai",
        api="openai",
        endpoint="responses",
        model="gpt-5-mini",
        stream=False,
        tokens=tokens,
        cost=cost_micro_usd("gpt-5-mini", tokens),
        principal_kind="agent",
        subject="ci-bot",
        groups=["ci"],
        policy="ci-openai",
    )


def test_ci_bot_agent_has_no_policy_for_anthropic(recorder, gateway, mock_llm, ci_bot):
    client = recorder.anthropic(base_url=gateway.ai_url, api_key=ci_bot.access_token)
    with pytest.raises(anthropic.PermissionDeniedError) as err:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert err.value.response.json()["error"]["reason"] == "no_policy"
    _no_generation_upstream(mock_llm)
    rec = gateway.record(err.value.response.headers["x-agentnet-request-id"], principal="ci-bot")
    assert (rec["principal_kind"], rec["status"], rec["reason"]) == ("agent", 403, "no_policy")


def test_ci_bot_sees_every_openai_model(recorder, gateway, mock_llm, ci_bot):
    ids = [m.id for m in recorder.openai(base_url=gateway.ai_url, api_key=ci_bot.access_token).models.list()]
    assert {"gpt-5.5", "gpt-5", "gpt-4o", "gpt-4o-mini", "text-embedding-3-small"} <= set(ids)

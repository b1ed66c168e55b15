"""What reaches the upstream through the real gateway: the server-held key instead of the user's
token, the identity the gateway stamps (and nothing a client claims about itself), and a signed
assertion an upstream can verify against the gateway's JWKS."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
import requests

from lib.checks import assert_upstream_hygiene, upstream_for

ALICE = "alice@example.com"

SPOOFED = {
    "X-Agentnet-User": "mallory@example.com",
    "X-Agentnet-Groups": "admins,finance",
    "X-Agentnet-Request-Id": "spoofed-request-id",
    "X-Agentnet-Assertion": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.",
    "X-Litellm-End-User-Id": "mallory",
    "Cookie": "session=mallory-session-cookie",
}


def _requests() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def test_admin_listener_health_and_jwks(gateway):
    assert _requests().get(f"{gateway.admin_url}/healthz", timeout=10).status_code == 200
    keys = gateway.jwks()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA" for k in keys)
    assert all("d" not in k for k in keys), "private key material in the assertion JWKS"


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_upstream_sees_server_key_and_stamped_identity_only(
    api, recorder, gateway, mock_llm, server_keys, alice, bob, ci_bot
):
    if api == "anthropic":
        client = recorder.anthropic(base_url=gateway.ai_url, api_key=alice.access_token)
        # Claude Code sends its token in both credential headers: the gateway strips both.
        headers = {**SPOOFED, "x-api-key": alice.access_token}
        client.messages.create(
            model="claude-opus-4-1", max_tokens=32, messages=[{"role": "user", "content": "hi"}], extra_headers=headers
        )
        server_key, other_key = server_keys.anthropic, server_keys.openai
    else:
        client = recorder.openai(base_url=gateway.ai_url, api_key=alice.access_token)
        headers = {**SPOOFED, "x-api-key": alice.access_token, "api-key": alice.access_token}
        client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi"}], extra_headers=headers
        )
        server_key, other_key = server_keys.openai, server_keys.anthropic
    ex = recorder.last()
    assert ex.status == 200
    rid = ex.request_id
    assert rid and rid != "spoofed-request-id"

    reqs = mock_llm.requests()
    req = upstream_for(reqs, rid)
    # The server's key in the provider's header; no user token (nor other tokens of the suite,
    # nor the other provider's key) in any header or body of anything the upstream received.
    forbidden = [alice.access_token, bob.access_token, ci_bot.access_token, other_key, "mallory"]
    for r in reqs:
        assert_upstream_hygiene(r, provider_kind=api, server_key=server_key, forbidden=forbidden)
    assert req.header("api-key") is None and req.header("cookie") is None
    assert req.header("x-litellm-end-user-id") is None  # no gateway preset on this provider

    # The stamp: who the IdP says the caller is, not what the client claimed.
    assert req.header("x-agentnet-user") == ALICE
    assert req.header("x-agentnet-groups") == "engineering"
    assert req.header("x-agentnet-request-id") == rid
    assertion = req.header("x-agentnet-assertion")
    claims = gateway.assertion_claims(assertion, audience=api)
    assert claims["iss"] == "agentnet"
    assert claims["aud"] == api
    assert claims["email"] == ALICE and claims["name"] == ALICE
    assert claims["sub"] == "usr_alice"
    assert claims["kind"] == "user"
    assert claims["groups"] == ["engineering"]
    assert claims["jti"] == rid
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert jwt.get_unverified_header(assertion)["alg"] == "EdDSA"

    # An assertion for one provider is not valid for another.
    other = "openai" if api == "anthropic" else "anthropic"
    with pytest.raises(jwt.InvalidAudienceError):
        gateway.assertion_claims(assertion, audience=other)
    # And it is really signed: flip one payload claim, keep the signature.
    head, payload, sig = assertion.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["email"] = "mallory@example.com"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        gateway.assertion_claims(f"{head}.{forged_payload}.{sig}", audience=api)

    # The record agrees with the stamp.
    rec = gateway.record(rid, principal=ALICE)
    assert (rec["principal"], rec["groups"], rec["provider"]) == (ALICE, ["engineering"], api)


def test_response_to_client_carries_no_upstream_secrets(recorder, gateway, mock_llm, server_keys, alice):
    client = recorder.openai(base_url=gateway.ai_url, api_key=alice.access_token)
    stream = client.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    list(stream)
    ex = recorder.last()
    for key in server_keys.all():
        assert key not in ex.all_text()
    assert ex.header("x-agentnet-request-id")

"""Tokens the gateway must refuse, through the official SDKs: 401 in the called API's error shape
(the SDKs raise AuthenticationError), `WWW-Authenticate: Bearer`, the reason code, nothing
forwarded, one record without a principal.

Tokens come from the real IdP where it can make them (alice's ID token: right issuer and key,
wrong audience), are crafted by hand where no IdP would sign them (`alg: none`, garbage, a
tampered payload), and come from a second issuer whose key the test holds (lib/forge_idp.py) for
the claims a real IdP cannot be asked to get wrong on demand: an access token that expired an
hour ago, another audience, another issuer, another key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import anthropic
import openai
import pytest
import requests

from lib.forge_idp import new_rsa_key, start_forge_idp, unsigned_token
from lib.gateway import GatewayConfig, start_gateway
from lib.idp_tokens import unverified_claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refused(gateway, mock_llm, recorder, call, *, api: str, reason: str) -> None:
    """`call` must raise the SDK's AuthenticationError for a gateway 401 with `reason`."""
    exc = anthropic.AuthenticationError if api == "anthropic" else openai.AuthenticationError
    with pytest.raises(exc) as err:
        call()
    e = err.value
    assert e.status_code == 401
    body = e.response.json()
    if api == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
        assert body["error"]["reason"] == reason, body
    else:
        assert body["error"]["type"] == "authentication_error"
        assert body["error"]["code"] == reason, body
    assert e.response.headers["www-authenticate"] == "Bearer"
    assert e.response.headers["x-agentnet-reason"] == reason
    assert mock_llm.generation_requests() == [], "an unauthenticated request reached the upstream"
    rec = gateway.record(e.response.headers["x-agentnet-request-id"])
    assert (rec["status"], rec["reason"], rec["principal"], rec["principal_kind"]) == (401, reason, None, None)
    assert rec["provider"] is None and rec["cost_micro_usd"] == 0


def _calls(recorder, gateway, token: str):
    """One Anthropic and one OpenAI call with `token` as the SDK's api_key."""
    a = recorder.anthropic(base_url=gateway.ai_url, api_key=token)
    o = recorder.openai(base_url=gateway.ai_url, api_key=token)
    return {
        "anthropic": lambda: a.messages.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ),
        "openai": lambda: o.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]),
    }


# ---- against the suite's gateway (trusting the real IdP) ---------------------------------------------


def _alg_none(alice) -> str:
    """alice's real claims under a hand-written `{"alg":"none"}` header, no signature."""
    return unsigned_token(unverified_claims(alice.access_token), {"alg": "none"})


def _alg_none_with_signature(alice) -> str:
    """The same, keeping the original signature bytes (a verifier must not just skip the check)."""
    head = _b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    _, payload, sig = alice.access_token.split(".")
    return f"{head}.{payload}.{sig}"


def _tampered(alice) -> str:
    """alice's token with one more group in the payload and the original signature."""
    head, payload, sig = alice.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = [*claims.get("groups", []), "agentnet-admins"]
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"


def _id_token(alice) -> str:
    """alice's ID token: signed by the IdP, but for the CLI client (aud agentnet-cli), not the gateway."""
    assert alice.id_token and unverified_claims(alice.id_token)["aud"] == "agentnet-cli"
    return alice.id_token


CASES = {
    "garbage": (lambda alice: "not-a-jwt", "token_malformed"),
    "three garbage segments": (lambda alice: "aaa.bbb.ccc", "token_malformed"),
    "alg none": (_alg_none, "token_algorithm_unsupported"),
    "alg none with the signature kept": (_alg_none_with_signature, "token_algorithm_unsupported"),
    "tampered payload": (_tampered, "token_signature_invalid"),
    "id token (wrong audience)": (_id_token, "token_audience_invalid"),
}


@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_token_is_refused(case, api, recorder, gateway, mock_llm, alice):
    make, reason = CASES[case]
    token = make(alice)
    _refused(gateway, mock_llm, recorder, _calls(recorder, gateway, token)[api], api=api, reason=reason)


def test_no_credential_at_all(gateway, mock_llm):
    s = requests.Session()
    s.trust_env = False
    r = s.post(
        f"{gateway.ai_url}/v1/messages",
        headers={"anthropic-version": "2023-06-01", "content-type": "application/json"},
        json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert r.status_code == 401
    assert r.json()["error"]["reason"] == "token_missing"
    assert r.headers["www-authenticate"] == "Bearer"
    assert mock_llm.generation_requests() == []


def test_the_real_token_works_in_either_credential_header(gateway, mock_llm, alice):
    """Control for the refusals above: the same request with alice's token as issued."""
    s = requests.Session()
    s.trust_env = False
    body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({"authorization": f"Bearer {alice.access_token}"}, {"x-api-key": alice.access_token}):
        r = s.post(
            f"{gateway.ai_url}/v1/messages", headers={"anthropic-version": "2023-06-01", **headers}, json=body, timeout=10
        )
        assert r.status_code == 200, r.text
    assert len(mock_llm.generation_requests()) == 2


# ---- against a gateway trusting an issuer whose key the test holds -----------------------------------


@pytest.fixture(scope="module")
def forge_gateway(_mock_llm_process, server_keys, transcripts, tmp_path_factory):
    with start_forge_idp() as forge:
        root = tmp_path_factory.mktemp("forge-gateway")
        cfg = GatewayConfig(issuer=forge.issuer, data_dir=root / "data")
        cfg.provider("anthropic", "anthropic", _mock_llm_process.url, key_env=server_keys.anthropic_env)
        cfg.provider("openai", "openai", _mock_llm_process.url, key_env=server_keys.openai_env)
        cfg.policy("engineering-all", groups=["engineering"], providers=["anthropic", "openai"])
        with start_gateway(cfg, env=server_keys.env(), name="agentnet-forge") as gw:
            transcripts.gateways.append(gw)
            yield forge, gw


def _hs256_with_public_key(forge) -> str:
    """Algorithm confusion: HS256 keyed with the issuer's public key PEM."""
    claims = forge.claims(sub="usr_alice", email="alice@example.com", groups=["engineering"])
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": forge.kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    sig = hmac.new(forge.public_pem(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{_b64(sig)}"


ALICE_CLAIMS = {"sub": "usr_alice", "email": "alice@example.com", "groups": ["engineering"]}

FORGED = {
    "expired an hour ago": (lambda f: f.mint(**ALICE_CLAIMS, exp_in=-3600), "token_expired"),
    "wrong audience": (lambda f: f.mint(**ALICE_CLAIMS, aud="some-other-api"), "token_audience_invalid"),
    "wrong issuer": (lambda f: f.mint(**ALICE_CLAIMS, iss="https://idp.evil.example"), "token_issuer_invalid"),
    "signed by another key (same kid)": (lambda f: f.mint(**ALICE_CLAIMS, key=new_rsa_key()), "token_signature_invalid"),
    "unknown kid": (lambda f: f.mint(**ALICE_CLAIMS, key=new_rsa_key(), kid="not-in-the-jwks"), "token_key_unknown"),
    "HS256 keyed with the public key": (_hs256_with_public_key, "token_algorithm_unsupported"),
    "email not verified": (lambda f: f.mint(**ALICE_CLAIMS, email_verified=False), "token_email_unverified"),
}


def test_forged_control_token_is_accepted(forge_gateway, recorder, mock_llm):
    """The issuer and the token shape are right: only the one claim each case below breaks is."""
    forge, gw = forge_gateway
    token = forge.mint(**ALICE_CLAIMS)
    for call in _calls(recorder, gw, token).values():
        call()
    assert len(mock_llm.generation_requests()) == 2
    recs = gw.records_where(lambda r: r["status"] == 200, count=2, principal="alice@example.com")
    assert {r["provider"] for r in recs} == {"anthropic", "openai"}


@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize("case", list(FORGED))
def test_forged_token_is_refused(case, api, forge_gateway, recorder, mock_llm):
    forge, gw = forge_gateway
    make, reason = FORGED[case]
    token = make(forge)
    _refused(gw, mock_llm, recorder, _calls(recorder, gw, token)[api], api=api, reason=reason)

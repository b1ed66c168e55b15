"""The test IdP issues what the gateway will verify: JWT access tokens for audience `agentnet`
with identity claims, through the flows real clients use (device flow, client credentials,
refresh)."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from lib.idp_tokens import (
    ApprovalError,
    TokenError,
    approve_device_code,
    client_credentials,
    device_flow_login,
    device_token_once,
    poll_device_token,
    refresh,
    start_device_authorization,
    start_idp,
    unverified_claims,
    unverified_header,
)


def test_discovery_and_jwks(idp):
    d = idp.discovery()
    assert d["issuer"] == idp.issuer
    assert d["jwks_uri"] == f"{idp.issuer}/jwks"
    assert d["device_authorization_endpoint"] == f"{idp.issuer}/device/auth"
    assert "client_credentials" in d["grant_types_supported"]
    assert {"email", "groups"} <= set(d["claims_supported"])
    keys = requests.get(d["jwks_uri"], timeout=10).json()["keys"]
    assert {k["alg"] for k in keys} == {"RS256", "ES256"}
    assert all("d" not in k for k in keys), "private key material in the JWKS"


def test_device_flow_user_token(idp, alice):
    header = unverified_header(alice.access_token)
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    claims = idp.verify(alice.access_token)
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == "agentnet"
    assert claims["sub"] == "usr_alice"
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["engineering"]
    assert claims["client_id"] == "agentnet-cli"
    assert claims["scope"] == "gateway"
    assert claims["exp"] > time.time() + 3000
    # ID token: for the CLI (aud = client), with email and groups directly in it.
    idt = unverified_claims(alice.id_token)
    assert idt["aud"] == "agentnet-cli"
    assert idt["email"] == "alice@example.com" and idt["groups"] == ["engineering"]
    assert alice.refresh_token


def test_login_by_email_sub_or_local_part_is_the_same_account(idp, bob):
    assert idp.verify(bob.access_token)["sub"] == "usr_bob"
    for login in ("usr_bob", "bob"):
        c = idp.verify(device_flow_login(idp.issuer, login).access_token)
        assert (c["sub"], c["groups"]) == ("usr_bob", ["sales"])


def test_wrong_password_and_unknown_user_get_no_token(idp):
    for login, password in (("alice@example.com", "nope"), ("mallory@example.com", "x")):
        da = start_device_authorization(idp.issuer)
        with pytest.raises(ApprovalError):
            approve_device_code(da.verification_uri_complete, login, password=password)
        with pytest.raises(TokenError) as e:
            device_token_once(idp.issuer, da.device_code)
        assert e.value.body["error"] == "authorization_pending"


def test_denied_device_code(idp):
    da = start_device_authorization(idp.issuer)
    assert da.interval == 1  # rewritten from RFC 8628's 5 s
    approve_device_code(da.verification_uri_complete, "alice", deny=True)
    with pytest.raises(TokenError) as e:
        poll_device_token(idp.issuer, da.device_code)
    assert e.value.body["error"] == "access_denied"


def test_refresh_keeps_audience_and_claims(idp, alice):
    fresh = refresh(idp.issuer, alice.refresh_token)
    claims = idp.verify(fresh.access_token)
    assert claims["aud"] == "agentnet" and claims["email"] == "alice@example.com"
    assert claims["jti"] != alice.claims()["jti"]
    assert fresh.refresh_token and fresh.refresh_token != alice.refresh_token  # rotated


def test_client_credentials_token(idp, ci_bot):
    claims = idp.verify(ci_bot.access_token)
    assert claims["sub"] == "ci-bot" and claims["client_id"] == "ci-bot"
    assert claims["aud"] == "agentnet"
    assert "email" not in claims and "groups" not in claims
    post = client_credentials(idp.issuer, ("nightly-agent", "nightly-agent-secret"), auth_method="client_secret_post")
    assert idp.verify(post.access_token)["client_id"] == "nightly-agent"
    with pytest.raises(TokenError) as e:
        client_credentials(idp.issuer, ("ci-bot", "wrong-secret"))
    assert e.value.status == 401 and e.value.body["error"] == "invalid_client"


def test_tokens_fail_verification_for_another_audience_or_issuer(idp, alice):
    with pytest.raises(jwt.InvalidAudienceError):
        idp.verify(alice.access_token, audience="someone-else")
    with pytest.raises(jwt.InvalidIssuerError):
        idp.verify(alice.access_token, issuer="http://127.0.0.1:1")


def test_group_change_shows_in_next_token(idp):
    users = {u["sub"]: u for u in idp.users()}
    carol = dict(users["usr_carol"], password="carol-pass")
    assert carol["groups"] == ["platform", "agentnet-admins"]
    idp.put_user(dict(carol, groups=["platform"]))
    try:
        claims = idp.verify(device_flow_login(idp.issuer, "carol@example.com").access_token)
        assert claims["groups"] == ["platform"]
    finally:
        idp.put_user(carol)


def test_custom_audience_es256_and_short_ttl():
    with start_idp(audience="https://agentnet.corp.example", access_token_alg="ES256", access_token_ttl=2) as p:
        t = client_credentials(p.issuer)
        assert unverified_header(t.access_token)["alg"] == "ES256"
        assert p.verify(t.access_token)["aud"] == "https://agentnet.corp.example"
        u = device_flow_login(p.issuer, "alice")
        assert p.verify(u.access_token)["email"] == "alice@example.com"
        time.sleep(3)
        with pytest.raises(jwt.ExpiredSignatureError):
            p.verify(u.access_token)

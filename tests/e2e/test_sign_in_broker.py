"""Sign-in brokered by agentnet to the real OIDC provider (npm `oidc-provider`), at the HTTP level
the `agentnet` CLI speaks: the device flow approved by a scripted form post at the IdP, auth code +
PKCE with a loopback redirect driven through the IdP's interaction pages, a refresh that picks up
groups changed at the IdP, sign-out, and the session token on the AI endpoint through the official
SDK, attributed in the usage records.

The gateway here is the server with `[oidc] client_id = "agentnet-server"` (a confidential client
of the test IdP, idp/clients.json). People are added to the IdP per test so that changing their
groups does not disturb other tests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urljoin, urlparse

import anthropic
import openai
import pytest
import requests

from conftest import gateway_config
from lib.gateway import Gateway, start_gateway
from lib.idp_tokens import Idp, _forms, approve_device_code

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _http() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


@pytest.fixture(scope="module")
def broker(idp: Idp, _mock_llm_process, server_keys, tmp_path_factory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("broker")
    cfg = gateway_config(idp.issuer, _mock_llm_process.url, root / "data", server_keys)
    cfg.oidc.update(
        {
            "client_id": "agentnet-server",
            "scopes": ["openid", "email", "profile", "groups", "offline_access", "gateway"],
        }
    )
    env = dict(server_keys.env())
    env["AGENTNET__OIDC__CLIENT_SECRET"] = "agentnet-server-secret"
    with start_gateway(cfg, env=env, name="agentnet-broker") as gw:
        yield gw


def _person(idp: Idp, name: str, groups: list[str]) -> str:
    email = f"{name}-{secrets.token_hex(3)}@example.com"
    idp.put_user({"sub": f"usr_{email.split('@')[0]}", "email": email, "name": name, "password": f"{name}-pass", "groups": groups})
    return email


def _device_sign_in(gw: Gateway, email: str, password: str) -> dict:
    s = _http()
    started = s.post(f"{gw.admin_url}/auth/device", data={"client": "e2e"}, timeout=10)
    assert started.status_code == 200, started.text
    da = started.json()
    # The person's part happens at the IdP: the code is the IdP's, the page is the IdP's.
    assert da["verification_uri_complete"].startswith(gw_issuer(gw)), da
    first = s.post(f"{gw.admin_url}/auth/token", data={"grant_type": DEVICE_GRANT, "device_code": da["device_code"]}, timeout=10)
    assert first.status_code == 400 and first.json()["error"] == "authorization_pending", first.text
    approve_device_code(da["verification_uri_complete"], email, password=password)
    deadline = time.monotonic() + 30
    while True:
        time.sleep(da["interval"])
        r = s.post(f"{gw.admin_url}/auth/token", data={"grant_type": DEVICE_GRANT, "device_code": da["device_code"]}, timeout=15)
        if r.status_code == 200:
            assert r.headers["cache-control"] == "no-store"
            return r.json()
        assert r.json()["error"] in ("authorization_pending", "slow_down"), r.text
        assert time.monotonic() < deadline, "device code not approved within 30 s"


def gw_issuer(gw: Gateway) -> str:
    return next(line.split("=", 1)[1].strip().strip('"') for line in gw.config_path.read_text().splitlines() if line.startswith("issuer"))


def test_device_flow_brokered_to_the_idp_gives_a_session_the_ai_endpoint_takes(broker, idp, mock_llm, recorder):
    email = _person(idp, "dana", ["engineering"])
    session = _device_sign_in(broker, email, "dana-pass")
    assert session["identity"]["name"] == email
    assert session["identity"]["kind"] == "user"
    assert session["identity"]["groups"] == ["engineering"]
    access = session["access_token"]
    assert access.startswith("agentnet_at_") and session["refresh_token"].startswith("agentnet_rt_")

    client = recorder.anthropic(base_url=broker.ai_url, api_key=access)
    reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert reply.content
    rec = broker.records_where(lambda r: r["principal"] == email, count=1, principal=email)[0]
    assert rec["principal_kind"] == "user" and rec["policy"] == "engineering-all" and rec["status"] == 200

    # The IdP's tokens never reach the client: what it holds is agentnet's.
    assert "." not in access, "an agentnet access token is opaque, not a JWT"
    me = _http().get(f"{broker.admin_url}/api/v1/me", headers={"authorization": f"Bearer {access}"}, timeout=10).json()
    assert me["principal"] == email
    sessions = broker.admin_get("/api/v1/sessions", name=email)
    assert [s["source"] for s in sessions] == ["oidc"] and sessions[0]["client"] == "e2e"
    audit = broker.admin_get("/api/v1/audit", action="session.sign_in", actor=email)
    assert [e["action"] for e in audit] == ["session.sign_in.device"]
    # Who signed in is read from the OIDC ID token (audience: the server's client id).
    seen = [e for e in broker.log_events() if e.get("fields", {}).get("message") == "identity from the identity provider"
            and e["fields"].get("principal") == email]
    assert seen and seen[0]["fields"]["token"] == "ID token", seen


def test_refresh_rechecks_the_idp_and_picks_up_changed_groups(broker, idp, mock_llm, recorder):
    email = _person(idp, "erin", ["engineering"])
    session = _device_sign_in(broker, email, "erin-pass")
    sub = f"usr_{email.split('@')[0]}"
    idp.put_user({"sub": sub, "email": email, "name": "erin", "password": "erin-pass", "groups": ["sales"]})

    r = _http().post(f"{broker.admin_url}/auth/token", data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}, timeout=15)
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["identity"]["groups"] == ["sales"], fresh["identity"]
    assert fresh["refresh_token"] != session["refresh_token"]

    # The old access token is gone; the new one carries the new groups: sales may not use Claude.
    with pytest.raises(anthropic.AuthenticationError):
        recorder.anthropic(base_url=broker.ai_url, api_key=session["access_token"]).messages.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.PermissionDeniedError):
        recorder.anthropic(base_url=broker.ai_url, api_key=fresh["access_token"]).messages.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    ok = recorder.openai(base_url=broker.ai_url, api_key=fresh["access_token"]).chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert ok.choices

    # A spent refresh token is refused; sign-out ends the session.
    reused = _http().post(f"{broker.admin_url}/auth/token", data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}, timeout=15)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    out = _http().post(f"{broker.admin_url}/auth/revoke", data={"token": fresh["refresh_token"]}, timeout=15)
    assert out.status_code == 200
    with pytest.raises(openai.AuthenticationError):
        recorder.openai(base_url=broker.ai_url, api_key=fresh["access_token"]).chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
        )


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def browse_to_loopback(url: str, login: str, password: str, loopback: str) -> str:
    """What a browser does for `agentnet login --browser`: open the sign-in link, sign in and
    consent on the IdP's pages, and follow redirects until one points at the CLI's loopback
    address; return that URL (nothing listens there in this test)."""
    s = _http()
    page = s.get(url, timeout=10, allow_redirects=False)
    for _ in range(20):
        if page.is_redirect:
            target = urljoin(page.url, page.headers["location"])
            if target.startswith(loopback):
                return target
            page = s.get(target, timeout=10, allow_redirects=False)
            continue
        assert page.status_code == 200, f"{page.url}: {page.status_code} {page.text[:500]}"
        forms = [f for f in _forms(page.text) if f["fields"].get("prompt") in ("login", "consent")]
        assert forms, f"no sign-in or consent form at {page.url}:\n{page.text[:1000]}"
        fields = dict(forms[0]["fields"])
        if fields["prompt"] == "login":
            fields.update(login=login, password=password)
        page = s.post(urljoin(page.url, forms[0]["action"]), data=fields, timeout=10, allow_redirects=False)
    raise AssertionError("the sign-in never redirected to the loopback address")


def test_browser_flow_with_pkce_through_the_idp(broker, idp, mock_llm, recorder):
    email = _person(idp, "fay", ["engineering"])
    verifier, challenge = _pkce()
    loopback = "http://127.0.0.1:49999/callback"
    state = secrets.token_urlsafe(16)
    start = requests.Request(
        "GET",
        f"{broker.admin_url}/auth/authorize",
        params={"response_type": "code", "redirect_uri": loopback, "code_challenge": challenge,
                "code_challenge_method": "S256", "state": state, "client": "e2e-browser"},
    ).prepare().url
    back = browse_to_loopback(start, email, "fay-pass", loopback)
    query = parse_qs(urlparse(back).query)
    assert query["state"] == [state], back
    assert "code" in query, back
    code = query["code"][0]

    # The code is bound to the verifier: a wrong one fails and spends it.
    wrong = _http().post(f"{broker.admin_url}/auth/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": _pkce()[0], "redirect_uri": loopback}, timeout=15)
    assert wrong.json()["error"] == "invalid_grant"

    back = browse_to_loopback(start, email, "fay-pass", loopback)
    code = parse_qs(urlparse(back).query)["code"][0]
    r = _http().post(f"{broker.admin_url}/auth/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": loopback}, timeout=15)
    assert r.status_code == 200, r.text
    session = r.json()
    assert session["identity"]["name"] == email and session["identity"]["groups"] == ["engineering"]
    reply = recorder.anthropic(base_url=broker.ai_url, api_key=session["access_token"]).messages.create(
        model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content
    audit = broker.admin_get("/api/v1/audit", action="session.sign_in", actor=email)
    assert [e["action"] for e in audit] == ["session.sign_in.browser"]


def test_a_denied_device_sign_in_is_reported_as_access_denied(broker, idp):
    email = _person(idp, "gus", ["engineering"])
    s = _http()
    da = s.post(f"{broker.admin_url}/auth/device", data={}, timeout=10).json()
    approve_device_code(da["verification_uri_complete"], email, password="gus-pass", deny=True)
    time.sleep(da["interval"])
    r = s.post(f"{broker.admin_url}/auth/token", data={"grant_type": DEVICE_GRANT, "device_code": da["device_code"]}, timeout=15)
    assert r.status_code == 400 and r.json()["error"] == "access_denied", r.text


def test_scim_deactivation_revokes_brokered_sessions(idp, _mock_llm_process, server_keys, tmp_path_factory, recorder):
    """With SCIM on, the directory decides: a person deactivated by the IdP's SCIM client loses
    their agentnet session at once (next request refused, the session revoked for good)."""
    root = tmp_path_factory.mktemp("broker-scim")
    cfg = gateway_config(idp.issuer, _mock_llm_process.url, root / "data", server_keys)
    cfg.oidc.update({"client_id": "agentnet-server", "scopes": ["openid", "email", "profile", "groups", "offline_access", "gateway"]})
    env = dict(server_keys.env(), AGENTNET__OIDC__CLIENT_SECRET="agentnet-server-secret")
    with start_gateway(cfg, env=env, name="agentnet-broker-scim") as gw:
        scim_token = gw.admin().post("/api/v1/scim/token").json()["token"]
        scim = _http()
        scim.headers.update({"authorization": f"Bearer {scim_token}", "content-type": "application/scim+json"})
        email = _person(idp, "hal", ["engineering"])
        user = scim.post(f"{gw.admin_url}/scim/v2/Users", timeout=10, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
            "emails": [{"value": email, "primary": True}], "active": True,
        }).json()
        group = scim.post(f"{gw.admin_url}/scim/v2/Groups", timeout=10, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "engineering",
            "members": [{"value": user["id"]}],
        })
        assert group.status_code == 201, group.text

        session = _device_sign_in(gw, email, "hal-pass")
        claude = recorder.anthropic(base_url=gw.ai_url, api_key=session["access_token"])
        assert claude.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]).content

        off = scim.patch(f"{gw.admin_url}/scim/v2/Users/{user['id']}", timeout=10, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "value": {"active": "False"}}],
        })
        assert off.status_code == 200, off.text
        with pytest.raises(anthropic.AuthenticationError):
            claude.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        sessions = gw.admin_get("/api/v1/sessions", name=email, all="true")
        assert [s["revoked_reason"] for s in sessions] == ["account deactivated"], sessions
        refresh = _http().post(f"{gw.admin_url}/auth/token", data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}, timeout=15)
        assert refresh.json()["error"] == "invalid_grant"

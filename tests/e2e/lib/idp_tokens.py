"""The test IdP (idp/server.mjs) and the tokens it issues, obtained the way real clients do.

    with start_idp() as idp:
        bot = client_credentials(idp.issuer)                    # ci-bot, a JWT for aud=agentnet
        alice = device_flow_login(idp.issuer, "alice@example.com")  # device flow + form approval
        claims = idp.verify(alice.access_token)                 # signature, iss, aud, exp checked
        again = refresh(idp.issuer, alice.refresh_token)

`device_flow_login` is the flow a developer goes through with `agentnet login`: the client asks
for a device code, a "browser" (a cookie-jar HTTP session here) opens the verification URI, posts
the user-code and confirm forms, signs in and consents on the IdP's interaction pages, and the
client polls the token endpoint. `DeviceFlow` splits this so a test can hand the user code to a
real `agentnet login` and approve it from the side (`approve_device_code`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import jwt
import requests

from .procs import E2E_DIR, Proc, started

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CLI_CLIENT_ID = "agentnet-cli"
CI_BOT = ("ci-bot", "ci-bot-secret")
DEFAULT_AUDIENCE = "agentnet"
USER_SCOPE = "openid email profile groups offline_access gateway"

DEFAULT_USERS_FILE = E2E_DIR / "idp" / "users.json"


def password_for(login: str, users_file: str | os.PathLike = DEFAULT_USERS_FILE) -> str | None:
    """The password of a user of a users file, by sub, email or email local part."""
    needle = login.lower()
    for u in json.loads(open(users_file, encoding="utf-8").read()):
        if needle in (u["sub"].lower(), u["email"].lower(), u["email"].split("@")[0].lower()):
            return u.get("password")
    return None

# Never route test traffic through a proxy from the environment.
_NO_PROXY = {"http": None, "https": None}


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def jwks_client(jwks_uri: str) -> jwt.PyJWKClient:
    """A JWKS fetcher (cached) for any issuer: the IdP's, or the gateway's for its signed identity assertion."""
    return jwt.PyJWKClient(jwks_uri, cache_keys=True)


def verify_with_jwks(
    token: str,
    jwks: jwt.PyJWKClient | str,
    *,
    audience: str | None,
    issuer: str | None,
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA", "PS256"),
    require: tuple[str, ...] = ("exp", "iat", "iss"),
    leeway: float = 0,
) -> dict[str, Any]:
    """Verify a JWT's signature with the key its `kid` names in a JWKS, then exp/iat/iss/aud.

    audience/issuer None skip those checks (e.g. an assertion without `aud`).
    """
    client = jwks_client(jwks) if isinstance(jwks, str) else jwks
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=list(algorithms),
        audience=audience,
        issuer=issuer,
        leeway=leeway,
        options={"require": list(require), "verify_aud": audience is not None, "verify_iss": issuer is not None},
    )


# ---- the IdP process -----------------------------------------------------------------------------


@dataclass
class Idp:
    proc: Proc
    issuer: str
    audience: str
    _jwks: jwt.PyJWKClient | None = None

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def discovery(self) -> dict[str, Any]:
        return _session().get(f"{self.issuer}/.well-known/openid-configuration", timeout=10).json()

    def verify(
        self, token: str, *, audience: str | None = None, issuer: str | None = None, leeway: float = 0
    ) -> dict[str, Any]:
        """Check a token's signature against the IdP's JWKS, and its iss, aud and exp; return its claims."""
        if self._jwks is None:
            self._jwks = jwks_client(self.jwks_uri)
        return verify_with_jwks(
            token,
            self._jwks,
            audience=audience or self.audience,
            issuer=issuer or self.issuer,
            require=("exp", "iat", "iss", "aud", "sub"),
            leeway=leeway,
        )

    def users(self) -> list[dict[str, Any]]:
        return _session().get(f"{self.issuer}/_test/users", timeout=10).json()

    def put_user(self, user: Mapping[str, Any]) -> None:
        """Add or change a user (e.g. its groups); tokens issued afterwards reflect it."""
        r = _session().put(f"{self.issuer}/_test/users/{user['sub']}", data=json.dumps(user), timeout=10)
        r.raise_for_status()


@contextlib.contextmanager
def start_idp(
    *,
    audience: str = DEFAULT_AUDIENCE,
    users_file: str | os.PathLike | None = None,
    clients_file: str | os.PathLike | None = None,
    access_token_ttl: int | None = None,
    access_token_alg: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Idp]:
    """Start idp/server.mjs on an ephemeral port; stop it (by pid) on exit."""
    env = dict(os.environ)
    env["IDP_AUDIENCE"] = audience
    if users_file:
        env["IDP_USERS"] = str(users_file)
    if clients_file:
        env["IDP_CLIENTS"] = str(clients_file)
    if access_token_ttl is not None:
        env["IDP_ACCESS_TOKEN_TTL"] = str(access_token_ttl)
    if access_token_alg:
        env["IDP_ACCESS_TOKEN_ALG"] = access_token_alg
    env.update(extra_env or {})
    argv = ["node", E2E_DIR / "idp" / "server.mjs", "--port", "0"]
    with started(argv, ready=r"^issuer (http://\S+)", name="idp", env=env, cwd=E2E_DIR) as proc:
        yield Idp(proc=proc, issuer=proc.match.group(1), audience=audience)


# ---- tokens --------------------------------------------------------------------------------------


@dataclass
class Tokens:
    access_token: str
    token_type: str
    expires_in: int
    scope: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> "Tokens":
        return cls(
            access_token=body["access_token"],
            token_type=body["token_type"],
            expires_in=body["expires_in"],
            scope=body.get("scope"),
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            raw=dict(body),
        )

    def claims(self) -> dict[str, Any]:
        """The access token's claims, unverified (use Idp.verify to check the signature)."""
        return unverified_claims(self.access_token)


def unverified_claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def unverified_header(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


class TokenError(RuntimeError):
    def __init__(self, status: int, body: Any):
        super().__init__(f"token endpoint answered {status}: {body}")
        self.status = status
        self.body = body


def _token_request(issuer: str, data: Mapping[str, str], auth: tuple[str, str] | None = None) -> dict[str, Any]:
    r = _session().post(f"{issuer}/token", data=dict(data), auth=auth, timeout=10)
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if r.status_code != 200:
        raise TokenError(r.status_code, body)
    return body


def client_credentials(
    issuer: str,
    client: tuple[str, str] = CI_BOT,
    *,
    scope: str | None = "gateway",
    resource: str | None = None,
    auth_method: str = "client_secret_basic",
) -> Tokens:
    """A client-credentials access token (default: `ci-bot`, JWT with aud=agentnet)."""
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    if resource:
        data["resource"] = resource
    if auth_method == "client_secret_post":
        data.update(client_id=client[0], client_secret=client[1])
        return Tokens.from_response(_token_request(issuer, data))
    return Tokens.from_response(_token_request(issuer, data, auth=client))


def refresh(issuer: str, refresh_token: str, *, client_id: str = CLI_CLIENT_ID) -> Tokens:
    """Exchange a refresh token (public client) for new tokens."""
    return Tokens.from_response(
        _token_request(issuer, {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id})
    )


# ---- device flow -------------------------------------------------------------------------------


@dataclass
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


def start_device_authorization(
    issuer: str, *, client_id: str = CLI_CLIENT_ID, scope: str = USER_SCOPE, resource: str | None = None
) -> DeviceAuthorization:
    data = {"client_id": client_id, "scope": scope}
    if resource:
        data["resource"] = resource
    r = _session().post(f"{issuer}/device/auth", data=data, timeout=10)
    if r.status_code != 200:
        raise TokenError(r.status_code, r.text)
    b = r.json()
    return DeviceAuthorization(
        device_code=b["device_code"],
        user_code=b["user_code"],
        verification_uri=b["verification_uri"],
        verification_uri_complete=b["verification_uri_complete"],
        expires_in=b["expires_in"],
        interval=b["interval"],
    )


class _Forms(HTMLParser):
    """Collects the forms of a page: action, method and the name/value of inputs and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                             "id": a.get("id", ""), "fields": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current["fields"][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _forms(html: str) -> list[dict[str, Any]]:
    p = _Forms()
    p.feed(html)
    return p.forms


class ApprovalError(RuntimeError):
    pass


def approve_device_code(
    verification_uri_complete: str, login: str, *, password: str | None = None, deny: bool = False
) -> str:
    """Approve (or deny) a pending device code as the user `login` would in a browser.

    GET /device?user_code=… (an auto-submitting form with a hidden xsrf), POST it (the confirm
    page), POST confirm=yes, then the login and consent forms at /interaction/<uid>. Returns the
    final page's HTML (the IdP's "Sign-in Success" page).
    """
    s = _session()
    page = s.get(verification_uri_complete, timeout=10)
    page.raise_for_status()
    # 1. the auto-submitting user-code form
    form = _only_form(page, lambda f: "user_code" in f["fields"] and "xsrf" in f["fields"])
    page = s.post(urljoin(page.url, form["action"]), data=form["fields"], timeout=10)
    page.raise_for_status()
    # 2. the confirm page
    form = _only_form(page, lambda f: f["fields"].get("confirm") == "yes")
    fields = dict(form["fields"])
    if deny:
        fields.pop("confirm")
        fields["abort"] = "yes"
    page = s.post(urljoin(page.url, form["action"]), data=fields, timeout=10)
    if deny:
        return page.text
    page.raise_for_status()
    # 3. login, then consent (each redirects to the next interaction); bounded.
    for _ in range(4):
        forms = [f for f in _forms(page.text) if f["fields"].get("prompt") in ("login", "consent")]
        if not forms:
            break
        form = forms[0]
        fields = dict(form["fields"])
        if fields["prompt"] == "login":
            fields["login"] = login
            fields["password"] = password if password is not None else (password_for(login) or "")
        page = s.post(urljoin(page.url, form["action"]), data=fields, timeout=10)
        if page.status_code == 401:
            raise ApprovalError(f"the IdP rejected the login {login!r} (unknown user or wrong password)")
        page.raise_for_status()
    if "Sign-in Success" not in page.text:
        raise ApprovalError(f"device approval did not end on the success page ({page.url}):\n{page.text[:2000]}")
    return page.text


def _only_form(page: requests.Response, pred) -> dict[str, Any]:
    forms = [f for f in _forms(page.text) if pred(f)]
    if len(forms) != 1:
        raise ApprovalError(f"expected one matching form on {page.url}, found {len(forms)}:\n{page.text[:2000]}")
    return forms[0]


def device_token_once(issuer: str, device_code: str, *, client_id: str = CLI_CLIENT_ID) -> Tokens:
    """One token request for a device code; raises TokenError (e.g. authorization_pending)."""
    return Tokens.from_response(
        _token_request(issuer, {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id})
    )


def poll_device_token(
    issuer: str, device_code: str, *, client_id: str = CLI_CLIENT_ID, interval: float = 1.0, timeout: float = 30.0
) -> Tokens:
    """Poll the token endpoint as an RFC 8628 client does (authorization_pending, slow_down)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return device_token_once(issuer, device_code, client_id=client_id)
        except TokenError as e:
            err = e.body.get("error") if isinstance(e.body, dict) else None
            if err == "slow_down":
                interval += 5
            elif err != "authorization_pending":
                raise
        if time.monotonic() + interval > deadline:
            raise TimeoutError(f"device code not approved within {timeout}s")
        time.sleep(interval)


def device_flow_login(
    issuer: str,
    login: str,
    *,
    password: str | None = None,
    client_id: str = CLI_CLIENT_ID,
    scope: str = USER_SCOPE,
    resource: str | None = None,
) -> Tokens:
    """The whole device flow for user `login` (sub, email or local part): returns its tokens."""
    da = start_device_authorization(issuer, client_id=client_id, scope=scope, resource=resource)
    approve_device_code(da.verification_uri_complete, login, password=password)
    return poll_device_token(issuer, da.device_code, client_id=client_id, interval=da.interval)

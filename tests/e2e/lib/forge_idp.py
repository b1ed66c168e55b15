"""An OIDC issuer whose signing key the test holds: discovery + JWKS served from this process on
127.0.0.1:0, so a test can mint tokens that the real IdP will not issue on demand (one that
expired an hour ago, one for another audience, one signed by the wrong key) while everything
else about them is right.

    with start_forge_idp() as forge:
        token = forge.mint(email="alice@example.com", groups=["engineering"], exp_in=-3600)

The real IdP (idp/server.mjs) stays the source of every token a user or agent really gets; this
one only exists for the claims a real IdP cannot be asked to get wrong.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A JWT with `alg: none` (and an empty signature), crafted by hand."""
    head = header or {"alg": "none", "typ": "JWT"}
    return (
        _b64url(json.dumps(head, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        + "."
    )


@dataclass
class ForgeIdp:
    issuer: str
    audience: str
    key: rsa.RSAPrivateKey
    kid: str

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def claims(
        self,
        *,
        sub: str = "usr_forged",
        email: str | None = None,
        groups: list[str] | None = None,
        exp_in: int = 3600,
        aud: str | list[str] | None = None,
        iss: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        c: dict[str, Any] = {
            "iss": iss or self.issuer,
            "aud": aud if aud is not None else self.audience,
            "sub": sub,
            "iat": now - max(0, -exp_in) - 60,
            "exp": now + exp_in,
            "jti": uuid.uuid4().hex,
            "client_id": "agentnet-cli",
            "scope": "gateway",
        }
        if email is not None:
            c.update(email=email, email_verified=True)
        if groups is not None:
            c["groups"] = groups
        c.update(extra)
        return c

    def mint(self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **claims: Any) -> str:
        """An RS256 access token (`typ: at+jwt`) signed by this issuer's key (or `key`)."""
        return jwt.encode(
            self.claims(**claims),
            key or self.key,
            algorithm="RS256",
            headers={"kid": kid or self.kid, "typ": "at+jwt"},
        )

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextlib.contextmanager
def start_forge_idp(*, audience: str = "agentnet") -> Iterator[ForgeIdp]:
    key = new_rsa_key()
    state: dict[str, ForgeIdp] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            forge = state["forge"]
            if self.path == "/.well-known/openid-configuration":
                body = {
                    "issuer": forge.issuer,
                    "jwks_uri": f"{forge.issuer}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            elif self.path == "/jwks":
                body = forge.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    state["forge"] = ForgeIdp(issuer=f"http://{host}:{port}", audience=audience, key=key, kid=uuid.uuid4().hex[:16])
    thread = threading.Thread(target=server.serve_forever, name="forge-idp", daemon=True)
    thread.start()
    try:
        yield state["forge"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""The real `agentnet server` as a process between the clients and the mock upstream, its admin
API (Unix socket) and its assertion JWKS, plus `agentnet setup` for the real CLIs.

    cfg = GatewayConfig(issuer=idp.issuer, data_dir=tmp / "data")
    cfg.provider("anthropic", "anthropic", mock.url, key_env="E2E_ANTHROPIC_KEY")
    cfg.policy("eng", groups=["engineering"], providers=["anthropic"])
    with start_gateway(cfg, env={"E2E_ANTHROPIC_KEY": "sk-ant-…"}) as gw:
        gw.ai_url                       # http://127.0.0.1:PORT (the AI endpoint)
        gw.record(request_id)           # its usage record, polled from GET /api/v1/usage
        gw.assertion_claims(token, aud) # X-Agentnet-Assertion verified against the gateway JWKS

The binary is looked up at $AGENTNET_BIN, then $CARGO_TARGET_DIR/debug/agentnet, then
<repo>/target/debug/agentnet (build: `cargo build -p cli`). The server binds 127.0.0.1:0 for both
listeners and logs JSON lines on stderr; the bound addresses are read from its
"AI endpoint listening" / "admin listener listening" lines (never guessed, never slept for).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import requests

from .clis import ClaudeCode, Codex, _base_env
from .procs import REPO_DIR, Proc, ProcessError, Result, _tail, run, spawn


def agentnet_bin() -> Path:
    candidates = []
    if os.environ.get("AGENTNET_BIN"):
        candidates.append(Path(os.environ["AGENTNET_BIN"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "agentnet")
    candidates.append(REPO_DIR / "target" / "debug" / "agentnet")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError(
        "agentnet binary not found (looked at: " + ", ".join(map(str, candidates)) + "); "
        "build it: cargo build -p cli (or set AGENTNET_BIN)"
    )


# ---- config --------------------------------------------------------------------------------------


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string for our values
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(f"no TOML rendering for {v!r}")


# Debug for agentnet's own crates (so the key-leak scan covers debug output too), info for the
# libraries underneath.
DEFAULT_LOG_LEVEL = "debug,hyper=info,hyper_util=info,h2=info,rustls=info,sqlx=info,tower=info,reqwest=info"


@dataclass
class GatewayConfig:
    """A `agentnet server` config file (crates/server/src/config), rendered as TOML."""

    issuer: str | None
    data_dir: Path
    audiences: Sequence[str] = ("agentnet",)
    log_level: str = DEFAULT_LOG_LEVEL
    providers: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    # More keys of the [oidc] section (client_id, client_secret, scopes for brokered sign-in).
    oidc: dict[str, Any] = field(default_factory=dict)
    # The plain AI listener (None: not configured, so off when the overlay is on) and the admin one.
    listen_ai: str | None = "127.0.0.1:0"
    listen_admin: str = "127.0.0.1:0"
    # The [overlay] section (e.g. {"enabled": True, "listen": "10.77.1.1:51820"}); None: none.
    overlay: dict[str, Any] | None = None
    extra: str = ""

    def provider(self, name: str, kind: str, base_url: str, *, key_env: str, **more: Any) -> "GatewayConfig":
        self.providers.append({"name": name, "kind": kind, "base_url": base_url, "api_key_env": key_env, **more})
        return self

    def agent(self, name: str, *, groups: Sequence[str] = ()) -> "GatewayConfig":
        self.agents.append({"name": name, "groups": list(groups)})
        return self

    def policy(self, name: str, *, providers: Sequence[str], **sources_and_models: Any) -> "GatewayConfig":
        self.policies.append({"name": name, **sources_and_models, "providers": list(providers)})
        return self

    def render(self) -> str:
        out = [
            f"data_dir = {_toml(str(self.data_dir))}",
            "",
            "[listen]",
            *([f"ai = {_toml(self.listen_ai)}"] if self.listen_ai else []),
            f"admin = {_toml(self.listen_admin)}",
            "",
            "[log]",
            f"level = {_toml(self.log_level)}",
            'format = "json"',
            "",
            "[oidc]",
        ]
        if self.issuer is not None:
            out.append(f"issuer = {_toml(self.issuer)}")
        out.append(f"audiences = {_toml(list(self.audiences))}")
        out += [f"{k} = {_toml(v)}" for k, v in self.oidc.items()]
        if self.overlay is not None:
            out += ["", "[overlay]", *(f"{k} = {_toml(v)}" for k, v in self.overlay.items())]
        for section, entries in (("providers", self.providers), ("agents", self.agents), ("policies", self.policies)):
            for entry in entries:
                out += ["", f"[[{section}]]", *(f"{k} = {_toml(v)}" for k, v in entry.items())]
        out += ["", self.extra, ""]
        return "\n".join(out)


# ---- the server process --------------------------------------------------------------------------


class AdminError(RuntimeError):
    pass


@dataclass
class Gateway:
    proc: Proc
    config_path: Path
    data_dir: Path
    ai_url: str | None  # http://127.0.0.1:PORT; None without a plain AI listener
    admin_url: str  # http://127.0.0.1:PORT (health, JWKS)
    socket_path: Path
    # The overlay endpoint's log fields (port, public_key, address), when the overlay is on.
    overlay: dict[str, Any] | None = None

    # -- logs --------------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.proc.stderr_text()

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events

    # -- admin API over the Unix socket ------------------------------------------------------------

    def admin(self) -> httpx.Client:
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket_path)),
            base_url="http://agentnet",
            timeout=10,
            trust_env=False,
        )

    def admin_get(self, path: str, **params: Any) -> Any:
        with self.admin() as c:
            r = c.get(path, params={k: v for k, v in params.items() if v is not None})
        if r.status_code != 200:
            raise AdminError(f"GET {path} -> {r.status_code}: {r.text}")
        return r.json()

    def usage(self, *, principal: str | None = None, limit: int = 1000, **filters: Any) -> list[dict[str, Any]]:
        """`GET /api/v1/usage` (newest first)."""
        return self.admin_get("/api/v1/usage", principal=principal, limit=limit, **filters)

    def record(self, request_id: str, *, principal: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The usage record of one request (its id is the `x-agentnet-request-id` the client got).

        Records are written by a background writer after the response body ends: poll.
        """
        deadline = time.monotonic() + timeout
        while True:
            for r in self.usage(principal=principal, limit=200):
                if r["id"] == request_id:
                    return r
            if time.monotonic() > deadline:
                raise AssertionError(f"no usage record {request_id} within {timeout}s")
            time.sleep(0.05)

    def records_where(self, pred, *, count: int, principal: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `count` records (newest first) satisfy `pred`; return them oldest first."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.usage(principal=principal, limit=1000) if pred(r)]
            if len(found) >= count:
                return list(reversed(found))
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} expected usage records within {timeout}s: {found}")
            time.sleep(0.05)

    def cli(self, *args: str, timeout: float = 30.0, input: str | None = None) -> Result:
        """`agentnet admin --data-dir DATA_DIR ARGS…` (the CLI over the same socket)."""
        argv = [str(agentnet_bin()), "admin", "--data-dir", str(self.data_dir), *args]
        return run(argv, timeout=timeout, env=_server_env(self.data_dir.parent), input=input).check()

    # -- health and the assertion JWKS (admin TCP listener) ----------------------------------------

    def _get(self, path: str) -> requests.Response:
        s = requests.Session()
        s.trust_env = False
        return s.get(f"{self.admin_url}{path}", timeout=10)

    def jwks(self) -> dict[str, Any]:
        r = self._get("/.well-known/jwks.json")
        r.raise_for_status()
        return r.json()

    def assertion_claims(self, assertion: str, *, audience: str) -> dict[str, Any]:
        """Verify an `X-Agentnet-Assertion` with PyJWT against the gateway's JWKS."""
        jwks = jwt.PyJWKSet.from_dict(self.jwks())
        kid = jwt.get_unverified_header(assertion).get("kid")
        keys = [k for k in jwks.keys if k.key_id == kid]
        if not keys:
            raise AssertionError(f"assertion kid {kid!r} not in the gateway JWKS {self.jwks()}")
        return jwt.decode(
            assertion,
            keys[0].key,
            algorithms=["EdDSA"],
            audience=audience,
            issuer="agentnet",
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )


def _server_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "RUST_BACKTRACE": "1",
    }
    env.update(extra or {})
    return env


def _wait_for_log(proc: Proc, messages: Sequence[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait until the server's JSON log (stderr) has a line for each of `messages`."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, dict[str, Any]] = {}
        for line in proc.stderr_text().splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            msg = event.get("fields", {}).get("message")
            if msg in messages and msg not in found:
                found[msg] = event["fields"]
        if len(found) == len(messages):
            return found
        if not proc.alive():
            raise ProcessError(
                f"agentnet server (pid {proc.pid}) exited {proc.popen.poll()} before listening\n"
                f"--- stderr tail ---\n{_tail(proc.stderr_text())}"
            )
        if time.monotonic() > deadline:
            raise ProcessError(
                f"agentnet server (pid {proc.pid}) did not log {messages} within {timeout}s\n"
                f"--- stderr tail ---\n{_tail(proc.stderr_text())}"
            )
        time.sleep(0.02)


@contextlib.contextmanager
def start_gateway(
    config: GatewayConfig,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    name: str = "agentnet",
    ns: Any = None,
) -> Iterator[Gateway]:
    """Write the config next to its data dir, start `agentnet server --config FILE` (inside the
    network namespace `ns`, a lib.netns.Netns, when given), wait for its listeners, stop it
    (SIGTERM to the group this call started) on exit."""
    data_dir = Path(config.data_dir)
    root = data_dir.parent
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "agentnet.toml"
    config_path.write_text(config.render())
    argv = [agentnet_bin(), "server", "--config", config_path]
    if ns is not None:
        proc = ns.popen(argv, name=name, env=_server_env(root, env), cwd=root)
    else:
        proc = spawn(argv, name=name, env=_server_env(root, env), cwd=root)
    expect = ["admin listener listening", "admin API on Unix socket"]
    if config.listen_ai or not (config.overlay or {}).get("enabled"):
        expect.append("AI endpoint listening")
    if (config.overlay or {}).get("enabled"):
        expect.append("overlay WireGuard endpoint listening")
    try:
        seen = _wait_for_log(proc, expect, timeout)
        yield Gateway(
            proc=proc,
            config_path=config_path,
            data_dir=data_dir,
            ai_url=f"http://{seen['AI endpoint listening']['addr']}" if "AI endpoint listening" in seen else None,
            admin_url=f"http://{seen['admin listener listening']['addr']}",
            socket_path=Path(seen["admin API on Unix socket"]["path"]),
            overlay=seen.get("overlay WireGuard endpoint listening"),
        )
    finally:
        proc.stop()
        if ns is not None and proc in ns.procs:
            ns.procs.remove(proc)


# ---- `agentnet setup` for the real CLIs ------------------------------------------------------------


def _setup_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra or {})
    return env


def claude_code_via_setup(
    root: Path, *, endpoint: str, token_command: str, extra_env: Mapping[str, str] | None = None
) -> tuple[ClaudeCode, Result]:
    """`agentnet setup claude-code --endpoint URL --token-command CMD` in a fresh HOME, and a
    Claude Code that runs with that HOME and nothing else configured (plus test-speed env:
    no retries; root may skip permission prompts only in a declared sandbox)."""
    home = root / "home"
    workdir = root / "work"
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    res = run(
        [agentnet_bin(), "setup", "claude-code", "--endpoint", endpoint, "--token-command", token_command],
        env=_setup_env(home),
        cwd=workdir,
        timeout=30,
    ).check()
    env = _base_env(home)
    env["CLAUDE_CODE_MAX_RETRIES"] = "0"
    if os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"
    env.update(extra_env or {})
    return ClaudeCode(home=home, workdir=workdir, env=env), res


def codex_via_setup(
    root: Path,
    *,
    endpoint: str,
    token_env: str,
    token: str,
    no_retries: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[Codex, Result]:
    """`agentnet setup codex --endpoint URL --token-env VAR` with CODEX_HOME in `root`, and a Codex
    that runs with that CODEX_HOME and `VAR=token`. `no_retries` rewrites the provider's
    `request_max_retries` / `stream_max_retries` that setup wrote to 0 (fail fast in tests)."""
    home = root / "home"
    codex_home = root / "codex"
    workdir = root / "work"
    for d in (home, codex_home, workdir):
        d.mkdir(parents=True, exist_ok=True)
    res = run(
        [agentnet_bin(), "setup", "codex", "--endpoint", endpoint, "--token-env", token_env],
        env=_setup_env(home, {"CODEX_HOME": str(codex_home)}),
        cwd=workdir,
        timeout=30,
    ).check()
    if no_retries:
        path = codex_home / "config.toml"
        text = path.read_text()
        text, n = re.subn(
            r"(?m)^(\s*(?:request_max_retries|stream_max_retries)\s*=\s*)\d+", lambda m: m.group(1) + "0", text
        )
        if n == 0:
            # setup wrote no retry keys: add them to its provider table.
            text = text.replace(
                "[model_providers.agentnet]\n",
                "[model_providers.agentnet]\nrequest_max_retries = 0\nstream_max_retries = 0\n",
                1,
            )
        path.write_text(text)
    env = _base_env(home)
    env["CODEX_HOME"] = str(codex_home)
    env[token_env] = token
    env.update(extra_env or {})
    return Codex(home=home, codex_home=codex_home, workdir=workdir, env=env), res


def data_dir_files(data_dir: Path) -> list[Path]:
    """Every regular file under the data dir (database, WAL, master key…), the socket excluded."""
    return [p for p in sorted(Path(data_dir).rglob("*")) if p.is_file()]


__all__ = [
    "AdminError",
    "Gateway",
    "GatewayConfig",
    "agentnet_bin",
    "claude_code_via_setup",
    "codex_via_setup",
    "data_dir_files",
    "start_gateway",
]

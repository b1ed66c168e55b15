"""The real Claude Code and Codex CLIs (from tests/e2e/node_modules), configured the way
`agentnet setup claude-code|codex` configures them, in a throwaway HOME, offline.

    cc = ClaudeCode.configure(tmp_path / "cc", base_url=gateway_url, token="-")
    res = cc.run("say hi")                       # claude -p … --output-format json
    assert res.result["result"] == "Hello from mock"

    cx = Codex.configure(tmp_path / "cx", base_url=f"{gateway_url}/v1", token="-")
    res = cx.exec("say hi")                      # codex exec --json …
    assert res.agent_messages == ["Hello from mock"]

Each CLI runs with a minimal environment (PATH, HOME, LANG and what the config needs): nothing
from the developer's or CI's environment leaks into it (no real keys, no proxies).

Claude Code: `~/.claude/settings.json` with `apiKeyHelper` (the helper's output goes out as both
`x-api-key` and `Authorization: Bearer`), `env.ANTHROPIC_BASE_URL`,
`CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (otherwise it calls the vendor's hosts directly) and
`CLAUDE_CODE_MAX_RETRIES=0` (fail fast).
Codex: `$CODEX_HOME/config.toml` with a model provider (`wire_api = "responses"`, `env_key` naming
a variable that holds the token, no retries), analytics and plugins off.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import E2E_DIR, ProcessError, Result, run

BIN_DIR = E2E_DIR / "node_modules" / ".bin"
CLAUDE_BIN = BIN_DIR / "claude"
CODEX_BIN = BIN_DIR / "codex"


def _base_env(home: Path) -> dict[str, str]:
    node_dir = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    path = os.pathsep.join(dict.fromkeys([str(BIN_DIR), node_dir, "/usr/local/bin", "/usr/bin", "/bin"]))
    return {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb", "NO_COLOR": "1"}


# ---- Claude Code -------------------------------------------------------------------------------


@dataclass
class ClaudeResult:
    run: Result
    result: dict[str, Any] | None  # the `--output-format json` object, when it printed one

    @property
    def text(self) -> str | None:
        return None if self.result is None else self.result.get("result")

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.result.get("is_error", True)


@dataclass
class ClaudeCode:
    home: Path
    workdir: Path
    env: dict[str, str]

    @classmethod
    def configure(
        cls,
        root: Path,
        *,
        base_url: str,
        token: str = "-",
        credential: str = "helper",
        settings_env: Mapping[str, str] | None = None,
        settings: Mapping[str, Any] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> "ClaudeCode":
        """Write `root/home/.claude/settings.json` pointing Claude Code at `base_url`.

        credential: "helper" (settings apiKeyHelper `echo <token>`, as `agentnet setup` writes),
        "api_key" (env ANTHROPIC_API_KEY), "auth_token" (env ANTHROPIC_AUTH_TOKEN) or "none".
        """
        home = root / "home"
        workdir = root / "work"
        (home / ".claude").mkdir(parents=True, exist_ok=True)
        workdir.mkdir(parents=True, exist_ok=True)
        s_env = {
            "ANTHROPIC_BASE_URL": base_url,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
        s_env.update(settings_env or {})
        doc: dict[str, Any] = {"env": s_env}
        if credential == "helper":
            doc["apiKeyHelper"] = f"echo {_shell_quote(token)}"
        doc.update(settings or {})
        (home / ".claude" / "settings.json").write_text(json.dumps(doc, indent=2) + "\n")
        env = _base_env(home)
        if credential == "api_key":
            env["ANTHROPIC_API_KEY"] = token
        elif credential == "auth_token":
            env["ANTHROPIC_AUTH_TOKEN"] = token
        # Root may skip permission prompts only in a declared sandbox.
        if os.geteuid() == 0:
            env["IS_SANDBOX"] = "1"
        env.update(extra_env or {})
        return cls(home=home, workdir=workdir, env=env)

    def run(
        self,
        prompt: str,
        *args: str,
        allowed_tools: Sequence[str] = (),
        skip_permissions: bool = False,
        timeout: float = 120.0,
    ) -> ClaudeResult:
        """`claude -p PROMPT --output-format json [ARGS]`; does not raise on a non-zero exit."""
        argv = [str(CLAUDE_BIN), "-p", prompt, "--output-format", "json"]
        if allowed_tools:
            argv += ["--allowedTools", ",".join(allowed_tools)]
        if skip_permissions:
            argv.append("--dangerously-skip-permissions")
        argv += list(args)
        res = run(argv, env=self.env, cwd=self.workdir, timeout=timeout)
        return ClaudeResult(run=res, result=_last_json_object(res.stdout))

    def version(self) -> str:
        return run([str(CLAUDE_BIN), "--version"], env=self.env, cwd=self.workdir, timeout=60).check().stdout.strip()


# ---- Codex -------------------------------------------------------------------------------------


@dataclass
class CodexResult:
    run: Result
    events: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    @property
    def items(self) -> list[dict[str, Any]]:
        return [e["item"] for e in self.of_type("item.completed")]

    @property
    def agent_messages(self) -> list[str]:
        return [i.get("text", "") for i in self.items if i.get("type") == "agent_message"]

    @property
    def commands(self) -> list[dict[str, Any]]:
        """Completed `command_execution` items (tool runs)."""
        return [i for i in self.items if i.get("type") == "command_execution"]

    @property
    def usage(self) -> dict[str, Any] | None:
        done = self.of_type("turn.completed")
        return done[-1].get("usage") if done else None

    @property
    def ok(self) -> bool:
        return bool(self.of_type("turn.completed")) and not self.of_type("turn.failed")


@dataclass
class Codex:
    home: Path
    codex_home: Path
    workdir: Path
    env: dict[str, str]

    @classmethod
    def configure(
        cls,
        root: Path,
        *,
        base_url: str,
        token: str | None = "-",
        env_key: str = "AGENTNET_TOKEN",
        model: str = "gpt-5.5",
        provider_id: str = "agentnet",
        extra_provider: Mapping[str, Any] | None = None,
        extra_config: str = "",
        extra_env: Mapping[str, str] | None = None,
    ) -> "Codex":
        """Write `root/codex/config.toml` with a Responses-API provider at `base_url` (…/v1).

        token: put in `$env_key` (Codex then sends `Authorization: Bearer <token>`); None leaves
        env_key out of the provider, so Codex sends no Authorization at all.
        """
        home = root / "home"
        codex_home = root / "codex"
        workdir = root / "work"
        for d in (home, codex_home, workdir):
            d.mkdir(parents=True, exist_ok=True)
        provider: dict[str, Any] = {
            "name": provider_id,
            "base_url": base_url,
            "wire_api": "responses",
            "request_max_retries": 0,
            "stream_max_retries": 0,
        }
        if token is not None:
            provider["env_key"] = env_key
        provider.update(extra_provider or {})
        lines = [
            f"model = {_toml(model)}",
            f"model_provider = {_toml(provider_id)}",
            "",
            f"[model_providers.{provider_id}]",
            *(f"{k} = {_toml(v)}" for k, v in provider.items()),
            "",
            "[analytics]",
            "enabled = false",
            "",
            "[features]",
            "plugins = false",
            "",
            extra_config,
        ]
        (codex_home / "config.toml").write_text("\n".join(lines))
        env = _base_env(home)
        env["CODEX_HOME"] = str(codex_home)
        if token is not None:
            env[env_key] = token
        env.update(extra_env or {})
        return cls(home=home, codex_home=codex_home, workdir=workdir, env=env)

    def exec(self, prompt: str, *args: str, full_access: bool = False, timeout: float = 120.0) -> CodexResult:
        """`codex exec --skip-git-repo-check --ephemeral --json [ARGS] PROMPT`; does not raise on exit codes.

        full_access: `--dangerously-bypass-approvals-and-sandbox` (tool runs without Codex's
        sandbox, which needs namespaces a container may not grant).
        """
        argv = [str(CODEX_BIN), "exec", "--skip-git-repo-check", "--ephemeral", "--json"]
        if full_access:
            argv.append("--dangerously-bypass-approvals-and-sandbox")
        argv += [*args, prompt]
        res = run(argv, env=self.env, cwd=self.workdir, timeout=timeout)
        events = []
        for line in res.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass
        return CodexResult(run=res, events=events)

    def version(self) -> str:
        return run([str(CODEX_BIN), "--version"], env=self.env, cwd=self.workdir, timeout=60).check().stdout.strip()


# ---- helpers -----------------------------------------------------------------------------------


def _last_json_object(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string for our values
    raise TypeError(f"no TOML rendering for {v!r}")


__all__ = ["ClaudeCode", "ClaudeResult", "Codex", "CodexResult", "ProcessError", "CLAUDE_BIN", "CODEX_BIN"]

"""The mock LLM upstream (crates/testkit, binary `mock-llm`) as a process, and its control API.

    with start_mock_llm() as mock:
        mock.script([{"shell": "echo tool-ok"}])       # next generation request: a shell tool call
        ...                                            # point a CLI / SDK / gateway at mock.url
        reqs = mock.requests()                         # what the upstream received

The binary is looked up at $MOCK_LLM_BIN, then $CARGO_TARGET_DIR/debug/mock-llm, then
<repo>/target/debug/mock-llm. Build it with `cargo build -p testkit --bin mock-llm`.
Reply shapes (see crates/testkit/src/llm/script.rs): {"text": …}, {"tool_call": {"name", "input"}},
{"shell": "cmd"} (adapted to the shell tool the request offers: Claude Code `Bash`, Codex
`exec_command`/`shell`/`shell_command`), {"error": {"status", "retry_after"}},
{"cut_after_events": n}, {"usage": {"input", "output", "cache_read", "cache_write", "reasoning"}}…
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .procs import REPO_DIR, Proc, started


def mock_llm_bin() -> Path:
    candidates = []
    if os.environ.get("MOCK_LLM_BIN"):
        candidates.append(Path(os.environ["MOCK_LLM_BIN"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "mock-llm")
    candidates.append(REPO_DIR / "target" / "debug" / "mock-llm")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError(
        "mock-llm binary not found (looked at: " + ", ".join(map(str, candidates)) + "); "
        "build it: cargo build -p testkit --bin mock-llm (or set MOCK_LLM_BIN)"
    )


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0]


@dataclass
class MockLlm:
    proc: Proc
    url: str  # http://127.0.0.1:PORT (no /v1)

    def _s(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        return s

    def script(self, replies: Sequence[Mapping[str, Any]]) -> None:
        """Queue replies, consumed one per generation request (then the default reply answers)."""
        r = self._s().post(f"{self.url}/_mock/script", json=list(replies), timeout=10)
        r.raise_for_status()

    def set_default(self, reply: Mapping[str, Any]) -> None:
        """The reply once the script is exhausted (until reset)."""
        self._s().post(f"{self.url}/_mock/default", json=dict(reply), timeout=10).raise_for_status()

    def reset(self) -> None:
        """Back to the start state: the command line's script and default reply, no recordings."""
        self._s().post(f"{self.url}/_mock/reset", timeout=10).raise_for_status()

    def requests(self) -> list[RecordedRequest]:
        r = self._s().get(f"{self.url}/_mock/requests", timeout=10)
        r.raise_for_status()
        body = r.json()
        if isinstance(body, dict) and "requests" in body:
            body = body["requests"]
        return [
            RecordedRequest(
                method=x["method"],
                path=x["path"],
                headers={k.lower(): v for k, v in x.get("headers", {}).items()},
                body=x.get("body", ""),
            )
            for x in body
        ]

    def generation_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to the generation endpoints (messages, chat completions, responses)."""
        gen = ("/v1/messages", "/v1/chat/completions", "/v1/responses")
        return [r for r in self.requests() if r.method == "POST" and r.path_only in gen]


@contextlib.contextmanager
def start_mock_llm(*args: str, env: Mapping[str, str] | None = None, ns: Any = None) -> Iterator[MockLlm]:
    """Start `mock-llm --listen 127.0.0.1:0 [ARGS]` (inside the network namespace `ns`, a
    lib.netns.Netns, when given: then call its control API within `ns.entered()`); stop it (by
    pid) on exit."""
    argv = [mock_llm_bin(), "--listen", "127.0.0.1:0", *args]
    full_env = dict(os.environ)
    full_env.update(env or {})
    if ns is not None:
        with ns.started(argv, ready=r"listening on (http://\S+)", name="mock-llm", env=full_env) as proc:
            yield MockLlm(proc=proc, url=proc.match.group(1).rstrip("/"))
        return
    with started(argv, ready=r"listening on (http://\S+)", name="mock-llm", env=full_env) as proc:
        yield MockLlm(proc=proc, url=proc.match.group(1).rstrip("/"))

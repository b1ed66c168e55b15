"""Shared fixtures of the e2e suite. Each component runs as its own process on an ephemeral
127.0.0.1 port and is stopped by the pid this suite started (see lib/procs.py).

Harness: `idp`, `alice`, `bob`, `ci_bot` (tokens), `mock_llm` (reset per test).
Gateway tests: `gateway` (the real `agentnet server` between clients and the mock),
`server_keys` (the provider keys it holds), `recorder` (SDK clients with recorded exchanges),
`transcripts` (everything clients received, for the key-leak scan)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lib.gateway import Gateway, GatewayConfig, start_gateway
from lib.idp_tokens import Idp, Tokens, client_credentials, device_flow_login, start_idp
from lib.mock_llm import MockLlm, start_mock_llm
from lib.sdk_clients import Recorder


@pytest.fixture(scope="session")
def idp() -> Iterator[Idp]:
    """The test OIDC provider (idp/server.mjs), audience `agentnet`, default users and clients."""
    with start_idp() as p:
        yield p


@pytest.fixture(scope="session")
def alice(idp: Idp) -> Tokens:
    """alice@example.com (groups [engineering]) signed in through the device flow."""
    return device_flow_login(idp.issuer, "alice@example.com")


@pytest.fixture(scope="session")
def bob(idp: Idp) -> Tokens:
    """bob@example.com (groups [sales]) signed in through the device flow."""
    return device_flow_login(idp.issuer, "bob@example.com")


@pytest.fixture(scope="session")
def ci_bot(idp: Idp) -> Tokens:
    """A client-credentials token of the `ci-bot` client."""
    return client_credentials(idp.issuer)


@pytest.fixture(scope="session")
def _mock_llm_process() -> Iterator[MockLlm]:
    with start_mock_llm() as m:
        yield m


@pytest.fixture
def mock_llm(_mock_llm_process: MockLlm) -> MockLlm:
    """The mock upstream (crates/testkit `mock-llm`), reset before each test."""
    _mock_llm_process.reset()
    return _mock_llm_process


# ---- the agentnet gateway between the clients and the mock (tests/e2e/test_gateway_*.py) ----------


@dataclass(frozen=True)
class ServerKeys:
    """The provider keys the gateway holds (distinctive, fresh per run): they must reach the mock
    and nothing else."""

    anthropic: str
    openai: str
    anthropic_env: str = "AGENTNET_E2E_ANTHROPIC_KEY"
    openai_env: str = "AGENTNET_E2E_OPENAI_KEY"

    def all(self) -> tuple[str, str]:
        return (self.anthropic, self.openai)

    def env(self) -> dict[str, str]:
        return {self.anthropic_env: self.anthropic, self.openai_env: self.openai}


@pytest.fixture(scope="session")
def server_keys() -> ServerKeys:
    return ServerKeys(
        anthropic=f"sk-ant-e2e-SERVERKEY-{secrets.token_hex(16)}",
        openai=f"sk-proj-e2e-SERVERKEY-{secrets.token_hex(16)}",
    )


@dataclass
class Transcripts:
    """What the session's clients received (SDK exchanges, CLI output) and every gateway it
    started (logs, data dirs): the material of the key-leak scan (test_gateway_zz_no_leaks.py)."""

    recorder: Recorder = field(default_factory=Recorder)
    texts: list[tuple[str, str]] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)

    def add(self, name: str, text: str) -> None:
        self.texts.append((name, text))

    def everything(self) -> list[tuple[str, str]]:
        out = [(f"{e.method} {e.url} -> {e.status}", e.all_text()) for e in self.recorder.exchanges]
        return out + self.texts


@pytest.fixture(scope="session")
def transcripts() -> Transcripts:
    return Transcripts()


@pytest.fixture
def recorder(transcripts: Transcripts) -> Recorder:
    """SDK client factory (lib/sdk_clients.py); every exchange is kept for the key-leak scan."""
    return transcripts.recorder


def gateway_config(issuer: str, upstream: str, data_dir: Path, keys: ServerKeys) -> GatewayConfig:
    """The suite's gateway: both providers on the mock; engineering -> both; the ci-bot agent
    (group ci, given by this config) -> openai; sales (bob) -> openai, gpt-5-mini* only."""
    cfg = GatewayConfig(issuer=issuer, data_dir=data_dir)
    cfg.provider("anthropic", "anthropic", upstream, key_env=keys.anthropic_env)
    cfg.provider("openai", "openai", upstream, key_env=keys.openai_env)
    cfg.agent("ci-bot", groups=["ci"])
    cfg.policy("engineering-all", groups=["engineering"], providers=["anthropic", "openai"])
    cfg.policy("ci-openai", groups=["ci"], providers=["openai"])
    cfg.policy("sales-mini", groups=["sales"], providers=["openai"], models=["gpt-5-mini*"])
    return cfg


@pytest.fixture(scope="session")
def gateway(
    idp: Idp, _mock_llm_process: MockLlm, server_keys: ServerKeys, transcripts: Transcripts, tmp_path_factory
) -> Iterator[Gateway]:
    """`agentnet server` (lib/gateway.py) on 127.0.0.1 ephemeral ports, trusting the test IdP,
    both providers pointing at the session's mock upstream (reset per test by `mock_llm`)."""
    root = tmp_path_factory.mktemp("gateway")
    cfg = gateway_config(idp.issuer, _mock_llm_process.url, root / "data", server_keys)
    with start_gateway(cfg, env=server_keys.env()) as gw:
        transcripts.gateways.append(gw)
        yield gw

"""Shared fixtures of the e2e suite. Each component runs as its own process on an ephemeral
127.0.0.1 port and is stopped by the pid this suite started (see lib/procs.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.idp_tokens import Idp, Tokens, client_credentials, device_flow_login, start_idp
from lib.mock_llm import MockLlm, start_mock_llm


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

"""SCIM 2.0 conformance of the real `agentnet server`, checked by PyPI `scim2-tester` through
`scim2-cli` (`scim2 --url URL -h "Authorization: Bearer T" test`) runs discovery
(ServiceProviderConfig, ResourceTypes, Schemas, 405s, 404s), then for each resource type it
discovered (User with the enterprise extension, Group) create, get, list, `attributes` /
`excludedAttributes` on get, list and `/.search`, PUT, DELETE, and PATCH add / replace / remove
of every attribute the schemas publish. It exits 0 only when every check succeeds.

The token comes from `agentnet admin scim token` over the admin socket, as an operator would
make it; the SCIM endpoint is `/scim/v2` on the admin TCP listener. Around the tester: SCIM is
refused without the token, with a wrong one, and after `agentnet admin scim disable`; and the
token never reaches the server log.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import requests

from lib.gateway import Gateway, GatewayConfig, start_gateway
from lib.procs import run


def _scim2() -> Path:
    path = Path(sys.executable).parent / "scim2"
    if not path.exists():
        pytest.fail(f"{path} is missing: run tests/e2e/setup.sh (scim2-cli is in requirements.txt)")
    return path


@pytest.fixture(scope="module")
def scim_gateway(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("scim")
    with start_gateway(GatewayConfig(issuer=None, data_dir=root / "data"), name="agentnet-scim") as gw:
        yield gw


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def _create_token(gw: Gateway) -> str:
    created = json.loads(gw.cli("scim", "token", "--json").stdout)
    assert set(created) == {"token", "created_at"}, created
    return created["token"]


def _users(gw: Gateway, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return _session().get(f"{gw.admin_url}/scim/v2/Users", headers=headers, timeout=10)


def test_scim2_tester_passes_every_check(scim_gateway: Gateway) -> None:
    gw = scim_gateway
    # Off until an admin creates a token.
    r = _users(gw, "anything")
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/scim+json")
    assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert r.json()["status"] == "401"

    human = gw.cli("scim", "token").stdout
    assert "shown this once" in human and "/scim/v2" in human
    token = _create_token(gw)  # the second one revokes the first
    assert _users(gw, None).status_code == 401
    assert _users(gw, token + "x").status_code == 401
    assert _users(gw, token).status_code == 200

    # `scim2 --url URL -h "Authorization: Bearer T" test`, with the secret in the environment
    # rather than on a command line other users of the machine can read.
    result = run(
        [_scim2(), "test", "--verbose"],
        timeout=600,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "SCIM_CLI_URL": f"{gw.admin_url}/scim/v2",
            "SCIM_CLI_HEADERS": f"Authorization: Bearer {token}",
        },
    )
    report = result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.split(" ", 1)[0] in {
        "ERROR", "CRITICAL", "SKIPPED", "DEVIATION", "ACCEPTABLE", "COMPLIANT",
    }]
    assert result.returncode == 0, f"scim2 test exited {result.returncode}; not SUCCESS: {failed}\n{report[-20000:]}"
    successes = [line for line in result.stdout.splitlines() if line.startswith("SUCCESS ")]
    # Discovery, then CRUD and PATCH for both resource types: well over a hundred checks.
    assert len(successes) > 100, report
    for check in ("check_add_attribute", "check_replace_attribute", "check_remove_attribute",
                  "object_replacement", "object_deletion", "search_with_attributes"):
        assert any(check in line for line in successes), f"{check} did not run:\n{report}"

    # The tester cleaned up after itself.
    listed = _users(gw, token).json()
    assert listed["totalResults"] == 0, listed

    # Disabling SCIM refuses the token at once.
    off = json.loads(gw.cli("scim", "disable", "--json").stdout)
    assert off["enabled"] is False
    assert _users(gw, token).status_code == 401
    status = gw.cli("scim", "status").stdout
    assert "off" in status

    # The secret never reached the log (the server logs at debug for its own crates).
    assert token not in gw.log_text()

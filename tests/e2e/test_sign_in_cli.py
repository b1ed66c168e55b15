"""The `agentnet` client's sign-in, end to end, as people and agents use it:

- `agentnet login` (device flow) against a server that brokers to the real OIDC provider, the code
  approved by a scripted form post at the IdP; `whoami`; `token`, whose silent refresh re-checks
  the person with the IdP and picks up changed groups; `logout`.
- `agentnet login --browser` (auth code + PKCE, loopback redirect), with `$BROWSER` a script that
  does what a browser does on the IdP's pages.
- Local accounts (no IdP configured): `agentnet admin users create`, `agentnet login` approved on
  the server's own page, and the real Claude Code configured by `agentnet setup claude-code`, which
  gets its key from `agentnet token`.
- An agent: `agentnet admin setup-keys create`, `agentnet enroll` (the key from an environment
  variable), then a request as that agent; the key works once.

Each test has its own HOME / XDG_CONFIG_HOME, so the session file is the test's own; it must be
owner-only.
"""

from __future__ import annotations

import json
import re
import secrets
import stat
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import gateway_config
from lib.gateway import agentnet_bin, claude_code_via_setup, data_dir_files, start_gateway
from lib.idp_tokens import Idp, approve_device_code
from lib.procs import run, spawn

E2E = Path(__file__).resolve().parent
CODE_URL = re.compile(r"(https?://\S+user_code=\S+)")
LOCAL_PASSWORD = "a long local password"


def _http() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def _env(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def _agentnet(env, *args: str, timeout: float = 30.0, input: str | None = None):
    return run([agentnet_bin(), *args], env=env, timeout=timeout, input=input)


def _session_file(home: Path) -> Path:
    return home / ".config" / "agentnet" / "session.json"


def _login_device(env, server: str, approve) -> str:
    """Runs `agentnet login --no-open`, hands the printed link to `approve`, returns stdout."""
    proc = spawn([agentnet_bin(), "login", "--server", server, "--no-open"], name="agentnet-login", env=env)
    try:
        deadline = time.monotonic() + 20
        url = None
        while url is None:
            m = CODE_URL.search(proc.stderr_text())
            if m:
                url = m.group(1)
                break
            assert proc.alive(), f"agentnet login exited early:\n{proc.stderr_text()}"
            assert time.monotonic() < deadline, f"no sign-in link printed:\n{proc.stderr_text()}"
            time.sleep(0.1)
        approve(url)
        code = proc.popen.wait(timeout=60)
        assert code == 0, f"agentnet login failed ({code}):\n{proc.stdout_text()}\n{proc.stderr_text()}"
        return proc.stdout_text()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def broker(idp: Idp, _mock_llm_process, server_keys, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-broker")
    cfg = gateway_config(idp.issuer, _mock_llm_process.url, root / "data", server_keys)
    cfg.oidc.update({"client_id": "agentnet-server", "scopes": ["openid", "email", "profile", "groups", "offline_access", "gateway"]})
    # Access tokens shorter than the CLI's refresh margin: every `agentnet token` refreshes.
    cfg.extra = '[login]\naccess_ttl = "20s"\n'
    env = dict(server_keys.env(), AGENTNET__OIDC__CLIENT_SECRET="agentnet-server-secret")
    with start_gateway(cfg, env=env, name="agentnet-cli-broker") as gw:
        yield gw


def _person(idp: Idp, name: str, groups: list[str]) -> tuple[str, str]:
    email = f"{name}-{secrets.token_hex(3)}@example.com"
    sub = f"usr_{email.split('@')[0]}"
    idp.put_user({"sub": sub, "email": email, "name": name, "password": f"{name}-pass", "groups": groups})
    return email, sub


def test_login_whoami_token_refresh_and_logout_against_the_idp(broker, idp, tmp_path, mock_llm, recorder):
    email, sub = _person(idp, "ivy", ["engineering"])
    home = tmp_path / "home"
    env = _env(home)
    out = _login_device(env, broker.admin_url, lambda url: approve_device_code(url, email, password="ivy-pass"))
    assert f"Signed in as {email}" in out, out

    path = _session_file(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    assert saved["access_token"].startswith("agentnet_at_")

    who = _agentnet(env, "whoami", "--json").check()
    view = json.loads(who.stdout)
    assert view["principal"] == email and view["groups"] == ["engineering"]

    token = _agentnet(env, "token").check().stdout.strip()
    assert token.startswith("agentnet_at_")
    reply = recorder.anthropic(base_url=broker.ai_url, api_key=token).messages.create(
        model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content

    # Groups change at the IdP; the next silent refresh picks them up.
    idp.put_user({"sub": sub, "email": email, "name": "ivy", "password": "ivy-pass", "groups": ["sales"]})
    token = _agentnet(env, "token").check().stdout.strip()
    who = json.loads(_agentnet(env, "whoami", "--json").check().stdout)
    assert who["groups"] == ["sales"], who
    saved_after = json.loads(path.read_text())
    assert saved_after["refresh_token"] != saved["refresh_token"], "the refresh token rotates"

    out = _agentnet(env, "logout").check()
    assert "Signed out" in out.stdout + out.stderr
    assert not path.exists()
    gone = _http().get(f"{broker.admin_url}/api/v1/me", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert gone.status_code == 401
    again = _agentnet(env, "whoami")
    assert again.returncode != 0 and "agentnet login" in again.stderr

    # No token agentnet issued is in the server's log (debug level) or its files in plaintext.
    log = broker.log_text()
    secrets_seen = [saved["access_token"], saved["refresh_token"], saved_after["access_token"], saved_after["refresh_token"], token]
    assert not [t for t in secrets_seen if t in log]
    for path in data_dir_files(broker.data_dir):
        data = path.read_bytes()
        assert not [t for t in secrets_seen if t.encode() in data], path


BROWSER_SCRIPT = """#!{python}
import sys
sys.path.insert(0, {e2e!r})
from lib.browser import sign_in
sign_in(sys.argv[1], {login!r}, {password!r})
"""


def _browser(tmp_path: Path, login: str, password: str) -> Path:
    script = tmp_path / "browser"
    script.write_text(BROWSER_SCRIPT.format(python=sys.executable, e2e=str(E2E), login=login, password=password))
    script.chmod(0o755)
    return script


def test_login_with_the_browser_flow_and_pkce(broker, idp, tmp_path):
    email, _ = _person(idp, "jon", ["engineering"])
    home = tmp_path / "home"
    env = _env(home, BROWSER=str(_browser(tmp_path, email, "jon-pass")))
    res = _agentnet(env, "login", "--server", broker.admin_url, "--browser", timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Signed in as {email}" in res.stdout
    who = json.loads(_agentnet(env, "whoami", "--json").check().stdout)
    assert who["principal"] == email
    audit = broker.admin_get("/api/v1/audit", action="session.sign_in", actor=email)
    assert [e["action"] for e in audit] == ["session.sign_in.browser"]


@pytest.fixture(scope="module")
def local(_mock_llm_process, server_keys, tmp_path_factory):
    """A server with no IdP: people sign in with local accounts."""
    root = tmp_path_factory.mktemp("cli-local")
    cfg = gateway_config(None, _mock_llm_process.url, root / "data", server_keys)
    with start_gateway(cfg, env=server_keys.env(), name="agentnet-local") as gw:
        yield gw


def test_local_account_login_and_claude_code_through_agentnet_token(local, tmp_path, mock_llm, transcripts):
    created = local.cli("users", "create", "kim", "--email", "kim@example.com", "--group", "engineering")
    assert created.returncode == 0, created.stdout + created.stderr
    password = re.search(r"(?m)^\s*password:?\s+(\S+)\s*$", created.stdout, re.I) or re.search(r"password\S*\s+(\S{12,})", created.stdout, re.I)
    assert password, f"no generated password in:\n{created.stdout}"
    password = password.group(1)

    home = tmp_path / "home"
    env = _env(home)

    def approve(url: str) -> None:
        s = _http()
        page = s.get(url, timeout=10)
        assert page.status_code == 200, page.text
        user_code = re.search(r'name="user_code" value="([A-Z-]+)"', page.text).group(1)
        ok = s.post(f"{local.admin_url}/auth/activate", timeout=20,
                    data={"user_code": user_code, "login": "kim", "password": password, "action": "approve"})
        assert ok.status_code == 200 and "Device signed in" in ok.text, ok.text

    out = _login_device(env, local.admin_url, approve)
    assert "Signed in as kim@example.com" in out

    # Claude Code, configured by `agentnet setup claude-code`, asks `agentnet token` for its key.
    mock_llm.script([{"text": "Hello, Kim"}])
    cc, setup = claude_code_via_setup(
        tmp_path / "claude", endpoint=local.ai_url, token_command=f"{agentnet_bin()} token",
        extra_env={"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]},
    )
    transcripts.add("agentnet setup claude-code (local)", setup.stdout + setup.stderr)
    res = cc.run("say hi", "--model", "claude-sonnet-4-5")
    transcripts.add("claude -p (local account)", res.run.stdout + res.run.stderr)
    assert res.ok, res.run.stdout + res.run.stderr
    assert res.text == "Hello, Kim"
    settings = json.loads((cc.home / ".claude" / "settings.json").read_text())
    assert "agentnet_at_" not in json.dumps(settings), "no token in Claude Code's settings"
    rec = local.records_where(lambda r: r["principal"] == "kim@example.com", count=1, principal="kim@example.com")[0]
    assert rec["policy"] == "engineering-all" and rec["status"] == 200


def test_agent_enrolls_with_a_one_time_setup_key(local, tmp_path, mock_llm, recorder):
    created = local.cli("setup-keys", "create", "ci-once", "--group", "ci", "--json")
    assert created.returncode == 0, created.stdout + created.stderr
    key = json.loads(created.stdout)["key"]
    home = tmp_path / "agent"
    env = _env(home, AGENTNET_SETUP_KEY=key)
    res = _agentnet(env, "enroll", "--server", local.admin_url, "--setup-key-env", "AGENTNET_SETUP_KEY", "--name", "nightly-job")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "nightly-job" in res.stdout
    assert key not in res.stdout + res.stderr, "the setup key is never echoed"

    token = _agentnet(env, "token").check().stdout.strip()
    ok = recorder.openai(base_url=local.ai_url, api_key=token).chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "hi"}]
    )
    assert ok.choices
    rec = local.records_where(lambda r: r["principal"] == "nightly-job", count=1, principal="nightly-job")[0]
    assert rec["principal_kind"] == "agent" and rec["policy"] == "ci-openai"

    # One-time: a second enrollment is refused with the reason.
    other = _env(tmp_path / "other", AGENTNET_SETUP_KEY=key)
    again = _agentnet(other, "enroll", "--server", local.admin_url, "--setup-key-env", "AGENTNET_SETUP_KEY", "--name", "second")
    assert again.returncode != 0
    assert "used up" in again.stderr, again.stderr
    keys = json.loads(local.cli("setup-keys", "list", "--json").stdout)
    assert [(k["name"], k["state"], k["uses"]) for k in keys] == [("ci-once", "exhausted", 1)]
    # No file of the server's (database, WAL) and no log line holds the key or the token.
    for path in data_dir_files(local.data_dir):
        assert key.encode() not in path.read_bytes(), path
        assert token.encode() not in path.read_bytes(), path
    assert key not in local.log_text() and token not in local.log_text()


def test_local_account_login_with_the_browser_flow(local, tmp_path):
    local.cli("users", "create", "lou", "--email", "lou@example.com", "--group", "engineering", "--password-stdin", input=LOCAL_PASSWORD)
    home = tmp_path / "home"
    env = _env(home, BROWSER=str(_browser(tmp_path, "lou@example.com", LOCAL_PASSWORD)))
    res = _agentnet(env, "login", "--server", local.admin_url, "--browser", timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Signed in as lou@example.com" in res.stdout
    sessions = local.admin_get("/api/v1/sessions", name="lou@example.com")
    assert [s["source"] for s in sessions] == ["local"]

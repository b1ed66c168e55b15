"""The WireGuard overlay end to end, with real peers in network namespaces this module creates.

Topology: the server namespace holds `agentnet server` (overlay on, no plain AI listener; the
admin/login listener and the WireGuard port on its veth side) and the mock upstream on its own
loopback. Each test gets a client namespace joined to it by a veth pair, so that every client has
its own routes. Traffic goes only to these namespaces and their loopbacks; the admin API is the
Unix socket (a file, reachable from the test's namespace).

- A stock WireGuard peer (wireguard-go + `wg`) configured from `agentnet peer config` reaches the
  AI endpoint with no token; its requests are attributed to its owner and stamped upstream.
- `agentnet up` in userspace, as an unprivileged user, forwards 127.0.0.1:4000, and the real
  Claude Code runs through it with no key or token in its configuration.
- The AI endpoint answers on no non-overlay address; a forged inner source gets nothing through;
  a revoked peer is cut within a second; a server restart recovers without the client acting.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import ServerKeys, gateway_config
from lib.clis import BIN_DIR, CLAUDE_BIN
from lib.gateway import Gateway, agentnet_bin, start_gateway
from lib.mock_llm import MockLlm, start_mock_llm
from lib.netns import NOBODY, Netns, VethPair, WgGoPeer, user_home, veth_pair

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")

WG_PORT = 51820
ADMIN_PORT = 4001
SERVER_OVERLAY = "100.64.0.1"
CODE_URL = re.compile(r"(https?://\S+user_code=\S+)")
PASSWORD_LINE = re.compile(r"(?m)^\s*password:?\s+(\S+)\s*$", re.I)


@dataclass
class Overlay:
    srv: Netns
    mock: MockLlm
    gw: Gateway
    cfg: object
    keys: ServerKeys

    def restart(self) -> float:
        """Stops the server (which must log no error, shutdown included) and starts it again on
        the same data dir; seconds it was down."""
        old = self.gw
        self._stack.close()
        stopped = time.monotonic()
        errors = [e for e in old.log_events() if e.get("level") == "ERROR"]
        assert not errors, f"the server logged errors: {errors}"
        self._stack = contextlib.ExitStack()
        self.gw = self._stack.enter_context(start_gateway(self.cfg, env=self.keys.env(), ns=self.srv, name="agentnet-overlay"))
        return time.monotonic() - stopped


@pytest.fixture(scope="module")
def overlay(server_keys: ServerKeys, tmp_path_factory) -> Iterator[Overlay]:
    root = tmp_path_factory.mktemp("overlay")
    with Netns("srv") as srv, start_mock_llm(ns=srv) as mock:
        cfg = gateway_config(None, mock.url, root / "data", server_keys)
        cfg.listen_ai = None
        cfg.listen_admin = f"0.0.0.0:{ADMIN_PORT}"
        cfg.overlay = {"enabled": True, "listen": f"0.0.0.0:{WG_PORT}"}
        stack = contextlib.ExitStack()
        gw = stack.enter_context(start_gateway(cfg, env=server_keys.env(), ns=srv, name="agentnet-overlay"))
        o = Overlay(srv=srv, mock=mock, gw=gw, cfg=cfg, keys=server_keys)
        o._stack = stack
        try:
            yield o
        finally:
            o._stack.close()


@contextlib.contextmanager
def client_ns(o: Overlay) -> Iterator[tuple[Netns, VethPair]]:
    """A client namespace joined to the server's by a fresh veth pair."""
    with Netns("cli") as ns:
        yield ns, veth_pair(o.srv, ns)


def _http() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def _env(home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
    }


def add_person(o: Overlay, name: str, groups: list[str]) -> tuple[str, str]:
    """A local account; returns (login, password)."""
    login = f"{name}{secrets.token_hex(2)}"
    args = ["users", "create", login, "--email", f"{login}@example.com"]
    for g in groups:
        args += ["--group", g]
    created = o.gw.cli(*args)
    m = PASSWORD_LINE.search(created.stdout) or re.search(r"password\S*\s+(\S{12,})", created.stdout, re.I)
    assert m, f"no generated password in:\n{created.stdout}"
    return login, m.group(1)


def login(o: Overlay, ns: Netns, veth: VethPair, home: Path, who: tuple[str, str]) -> None:
    """`agentnet login --no-open` as nobody in `ns`, approved on the server's page from `ns`."""
    server = f"http://{veth.a}:{ADMIN_PORT}"
    proc = ns.popen([agentnet_bin(), "login", "--server", server, "--no-open"], env=_env(home), user=NOBODY, name="agentnet-login")
    try:
        deadline = time.monotonic() + 20
        while not (m := CODE_URL.search(proc.stderr_text())):
            assert proc.alive(), f"agentnet login exited early:\n{proc.stderr_text()}"
            assert time.monotonic() < deadline, f"no sign-in link printed:\n{proc.stderr_text()}"
            time.sleep(0.05)
        # The link names the server as it listens (0.0.0.0 here): open it where this client
        # reaches the server.
        link = re.sub(r"^https?://[^/]+", server, m.group(1))
        with ns.entered():
            s = _http()
            page = s.get(link, timeout=10)
            code = re.search(r'name="user_code" value="([A-Z-]+)"', page.text).group(1)
            ok = s.post(f"{server}/auth/activate", timeout=20,
                        data={"user_code": code, "login": who[0], "password": who[1], "action": "approve"})
            assert ok.status_code == 200, ok.text
        assert proc.popen.wait(timeout=30) == 0, proc.stderr_text()
    finally:
        proc.stop()
        if proc in ns.procs:
            ns.procs.remove(proc)


def agentnet(ns: Netns, home: Path, *args: str, timeout: float = 30):
    return ns.run([agentnet_bin(), *args], env=_env(home), user=NOBODY, timeout=timeout)


def signed_in_device(o: Overlay, ns: Netns, veth: VethPair, groups=("engineering",)) -> tuple[Path, str]:
    """A person signed in as nobody in `ns`; returns (home, email)."""
    who = add_person(o, "dev", list(groups))
    home = user_home()
    login(o, ns, veth, home, who)
    return home, f"{who[0]}@example.com"


def ask(ns: Netns, url: str = f"http://{SERVER_OVERLAY}", *, timeout: float = 5, source: str | None = None) -> tuple[int, dict, str]:
    """A Messages request with curl inside `ns`, no credentials at all: (status, headers, body);
    status 0 when nothing came back."""
    argv = ["curl", "-sS", "-m", str(timeout), "-D", "-", "-o", "-", "-X", "POST", f"{url}/v1/messages",
            "-H", "content-type: application/json", "-H", "anthropic-version: 2023-06-01",
            "--data", json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})]
    if source:
        argv[1:1] = ["--interface", source]
    r = ns.run(argv, check=False, timeout=timeout + 5)
    if r.returncode != 0:
        return 0, {}, r.stderr
    # (Text mode has already turned the header lines' CRLF into LF.)
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return status, headers, body


def resolve(ns: Netns, name: str) -> tuple[int, str | None]:
    """An A query to the overlay's DNS from `ns`: (rcode, first address)."""
    query = struct.pack(">HHHHHH", 0x5EED, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    query += struct.pack(">HH", 1, 1)
    with ns.entered():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.sendto(query, (SERVER_OVERLAY, 53))
            reply, _ = sock.recvfrom(1500)
    rcode = reply[3] & 0x0F
    answers = struct.unpack(">H", reply[6:8])[0]
    return rcode, socket.inet_ntoa(reply[-4:]) if answers else None


def stock_peer(o: Overlay, ns: Netns, home: Path, name: str) -> tuple[WgGoPeer, str]:
    """`agentnet peer config` → a wireguard-go interface in `ns`; returns it and the config."""
    text = agentnet(ns, home, "peer", "config", "--name", name).stdout
    assert "PrivateKey = " in text and "[Peer]" in text, text
    peer = WgGoPeer(ns, text)
    return peer, text


def test_a_stock_wireguard_peer_reaches_the_ai_endpoint_as_its_owner(overlay: Overlay):
    with client_ns(overlay) as (ns, veth):
        home, email = signed_in_device(overlay, ns, veth)
        try:
            peer, text = stock_peer(overlay, ns, home, "laptop")
            assert f"Endpoint = {veth.a}:{WG_PORT}" in text or f":{WG_PORT}" in text
            with overlay.srv.entered():
                overlay.mock.reset()
            status, headers, body = ask(ns)
            assert status == 200, body
            assert "x-agentnet-request-id" in headers, headers
            rec = overlay.gw.record(headers["x-agentnet-request-id"])
            assert rec["principal"] == email and rec["groups"] == ["engineering"], rec
            with overlay.srv.entered():
                seen = overlay.mock.generation_requests()[-1]
            assert seen.header("x-agentnet-user") == email
            assert seen.header("x-api-key") == overlay.keys.anthropic
            # The peer is listed with its traffic.
            peers = overlay.gw.admin_get("/api/v1/peers", owner=email)
            assert [p["name"] for p in peers] == ["laptop"]
            shown = peer.show()
            assert any(p.latest_handshake for p in shown.peers.values())
            # The overlay's DNS answers for the AI endpoint's name (and refuses other names).
            assert resolve(ns, "ai.agentnet.internal") == (0, SERVER_OVERLAY)
            assert resolve(ns, "example.com")[0] == 5
        finally:
            shutil.rmtree(home, ignore_errors=True)


def test_the_ai_endpoint_answers_on_no_non_overlay_address(overlay: Overlay):
    with client_ns(overlay) as (ns, veth):
        # Inside the server namespace: TCP listeners are only the admin listener; UDP only WireGuard.
        tcp = overlay.srv.tcp_listeners()
        assert all(a.endswith(f":{ADMIN_PORT}") or a.startswith("127.0.0.1:") for a in tcp), tcp
        assert not any(a.endswith(":80") or a.endswith(":4000") for a in tcp), tcp
        udp = overlay.srv.udp_sockets()
        assert all(a.endswith(f":{WG_PORT}") for a in udp), udp
        # From a neighbour on the veth: the server's address, and even a route to the overlay
        # address through the veth, reach nothing.
        assert ask(ns, f"http://{veth.a}", timeout=2)[0] == 0
        ns.route("add", f"{SERVER_OVERLAY}/32", "via", veth.a)
        assert ask(ns, timeout=2)[0] == 0


def test_a_peer_that_forges_another_peers_source_address_gets_nothing_through(overlay: Overlay):
    with client_ns(overlay) as (ns, veth), client_ns(overlay) as (ns2, veth2):
        home, _ = signed_in_device(overlay, ns, veth)
        home2, _ = signed_in_device(overlay, ns2, veth2)
        try:
            peer, _ = stock_peer(overlay, ns, home, "mallory")
            victim, victim_text = stock_peer(overlay, ns2, home2, "victim")
            victim_address = re.search(r"Address = ([\d.]+)/32", victim_text).group(1)
            assert ask(ns)[0] == 200
            # Speak as the victim: add its address to our interface and send from it.
            ns.ip("addr", "add", f"{victim_address}/32", "dev", peer.ifname)
            status, _, err = ask(ns, source=victim_address, timeout=3)
            assert status == 0, "a forged inner source address got an answer"
            assert ask(ns2)[0] == 200, "the victim still works"
        finally:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(home2, ignore_errors=True)


def test_a_revoked_peer_is_cut_within_a_second(overlay: Overlay):
    with client_ns(overlay) as (ns, veth):
        home, email = signed_in_device(overlay, ns, veth)
        try:
            stock_peer(overlay, ns, home, "revokee")
            assert ask(ns)[0] == 200
            peer_id = overlay.gw.admin_get("/api/v1/peers", owner=email)[0]["id"]
            # A response streaming when the peer is revoked: 300 events, 50 ms apart.
            with overlay.srv.entered():
                overlay.mock.script([{"text": " ".join(["word"] * 300), "drip_ms": 50}])
            body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
                               "messages": [{"role": "user", "content": "talk"}]})
            stream = ns.popen(["curl", "-sS", "-N", "-m", "60", "-X", "POST", f"http://{SERVER_OVERLAY}/v1/messages",
                               "-H", "content-type: application/json", "-H", "anthropic-version: 2023-06-01",
                               "--data", body], name="curl-stream")
            stream.wait_for_line(r"content_block_delta", timeout=10)
            with overlay.gw.admin() as c:
                started = time.monotonic()
                r = c.delete(f"/api/v1/peers/{peer_id}")
                answered = time.monotonic() - started
            assert r.status_code == 200, r.text
            while stream.alive():
                assert time.monotonic() - started < 1.0, "the stream outlived the revocation by a second"
                time.sleep(0.005)
            cut = time.monotonic() - started
            assert "message_stop" not in stream.stdout_text(), "the stream finished instead of being cut"
            # And nothing new gets through.
            assert ask(ns, timeout=1)[0] == 0, "a revoked peer got an answer"
            print(f"\nrevocation: admin call answered in {answered * 1000:.1f} ms; stream cut {cut * 1000:.1f} ms after the call")
        finally:
            shutil.rmtree(home, ignore_errors=True)


def test_agentnet_up_as_an_unprivileged_user_and_claude_code_through_it(overlay: Overlay):
    with client_ns(overlay) as (ns, veth):
        home, email = signed_in_device(overlay, ns, veth)
        try:
            up = agentnet(ns, home, "up", "-d", "--name", "workstation", timeout=40)
            assert "agentnet is up" in up.stdout, up.stdout + up.stderr
            status = agentnet(ns, home, "status", "--json")
            state = json.loads(status.stdout)
            assert state["local"] == "127.0.0.1:4000" and state["address"].startswith("100.64.")
            status_code, headers, body = ask(ns, "http://127.0.0.1:4000")
            assert status_code == 200, body
            assert overlay.gw.record(headers["x-agentnet-request-id"])["principal"] == email

            # Claude Code: base URL only, and a fixed placeholder credential (not a secret).
            setup = agentnet(ns, home, "setup", "claude-code", "--overlay")
            settings_text = (home / ".claude" / "settings.json").read_text()
            assert "agentnet_at_" not in settings_text and "agentnet token" not in settings_text, settings_text
            with overlay.srv.entered():
                overlay.mock.script([{"text": "Hello through the tunnel"}])
            env = _env(home) | {"PATH": f"{BIN_DIR}:/usr/local/bin:/usr/bin:/bin", "CLAUDE_CODE_MAX_RETRIES": "0", "TERM": "dumb", "NO_COLOR": "1"}
            r = ns.run([CLAUDE_BIN, "-p", "say hi", "--output-format", "json", "--model", "claude-sonnet-4-5"],
                       env=env, user=NOBODY, check=False, timeout=120, cwd=str(home))
            assert "Hello through the tunnel" in r.stdout, r.stdout + r.stderr
            rec = overlay.gw.records_where(lambda x: x["principal"] == email and x["stream"], count=1, principal=email)[0]
            assert rec["status"] == 200
            with overlay.srv.entered():
                seen = overlay.mock.generation_requests()[-1]
            assert seen.header("x-api-key") == overlay.keys.anthropic
            assert seen.header("authorization") is None
            down = agentnet(ns, home, "down")
            assert "agentnet is down" in down.stdout, down.stdout
            after = ns.run([agentnet_bin(), "status"], env=_env(home), user=NOBODY, check=False)
            assert after.returncode == 3 and after.stdout.strip() == "agentnet is not up", after
        finally:
            shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("client", ["wireguard-go", "agentnet-up"])
def test_a_client_network_change_recovers_without_the_client_doing_anything(overlay: Overlay, client: str):
    """The device moves to another address (a new Wi-Fi, a new DHCP lease): its next
    authenticated packet tells the server where it is now."""
    with client_ns(overlay) as (ns, veth):
        home, _ = signed_in_device(overlay, ns, veth)
        try:
            if client == "wireguard-go":
                stock_peer(overlay, ns, home, "roamer")
                url = f"http://{SERVER_OVERLAY}"
            else:
                agentnet(ns, home, "up", "-d", "--name", "roamer", timeout=40)
                url = "http://127.0.0.1:4000"
            assert ask(ns, url)[0] == 200
            moved = veth.b.rsplit(".", 1)[0] + ".77"
            ns.ip("addr", "del", f"{veth.b}/{veth.prefixlen}", "dev", veth.b_ifname)
            ns.ip("addr", "add", f"{moved}/{veth.prefixlen}", "dev", veth.b_ifname)
            started = time.monotonic()
            while ask(ns, url, timeout=1)[0] != 200:
                assert time.monotonic() - started < 40, "no recovery within 40 s of the move"
            recovered = time.monotonic() - started
            print(f"\n{client} moved {veth.b} -> {moved}: first answer after {recovered * 1000:.0f} ms")
            if client == "agentnet-up":
                agentnet(ns, home, "down")
        finally:
            shutil.rmtree(home, ignore_errors=True)


def test_zz_a_server_restart_recovers_without_the_client_doing_anything(overlay: Overlay):
    with client_ns(overlay) as (ns, veth):
        home, _ = signed_in_device(overlay, ns, veth)
        try:
            stock_peer(overlay, ns, home, "steady")
            assert ask(ns)[0] == 200
            down = overlay.restart()
            started = time.monotonic()
            while True:
                status, _, _ = ask(ns, timeout=1)
                if status == 200:
                    break
                assert time.monotonic() - started < 40, "no recovery within 40 s of a restart"
            recovered = time.monotonic() - started
            print(f"\nserver restart: down {down:.2f} s; first answer {recovered:.2f} s after it was back")
        finally:
            shutil.rmtree(home, ignore_errors=True)


def test_agentnet_up_with_a_kernel_interface(overlay: Overlay):
    """`agentnet up --tun` (root): the overlay is routed to a kernel interface, and any program
    reaches the AI endpoint at its overlay address."""
    with client_ns(overlay) as (ns, veth):
        who = add_person(overlay, "tun", ["engineering"])
        home = user_home(uid=0, gid=0)
        try:
            # Root signs in and runs the tunnel (creating an interface needs CAP_NET_ADMIN).
            server = f"http://{veth.a}:{ADMIN_PORT}"
            proc = ns.popen([agentnet_bin(), "login", "--server", server, "--no-open"], env=_env(home), name="agentnet-login")
            deadline = time.monotonic() + 20
            while not (m := CODE_URL.search(proc.stderr_text())):
                assert proc.alive() and time.monotonic() < deadline, proc.stderr_text()
                time.sleep(0.05)
            link = re.sub(r"^https?://[^/]+", server, m.group(1))
            with ns.entered():
                s = _http()
                code = re.search(r'name="user_code" value="([A-Z-]+)"', s.get(link, timeout=10).text).group(1)
                assert s.post(f"{server}/auth/activate", timeout=20,
                              data={"user_code": code, "login": who[0], "password": who[1], "action": "approve"}).status_code == 200
            assert proc.popen.wait(timeout=30) == 0, proc.stderr_text()
            up = ns.run([agentnet_bin(), "up", "--tun", "-d", "--name", "kernel"], env=_env(home), timeout=40)
            assert "agentnet is up" in up.stdout, up.stdout + up.stderr
            assert "agentnet0" in ns.addresses(), ns.addresses()
            status, headers, body = ask(ns)
            assert status == 200, body
            assert overlay.gw.record(headers["x-agentnet-request-id"])["principal"] == f"{who[0]}@example.com"
            ns.run([agentnet_bin(), "down"], env=_env(home))
            assert "agentnet0" not in ns.addresses(), "the interface outlived agentnet down"
        finally:
            shutil.rmtree(home, ignore_errors=True)


def test_the_server_in_tun_mode_serves_only_through_its_interface(server_keys: ServerKeys, tmp_path_factory):
    """`[overlay] mode = "tun"`: the kernel stack serves the AI endpoint on the interface; a
    neighbour that routes the overlay address through the veth reaches nothing, and revocation
    still cuts."""
    root = tmp_path_factory.mktemp("overlay-tun")
    with Netns("srvtun") as srv, start_mock_llm(ns=srv) as mock:
        cfg = gateway_config(None, mock.url, root / "data", server_keys)
        cfg.listen_ai = None
        cfg.listen_admin = f"0.0.0.0:{ADMIN_PORT}"
        cfg.overlay = {"enabled": True, "listen": f"0.0.0.0:{WG_PORT}", "mode": "tun"}
        with start_gateway(cfg, env=server_keys.env(), ns=srv, name="agentnet-overlay-tun") as gw:
            o = Overlay(srv=srv, mock=mock, gw=gw, cfg=cfg, keys=server_keys)
            with client_ns(o) as (ns, veth), client_ns(o) as (rogue, rveth):
                home, email = signed_in_device(o, ns, veth)
                try:
                    stock_peer(o, ns, home, "tunnel")
                    status, headers, body = ask(ns)
                    assert status == 200, body
                    assert gw.record(headers["x-agentnet-request-id"])["principal"] == email
                    assert any(a.startswith(f"{SERVER_OVERLAY}%") or a.startswith(f"{SERVER_OVERLAY}:80") for a in srv.tcp_listeners()), srv.tcp_listeners()
                    # A neighbour without a tunnel, routing the overlay address through its veth.
                    rogue.ip("addr", "add", "100.64.0.77/32", "dev", rveth.b_ifname)
                    rogue.route("add", f"{SERVER_OVERLAY}/32", "via", rveth.a, "src", "100.64.0.77")
                    assert ask(rogue, timeout=2)[0] == 0, "the AI endpoint answered outside the tunnel"
                    # Revocation cuts in kernel mode too.
                    peer_id = gw.admin_get("/api/v1/peers", owner=email)[0]["id"]
                    with gw.admin() as c:
                        assert c.delete(f"/api/v1/peers/{peer_id}").status_code == 200
                    assert ask(ns, timeout=2)[0] == 0, "a revoked peer got an answer"
                finally:
                    shutil.rmtree(home, ignore_errors=True)

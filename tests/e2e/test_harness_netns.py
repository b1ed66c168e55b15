"""Checks of lib/netns.py, the overlay harness: namespaces, a veth pair between them, a stock
wireguard-go peer in each configured from a wg-quick file, a server bound only to the overlay
address, a client fetching through the tunnel (as root and as `nobody`), and that everything the
test made (namespaces, processes, TUN devices, control sockets) is gone afterwards.

Nothing here talks to any address outside the test's own namespaces."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from lib.netns import (
    NOBODY,
    WG_RUN_DIR,
    Netns,
    WgGoPeer,
    WgPeer,
    genkey,
    netns_names,
    parse_wg_quick,
    pid_alive,
    user_home,
    veth_pair,
    wg_quick_text,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and TUN devices need root")

SERVER_OVERLAY = "100.64.0.1"
CLIENT_OVERLAY = "100.64.0.2"
WG_PORT = 51820

# A client inside a namespace: GET a URL, print status and body; no proxy from anywhere.
FETCH = r"""
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(sys.argv[1], timeout=5) as r:
    sys.stdout.write(f"{r.status}\n" + r.read().decode())
"""

# Connect only; print "refused", "timeout" or "connected".
CONNECT = r"""
import socket, sys
s = socket.socket(); s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("timeout" if isinstance(e, TimeoutError) else f"error {e}")
"""


def test_tools_present() -> None:
    """setup.sh installs these (wireguard-tools wireguard-go, --no-install-recommends)."""
    for tool in ("ip", "wg", "wireguard-go", "setpriv", "ss"):
        assert shutil.which(tool), f"{tool} missing: run tests/e2e/setup.sh"
    assert Path("/dev/net/tun").exists(), "no /dev/net/tun: wireguard-go needs TUN"


def test_wg_quick_parse_matches_wg_quick_strip(tmp_path: Path) -> None:
    """parse_wg_quick keeps exactly what `wg-quick strip` keeps (and reads what it strips)."""
    text = """# a comment
[Interface]
privatekey = aLVWsk78/LEMxK+OQePCl/WLE84Oz6idfiAq3atXLHA=   # trailing comment
Address = 100.64.0.2/32, fd00::2/128
Address = 100.64.1.2/32
DNS = 100.64.0.53, example.internal
MTU = 1380
ListenPort = 51821
PostUp = echo never-run

[Peer]
PublicKey = PIM5zmGdAcXVSdso1kweF6VUsn+0eQ9s6eulWzYjtyk=
AllowedIPs = 100.64.0.1/32
AllowedIPs = 100.64.0.0/10
Endpoint = 10.77.7.1:51820
PersistentKeepalive = 25

[Peer]
PublicKey = IPpWicfXErknXwsKwAOlFhGhzu0lxJXTI1RqtrgwGS4=
AllowedIPs = 100.65.0.0/16
"""
    cfg = parse_wg_quick(text)
    assert cfg.addresses == ["100.64.0.2/32", "fd00::2/128", "100.64.1.2/32"]
    assert cfg.dns == ["100.64.0.53", "example.internal"]
    assert cfg.mtu == 1380 and cfg.listen_port == 51821
    assert cfg.allowed_ips() == ["100.64.0.1/32", "100.64.0.0/10", "100.65.0.0/16"]
    assert [p["publickey"][:4] for p in cfg.peers] == ["PIM5", "IPpW"]

    conf = tmp_path / "wgstrip0.conf"  # wg-quick wants IFNAME.conf, 0600
    conf.write_text(text)
    conf.chmod(0o600)
    stripped = subprocess.run(["wg-quick", "strip", str(conf)], capture_output=True, text=True, check=True).stdout

    def norm(t: str) -> list[tuple[str, str]]:
        out = []
        for line in t.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                out.append((line.lower(), ""))
            else:
                k, v = line.split("=", 1)
                out.append((k.strip().lower(), v.strip()))
        return out

    assert norm(cfg.setconf_text) == norm(stripped)


def _cleanup_state() -> tuple[set[str], set[str]]:
    """(our-prefix namespaces, files in wireguard-go's shared run dir)."""
    socks = set(os.listdir(WG_RUN_DIR)) if WG_RUN_DIR.exists() else set()
    return {n for n in netns_names() if n.startswith("an-")}, socks


def test_overlay_http_through_wireguard_go(tmp_path: Path) -> None:
    """Two namespaces, a veth pair, wireguard-go in each from wg-quick texts; an HTTP server bound
    only to the overlay address answers through the tunnel and not on the veth address."""
    body = f"overlay-ok-{secrets.token_hex(8)}\n"
    started_pids: list[int] = []
    names: list[str] = []
    ifnames: list[str] = []
    home = user_home()  # owned by nobody, traversable (pytest's tmp_path is not)
    try:
        (home / "www").mkdir()
        (home / "www" / "index.txt").write_text(body)
        os.chown(home / "www", *NOBODY)
        os.chown(home / "www" / "index.txt", *NOBODY)

        with Netns("server") as srv, Netns("client") as cli:
            names += [srv.name, cli.name]
            assert re.fullmatch(r"an-[0-9a-f]{6}", srv.name) and srv.name != cli.name
            link = veth_pair(srv, cli, "10.77.1.0/24")
            assert (link.a, link.b) == ("10.77.1.1", "10.77.1.2")
            # Created inside the namespaces: the root namespace never had them.
            root_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
            assert link.a_ifname not in root_links and link.b_ifname not in root_links
            assert f"{link.a}/24" in srv.addresses()[link.a_ifname]

            (srv_priv, srv_pub), (cli_priv, cli_pub) = genkey(), genkey()
            srv_conf = wg_quick_text(
                srv_priv, f"{SERVER_OVERLAY}/32", listen_port=WG_PORT, peers=[WgPeer(cli_pub, f"{CLIENT_OVERLAY}/32")]
            )
            cli_conf = wg_quick_text(
                cli_priv,
                f"{CLIENT_OVERLAY}/32",
                dns=SERVER_OVERLAY,  # stripped for wg setconf, as wg-quick does
                peers=[WgPeer(srv_pub, "100.64.0.0/10", f"{link.a}:{WG_PORT}", persistent_keepalive=25)],
            )
            with WgGoPeer(srv, srv_conf) as wsrv, WgGoPeer(cli, cli_conf) as wcli:
                started_pids += [wsrv.pid, wcli.pid]
                ifnames += [wsrv.ifname, wcli.ifname]
                assert wsrv.ifname != wcli.ifname and len(wsrv.ifname) <= 15
                assert wsrv.show().listen_port == WG_PORT
                assert wsrv.show().public_key == srv_pub
                assert "mtu 1420" in srv.link("show", wsrv.ifname)
                assert f"100.64.0.0/10 dev {wcli.ifname}" in cli.route("show")

                # The server: unprivileged, bound to the overlay address only, port 0.
                server = srv.popen(
                    ["python3", "-u", "-m", "http.server", "--bind", SERVER_OVERLAY, "--directory", home / "www", "0"],
                    user=NOBODY,
                    env={"HOME": str(home)},
                    name="http-overlay",
                )
                started_pids.append(server.pid)
                port = int(server.wait_for_line(r"Serving HTTP on \S+ port (\d+)", timeout=10).group(1))
                assert srv.tcp_listeners() == [f"{SERVER_OVERLAY}:{port}"]

                # Through the tunnel, as root and as nobody (HOME provided by the test).
                url = f"http://{SERVER_OVERLAY}:{port}/index.txt"
                r = cli.run(["python3", "-c", FETCH, url], timeout=20)
                assert r.stdout == f"200\n{body}"
                who = cli.run(
                    ["python3", "-c", "import os; print(os.getuid(), os.getgid(), os.getgroups(), os.environ['HOME'])"],
                    user=NOBODY,
                    env={"HOME": str(home)},
                )
                assert who.stdout.strip().split(maxsplit=3) == ["65534", "65534", "[]", str(home)]
                r = cli.run(["python3", "-c", FETCH, url], user=NOBODY, env={"HOME": str(home)}, timeout=20)
                assert r.stdout == f"200\n{body}"

                # Not on the veth address (nor on the server's loopback).
                r = cli.run(["python3", "-c", CONNECT, link.a, str(port)])
                assert r.stdout.strip() == "refused"
                r = srv.run(["python3", "-c", CONNECT, "127.0.0.1", str(port)])
                assert r.stdout.strip() == "refused"

                # Handshake and traffic counted on both sides.
                for peer, other in ((wsrv, cli_pub), (wcli, srv_pub)):
                    st = peer.wait_handshake(other)
                    assert st.latest_handshake > 0 and st.rx > 0 and st.tx > 0, st
                assert wsrv.show().peers[cli_pub].endpoint == f"{link.b}:{wcli.show().listen_port}"

                # set_endpoint: point the client elsewhere, then back; traffic resumes.
                wcli.set_endpoint(srv_pub, f"{link.a}:9")
                assert wcli.show().peers[srv_pub].endpoint == f"{link.a}:9"
                wcli.set_endpoint(srv_pub, f"{link.a}:{WG_PORT}")
                assert wcli.show().peers[srv_pub].endpoint == f"{link.a}:{WG_PORT}"
                assert cli.run(["python3", "-c", FETCH, url], timeout=20).stdout == f"200\n{body}"

                wcli.stop()
                assert not pid_alive(wcli.pid)
                assert not (WG_RUN_DIR / f"{wcli.ifname}.sock").exists()
                assert wcli.ifname not in cli.link("show")
    finally:
        shutil.rmtree(home, ignore_errors=True)

    after_ns, socks = _cleanup_state()
    assert not set(names) & after_ns, f"namespaces left: {set(names) & after_ns}"
    assert not [p for p in started_pids if pid_alive(p)], "a process this test started is alive"
    assert not [i for i in ifnames if f"{i}.sock" in socks], f"control sockets left: {socks}"


def test_netns_close_stops_what_it_started() -> None:
    """A process left running inside a namespace is stopped (by its pid) when the namespace closes,
    even one that ignores SIGTERM (SIGKILL after the grace period)."""
    with Netns(grace=0.5) as ns:
        name = ns.name
        p = ns.popen(["python3", "-u", "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"])
        p.wait_for_line("up")
        peer = WgGoPeer(ns)  # unconfigured: still a TUN device and a socket
        pids = [p.pid, peer.pid]
        sock = WG_RUN_DIR / f"{peer.ifname}.sock"
        assert sock.exists() and set(pids) <= set(ns.pids())
    assert name not in netns_names()
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not sock.exists()


def test_kernel_overlay_address_is_not_isolation() -> None:
    """Why the real tests check listeners / a userspace stack and not just `bind(overlay addr)`:
    with a kernel TUN (wireguard-go) the overlay address is an ordinary local address, and Linux
    (weak host model) accepts a packet for it on *any* interface. A veth neighbour that routes
    100.64.0.1 via the veth reaches the overlay-bound server without WireGuard."""
    with Netns() as srv, Netns() as cli:
        link = veth_pair(srv, cli)
        priv, _ = genkey()
        _, other_pub = genkey()
        WgGoPeer(srv, wg_quick_text(priv, f"{SERVER_OVERLAY}/32", peers=[WgPeer(other_pub, f"{CLIENT_OVERLAY}/32")]))
        with srv.started(
            ["python3", "-u", "-m", "http.server", "--bind", SERVER_OVERLAY, "0"], ready=r"port (\d+)"
        ) as http:
            port = http.match.group(1)
            r = cli.run(["python3", "-c", CONNECT, SERVER_OVERLAY, port])
            assert r.stdout.strip() in ("error [Errno 101] Network is unreachable", "timeout"), r.stdout
            cli.route("add", f"{SERVER_OVERLAY}/32", "via", link.a)
            r = cli.run(["python3", "-c", CONNECT, SERVER_OVERLAY, port])
            assert r.stdout.strip() == "connected"


def test_entered_runs_this_thread_in_the_namespace() -> None:
    """`Netns.entered()`: the test process reaches a server on the namespace's own 127.0.0.1
    (where the real tests put the mock upstream / the gateway's admin listener); outside the block
    the same address is the root namespace's loopback, where nothing listens on that port."""
    import socket
    import urllib.request

    # The port is held (bound, not listening) in the root namespace: there it must be refused.
    with socket.socket() as held, Netns() as ns:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        argv = ["python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", str(port)]
        with ns.started(argv, ready=rf"port {port}\b"):
            url = f"http://127.0.0.1:{port}/"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with ns.entered():
                with opener.open(url, timeout=5) as r:
                    assert r.status == 200
                kept = socket.create_connection(("127.0.0.1", port), timeout=5)
            with kept:  # a socket made inside stays in the namespace
                kept.sendall(b"GET / HTTP/1.0\r\n\r\n")
                assert kept.recv(12).startswith(b"HTTP/1.0 200")
            own = os.readlink("/proc/thread-self/ns/net")
            assert own == os.readlink("/proc/self/ns/net")  # back in the root namespace
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()

"""Network namespaces, veth pairs and userspace WireGuard (wireguard-go) peers for overlay tests.

    with Netns("srv") as srv, Netns("cli") as cli:
        link = veth_pair(srv, cli)                       # 10.77.X.1/24 in srv, .2/24 in cli
        (srv_priv, srv_pub), (cli_priv, cli_pub) = genkey(), genkey()
        s = WgGoPeer(srv, wg_quick_text(srv_priv, "100.64.0.1/32", listen_port=51820,
                                        peers=[WgPeer(cli_pub, "100.64.0.2/32")]))
        c = WgGoPeer(cli, wg_quick_text(cli_priv, "100.64.0.2/32",
                                        peers=[WgPeer(srv_pub, "100.64.0.1/32", f"{link.a}:51820")]))
        with srv.started(["python3", "-u", "-m", "http.server", "-b", "100.64.0.1", "0"],
                         ready=r"port (\\d+)") as http:
            cli.run(["curl", "-s", f"http://100.64.0.1:{http.match.group(1)}/"])

Everything lives in namespaces this module creates (named `an-` + 6 random hex chars) and goes
away with them: veth pairs are created directly inside their two namespaces (nothing ever appears
in the root namespace), the wireguard-go TUN devices live in their namespace, and every process
started here runs under `ip netns exec` in a session of its own (lib/procs.py) and is stopped by
its own pid/process group when its namespace closes -- never anything found by name.

Needs root, `ip` (iproute2), `wg` (wireguard-tools), `wireguard-go` (no kernel module here: it
makes a TUN device), `setpriv` (util-linux) for unprivileged commands.

wireguard-go's control sockets live in /var/run/wireguard/IFNAME.sock, shared by all namespaces:
every peer gets its own interface name (`wg` + 6 random hex chars).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lib.procs import Proc, ProcessError, spawn

NS_PREFIX = "an-"
NOBODY = (65534, 65534)
WG_RUN_DIR = Path("/var/run/wireguard")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NetnsError(RuntimeError):
    pass


def _cmd(argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None) -> str:
    """A root-namespace helper command (ip, wg): check, captured text, stderr in the error."""
    argv = [str(a) for a in argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if r.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def netns_names() -> list[str]:
    """Names of all network namespaces `ip netns` knows (ours start with NS_PREFIX)."""
    out = _cmd(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def as_user(argv: Sequence[str | os.PathLike], uid: int = NOBODY[0], gid: int = NOBODY[1]) -> list[str]:
    """`argv` run as uid/gid with no supplementary groups, no capabilities (inheritable, bounding,
    hence none effective) and no_new_privs. The environment is the caller's (pass HOME there)."""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        *[str(a) for a in argv],
    ]


def user_home(prefix: str = "an-home-", uid: int = NOBODY[0], gid: int = NOBODY[1]) -> Path:
    """A fresh HOME owned by uid/gid, 0700, directly under the system temp dir. (pytest's
    tmp_path lives under /tmp/pytest-of-root/, 0700 root: `nobody` cannot even traverse it.)
    Remove it with shutil.rmtree when done."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.chown(home, uid, gid)
    return home


@dataclass
class Netns:
    """A uniquely named network namespace with `lo` up; a context manager. On close it stops every
    process it started (by pid/process group, SIGTERM then SIGKILL) and deletes the namespace."""

    tag: str = ""  # only for log file names
    name: str = ""
    grace: float = 5.0  # SIGTERM -> SIGKILL delay for the processes it stops
    procs: list[Proc] = field(default_factory=list)
    _open: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{NS_PREFIX}{secrets.token_hex(3)}"
        if len(self.name) > 64 or "/" in self.name:
            raise ValueError(f"bad namespace name {self.name!r}")

    # -- life cycle --------------------------------------------------------------------------
    def open(self) -> "Netns":
        # `ip netns add` fails if the name exists (a parallel or leftover run): never reuse it.
        _cmd(["ip", "netns", "add", self.name])
        self._open = True
        try:
            self.ip("link", "set", "lo", "up")
        except Exception:
            self.close()
            raise
        return self

    def close(self) -> None:
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop(grace=self.grace)
            except Exception as e:  # keep going: the namespace must go
                errors.append(f"{p.name} (pid {p.pid}): {e}")
        if self._open:
            # The TUN/veth devices inside go with the namespace (a veth's peer too).
            _cmd(["ip", "netns", "del", self.name])
            self._open = False
        if errors:
            raise NetnsError(f"stopping processes in {self.name}: {'; '.join(errors)}")

    def __enter__(self) -> "Netns":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------------------
    def argv(
        self, args: Sequence[str | os.PathLike], *, user: tuple[int, int] | None = None
    ) -> list[str]:
        """`ip netns exec NAME [setpriv …] ARGS` (ip execs the command: its pid is the command's)."""
        args = [str(a) for a in args]
        if user is not None:
            args = as_user(args, *user)
        return ["ip", "netns", "exec", self.name, *args]

    def run(
        self,
        args: Sequence[str | os.PathLike],
        *,
        user: tuple[int, int] | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 60.0,
        **kw,
    ) -> subprocess.CompletedProcess:
        """subprocess.run inside the namespace: checked, captured text, bounded, in its own session.
        `user=NOBODY` runs it unprivileged (give HOME in `env`: see `user_home`)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("start_new_session", True)
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        try:
            r = subprocess.run(self.argv(args, user=user), env=_env(env), timeout=timeout, **kw)
        except subprocess.TimeoutExpired as e:
            raise NetnsError(f"in {self.name}: {' '.join(map(str, args))} timed out after {timeout}s") from e
        if check and r.returncode != 0:
            raise NetnsError(
                f"in {self.name}: {' '.join(map(str, args))} exited {r.returncode}\n"
                f"--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}"
            )
        return r

    def popen(
        self,
        args: Sequence[str | os.PathLike],
        *,
        env: Mapping[str, str] | None = None,
        user: tuple[int, int] | None = None,
        name: str | None = None,
        cwd: str | os.PathLike | None = None,
    ) -> Proc:
        """Start a long-running process in the namespace (lib/procs.spawn: own session, stdout lines
        kept and logged, stderr to a log file). It is stopped by its pid when the namespace
        closes, or earlier with `.stop()`. Wait for readiness with `.wait_for_line(regex)`."""
        name = name or "-".join(filter(None, [self.name, self.tag, Path(str(args[0])).name]))
        proc = spawn(self.argv(args, user=user), name=name, env=_env(env), cwd=cwd)
        self.procs.append(proc)
        return proc

    @contextlib.contextmanager
    def started(
        self,
        args: Sequence[str | os.PathLike],
        *,
        ready: str | re.Pattern,
        timeout: float = 30.0,
        **kw,
    ) -> Iterator[Proc]:
        """`popen` + wait for a stdout line matching `ready` (in `.match`); stopped on exit."""
        proc = self.popen(args, **kw)
        try:
            proc.match = proc.wait_for_line(ready, timeout=timeout)
            yield proc
        finally:
            proc.stop(grace=self.grace)
            self.procs.remove(proc)

    # -- iproute2 ----------------------------------------------------------------------------
    def ip(self, *args: str) -> str:
        """`ip -n NAME ARGS…` (checked), its stdout."""
        return _cmd(["ip", "-n", self.name, *map(str, args)])

    def link(self, *args: str) -> str:
        """`ip -n NAME link ARGS…`, e.g. ns.link("set", "veth0", "up")."""
        return self.ip("link", *args)

    def addr(self, ifname: str, cidr: str) -> None:
        """Add `cidr` (e.g. "10.77.3.1/24") to `ifname`."""
        self.ip("addr", "add", cidr, "dev", ifname)

    def addresses(self) -> dict[str, list[str]]:
        """{ifname: ["10.77.3.1/24", …]} of every interface (`ip -j addr`)."""
        import json

        out = {}
        for link in json.loads(self.ip("-j", "addr", "show")):
            out[link["ifname"]] = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
        return out

    def route(self, *args: str) -> str:
        return self.ip("route", *args)

    def tcp_listeners(self) -> list[str]:
        """Local addresses of the namespace's listening TCP sockets (`ss -Hltn`), e.g.
        ["100.64.0.1:8080"]: the way to prove a server has no non-overlay listener."""
        out = self.run(["ss", "-Hltn"]).stdout
        return [line.split()[3] for line in out.splitlines() if line.strip()]

    def udp_sockets(self) -> list[str]:
        """Local addresses of the namespace's UDP sockets (`ss -Hlun`), e.g. ["0.0.0.0:51820"]."""
        out = self.run(["ss", "-Hlun"]).stdout
        return [line.split()[3] for line in out.splitlines() if line.strip()]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run a block of *this Python thread* inside the namespace (setns(2) on the thread only):
        sockets it creates (requests, urllib, socket.create_connection) belong to the namespace,
        and stay there after the block -- so a fixture-held client (e.g. the mock's control API,
        the gateway's admin TCP listener, the IdP) bound to the namespace's 127.0.0.1 is reachable
        from the test process. Other threads are unaffected; don't use it around thread pools."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(f"/run/netns/{self.name}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)

    def pids(self) -> list[int]:
        """Pids of every process in the namespace (`ip netns pids`)."""
        return [int(p) for p in _cmd(["ip", "netns", "pids", self.name]).split()]


_CLONE_NEWNET = 0x40000000
_libc = None


def _setns(fd: int) -> None:
    global _libc
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, _CLONE_NEWNET)
        return
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    """A minimal environment (PATH, LANG) plus `env`: nothing of the caller's proxies or keys."""
    out = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
    out.update(env or {})
    return out


@dataclass(frozen=True)
class VethPair:
    a_ifname: str
    b_ifname: str
    a: str  # address in ns_a, e.g. "10.77.3.1"
    b: str  # address in ns_b, e.g. "10.77.3.2"
    prefixlen: int


def veth_pair(
    ns_a: Netns,
    ns_b: Netns,
    subnet: str | None = None,
    *,
    a_ifname: str | None = None,
    b_ifname: str | None = None,
    mtu: int | None = None,
) -> VethPair:
    """A veth pair created directly inside ns_a and ns_b (`ip link add A netns nsA type veth peer
    name B netns nsB`: it never exists in the root namespace), .1 of `subnet` on A, .2 on B, both
    up. `subnet` defaults to a random 10.77.X.0/24 (the namespaces are private, so the same subnet
    in parallel runs is fine; within one namespace pass distinct subnets). Interface names default
    to `v` + the other namespace's random suffix. It goes away with either namespace."""
    net = ipaddress.ip_network(subnet or f"10.77.{secrets.randbelow(254) + 1}.0/24")
    hosts = net.hosts()
    a_addr, b_addr = str(next(hosts)), str(next(hosts))
    a_ifname = a_ifname or ("v" + ns_b.name.removeprefix(NS_PREFIX))[:15]
    b_ifname = b_ifname or ("v" + ns_a.name.removeprefix(NS_PREFIX))[:15]
    _cmd(["ip", "link", "add", a_ifname, "netns", ns_a.name, "type", "veth", "peer", "name", b_ifname,
          "netns", ns_b.name])
    for ns, ifname, addr in ((ns_a, a_ifname, a_addr), (ns_b, b_ifname, b_addr)):
        ns.addr(ifname, f"{addr}/{net.prefixlen}")
        if mtu:
            ns.link("set", ifname, "mtu", str(mtu))
        ns.link("set", ifname, "up")
    return VethPair(a_ifname, b_ifname, a_addr, b_addr, net.prefixlen)


# ---- WireGuard -------------------------------------------------------------------------------------


def genkey() -> tuple[str, str]:
    """(private, public) from `wg genkey` / `wg pubkey`."""
    priv = _cmd(["wg", "genkey"]).strip()
    return priv, pubkey(priv)


def pubkey(private_key: str) -> str:
    return _cmd(["wg", "pubkey"], input=private_key + "\n").strip()


@dataclass
class WgPeer:
    """One [Peer] of a wg-quick file."""

    public_key: str
    allowed_ips: str | list[str]
    endpoint: str | None = None
    persistent_keepalive: int | None = None
    preshared_key: str | None = None

    def allowed(self) -> list[str]:
        v = self.allowed_ips
        return [s.strip() for s in (v.split(",") if isinstance(v, str) else v) if s.strip()]


def wg_quick_text(
    private_key: str,
    address: str | list[str],
    *,
    listen_port: int | None = None,
    peers: Sequence[WgPeer] = (),
    dns: str | None = None,
    mtu: int | None = 1420,
) -> str:
    """A wg-quick configuration file (what a user would get from the product's enrollment)."""
    addrs = [address] if isinstance(address, str) else list(address)
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"Address = {', '.join(addrs)}"]
    if dns:
        lines.append(f"DNS = {dns}")
    if mtu:
        lines.append(f"MTU = {mtu}")
    if listen_port is not None:
        lines.append(f"ListenPort = {listen_port}")
    for p in peers:
        lines += ["", "[Peer]", f"PublicKey = {p.public_key}"]
        if p.preshared_key:
            lines.append(f"PresharedKey = {p.preshared_key}")
        lines.append(f"AllowedIPs = {', '.join(p.allowed())}")
        if p.endpoint:
            lines.append(f"Endpoint = {p.endpoint}")
        if p.persistent_keepalive:
            lines.append(f"PersistentKeepalive = {p.persistent_keepalive}")
    return "\n".join(lines) + "\n"


# Keys only wg-quick understands; `wg-quick strip` removes them before `wg setconf`.
WG_QUICK_ONLY = {"address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown", "saveconfig"}


@dataclass
class WgQuickConfig:
    """A parsed wg-quick file: what `wg setconf` gets (`setconf_text`) and what wg-quick itself
    applies (addresses, dns, mtu). Keys are matched case-insensitively, as wg-quick does."""

    setconf_text: str
    addresses: list[str]
    dns: list[str]
    mtu: int | None
    listen_port: int | None
    interface: dict[str, str]  # lower-cased key -> value, every [Interface] key
    peers: list[dict[str, str]]  # lower-cased key -> value per [Peer] (AllowedIPs joined by ", ")

    def allowed_ips(self) -> list[str]:
        out = []
        for p in self.peers:
            out += [s.strip() for s in p.get("allowedips", "").split(",") if s.strip()]
        return out


def parse_wg_quick(text: str) -> WgQuickConfig:
    section = None
    interface: dict[str, str] = {}
    peers: list[dict[str, str]] = []
    addresses: list[str] = []
    dns: list[str] = []
    mtu = None
    kept: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\[\s*(\w+)\s*\]", line)
        if m:
            section = m.group(1).lower()
            if section == "peer":
                peers.append({})
            elif section != "interface":
                raise ValueError(f"wg-quick: unknown section [{m.group(1)}]")
            kept.append(f"[{m.group(1)}]")
            continue
        if "=" not in line or section is None:
            raise ValueError(f"wg-quick: bad line {raw!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        lk = key.lower()
        target = interface if section == "interface" else peers[-1]
        # AllowedIPs / Address / DNS may repeat: values accumulate.
        target[lk] = f"{target[lk]}, {value}" if lk in target and lk in {"allowedips", "address", "dns"} else value
        if section == "interface" and lk in WG_QUICK_ONLY:
            if lk == "address":
                addresses += [s.strip() for s in value.split(",") if s.strip()]
            elif lk == "dns":
                dns += [s.strip() for s in value.split(",") if s.strip()]
            elif lk == "mtu":
                mtu = int(value)
            continue
        kept.append(f"{key} = {value}")
    lp = interface.get("listenport")
    return WgQuickConfig(
        setconf_text="\n".join(kept) + "\n",
        addresses=addresses,
        dns=dns,
        mtu=mtu,
        listen_port=int(lp) if lp else None,
        interface=interface,
        peers=peers,
    )


@dataclass(frozen=True)
class WgPeerState:
    public_key: str
    endpoint: str | None
    allowed_ips: list[str]
    latest_handshake: int  # unix seconds; 0 = never
    rx: int  # bytes
    tx: int
    persistent_keepalive: int | None


@dataclass(frozen=True)
class WgShow:
    public_key: str
    listen_port: int
    peers: dict[str, WgPeerState]


def parse_wg_dump(text: str) -> WgShow:
    """`wg show IF dump`: an interface line (private key, public key, port, fwmark), then one
    tab-separated line per peer."""
    lines = [line.split("\t") for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty wg dump")
    _priv, pub, port, _fwmark = lines[0][:4]
    peers = {}
    for f in lines[1:]:
        pk, _psk, endpoint, allowed, hs, rx, tx, ka = f[:8]
        peers[pk] = WgPeerState(
            public_key=pk,
            endpoint=None if endpoint == "(none)" else endpoint,
            allowed_ips=[] if allowed == "(none)" else allowed.split(","),
            latest_handshake=int(hs),
            rx=int(rx),
            tx=int(tx),
            persistent_keepalive=None if ka == "off" else int(ka),
        )
    return WgShow(public_key=pub, listen_port=int(port), peers=peers)


class WgGoPeer:
    """A stock userspace WireGuard peer: `wireguard-go -f IFNAME` inside `ns`, configured from a
    wg-quick file the way wg-quick does it (`wg setconf` with the stripped file, `ip addr add` each
    Address, MTU (1420 unless the file says otherwise) and up, `ip route add` each peer's AllowedIPs
    via the interface). A context manager; also stopped by its pid when `ns` closes.

    Unlike wg-quick: no DNS, no fwmark/policy routing for 0.0.0.0/0 (a /0 becomes a plain default
    route through the interface -- in a private namespace whose endpoint is on a directly connected
    veth subnet that is enough)."""

    def __init__(
        self,
        ns: Netns,
        config: str | None = None,
        *,
        ifname: str | None = None,
        log_level: str = "verbose",
        start_timeout: float = 10.0,
    ) -> None:
        self.ns = ns
        self.ifname = ifname or f"wg{secrets.token_hex(3)}"
        if len(self.ifname) > 15:
            raise ValueError(f"interface name {self.ifname!r} longer than 15 characters")
        if (WG_RUN_DIR / f"{self.ifname}.sock").exists():
            raise NetnsError(f"{WG_RUN_DIR}/{self.ifname}.sock exists: interface name taken in another namespace")
        self.config: WgQuickConfig | None = None
        self.proc = ns.popen(
            ["wireguard-go", "-f", self.ifname],
            env={"WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": log_level},
            name=f"wireguard-go-{ns.name}-{self.ifname}",
        )
        try:
            self._wait_ready(start_timeout, log_level == "verbose")
            if config is not None:
                self.apply(config)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, timeout: float, verbose: bool) -> None:
        # The UAPI socket appears after the TUN device; `wg show` needs the socket. With
        # LOG_LEVEL=verbose, "UAPI listener started" is logged once it accepts.
        if verbose:
            self.proc.wait_for_line(r"UAPI listener started", timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            r = self.ns.run(["wg", "show", self.ifname, "dump"], check=False)
            if r.returncode == 0:
                return
            if not self.proc.alive():
                raise ProcessError(
                    f"wireguard-go {self.ifname} in {self.ns.name} exited {self.proc.popen.poll()}\n"
                    f"{self.proc.stdout_text()[-3000:]}{self.proc.stderr_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise ProcessError(f"wireguard-go {self.ifname}: no UAPI socket within {timeout}s: {r.stderr}")
            time.sleep(0.02)

    def apply(self, config_text: str) -> WgQuickConfig:
        """Configure the interface from a wg-quick file (once: addresses/routes are added)."""
        cfg = parse_wg_quick(config_text)
        # Through a pipe, as wg-quick does (`wg setconf IF <(…)`): the private key touches no file.
        self.ns.run(["wg", "setconf", self.ifname, "/dev/stdin"], input=cfg.setconf_text)
        for a in cfg.addresses:
            self.ns.addr(self.ifname, a)
        self.ns.link("set", self.ifname, "mtu", str(cfg.mtu or 1420), "up")
        for net in cfg.allowed_ips():
            v6 = ":" in net
            # replace: a route the kernel already made for an Address' own prefix is fine.
            self.ns.ip(*(["-6"] if v6 else []), "route", "replace", net, "dev", self.ifname)
        self.config = cfg
        return cfg

    def show(self) -> WgShow:
        return parse_wg_dump(self.ns.run(["wg", "show", self.ifname, "dump"]).stdout)

    def set_endpoint(self, public_key: str, endpoint: str) -> None:
        self.ns.run(["wg", "set", self.ifname, "peer", public_key, "endpoint", endpoint])

    def set(self, *args: str) -> None:
        """`wg set IFNAME ARGS…` (e.g. "peer", pub, "remove")."""
        self.ns.run(["wg", "set", self.ifname, *args])

    def wait_handshake(self, public_key: str | None = None, timeout: float = 10.0) -> WgPeerState:
        """Wait until a peer (the only one if not given) reports a handshake. A handshake happens
        only when traffic (or a keepalive) is sent: send something first."""
        deadline = time.monotonic() + timeout
        while True:
            peers = self.show().peers
            if public_key is None and len(peers) != 1:
                raise ValueError(f"{len(peers)} peers: name one")
            st = peers[public_key] if public_key else next(iter(peers.values()))
            if st.latest_handshake:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"no handshake on {self.ifname} within {timeout}s: {st}")
            time.sleep(0.05)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM wireguard-go (its own process group, by pid), SIGKILL after `grace`; the TUN
        device and its control socket go with it."""
        return self.proc.stop(grace=grace)

    def __enter__(self) -> "WgGoPeer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads) from /proc/PID/stat, in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return text[text.rindex(")") + 2] != "Z"


__all__ = [
    "NOBODY",
    "Netns",
    "NetnsError",
    "VethPair",
    "WgGoPeer",
    "WgPeer",
    "WgPeerState",
    "WgQuickConfig",
    "WgShow",
    "as_user",
    "genkey",
    "netns_names",
    "parse_wg_dump",
    "parse_wg_quick",
    "pid_alive",
    "proc_cpu_seconds",
    "pubkey",
    "user_home",
    "veth_pair",
    "wg_quick_text",
]

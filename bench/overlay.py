#!/usr/bin/env python3
"""agentnet's WireGuard overlay against two stock wireguard-go peers: bulk throughput, CPU per GB,
and the request latency the overlay adds. One run, everything in namespaces it creates.

    sudo tests/e2e/.venv/bin/python bench/overlay.py \\
        --agentnet-bin /work/target/release/agentnet --mock-llm-bin /work/target/release/mock-llm

(the e2e venv has httpx/jwt/requests, which tests/e2e/lib/gateway.py imports; build the release
binaries with `cargo build --release -p cli -p testkit --bins`). Needs root, wireguard-go, wg.

Rows (each transfer is --mib MiB; the median of --repeat transfers is reported):

- baseline (bench/overlay_baseline.py): a bare veth pair (the sender/sink ceiling), and two
  stock wireguard-go peers with a raw TCP sink (upload) / source (download) on the overlay
  address.
- `agentnet plain listener`: the same server's `[listen] ai` on 127.0.0.1 in the server
  namespace, a session bearer token: the gateway's own cost with no tunnel at all.
- `agentnet overlay <- wireguard-go`: the server (overlay on, userspace gotatun + smoltcp) in
  one namespace, a stock wireguard-go peer configured from `agentnet peer config` in another.
- `agentnet overlay <- agentnet up`: the same server, `agentnet up` (userspace tunnel, local
  forward 127.0.0.1:4000) in the client namespace.

Through agentnet the bytes are Anthropic Messages requests (`POST /v1/messages`, one JSON body
of up to --request-mib MiB, several on one kept-alive connection per transfer): the gateway
reads each body whole, parses it, forwards it to the mock upstream on the server's loopback and
answers once the mock has. Throughput is request bytes / time to the last response. Downloads
(--download-mib, 0 to skip) script the mock's reply to a text of that size: small request, big
non-streamed JSON answer streamed back through the gateway.

Latency: small non-streaming Messages requests one at a time over one kept-alive connection per
series (in-process http.client inside the namespace), --latency requests per series after
--warmup, interleaved in rounds so drift hits every series alike: direct to the mock, the plain
listener, the overlay via wireguard-go, the overlay via `agentnet up`.

CPU is utime+stime of whole processes from /proc (all threads) around each transfer, per 1e9
bytes moved. Units: MB = 1e6 B, GB = 1e9 B, MiB = 2^20 B.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import overlay_baseline as baseline  # noqa: E402
from lib.netns import NOBODY, Netns, VethPair, WgGoPeer, proc_cpu_seconds, user_home, veth_pair  # noqa: E402

try:
    from lib.gateway import GatewayConfig, agentnet_bin, start_gateway  # noqa: E402
    from lib.mock_llm import start_mock_llm  # noqa: E402
except ImportError as e:  # httpx, jwt, requests
    sys.exit(f"{e}: run with the e2e venv's python (tests/e2e/.venv/bin/python; tests/e2e/setup.sh makes it)")

ADMIN_PORT = 4001
WG_PORT = 51820
UP_LOCAL = "127.0.0.1:4000"
MODEL = "claude-sonnet-4-5"
KEY_ENV = "BENCH_ANTHROPIC_KEY"

# ---- the client side of a transfer, run as its own process in a namespace ------------------------
#
# argv: mode host port total per_request path headers_json
#   up:      POST JSON Messages bodies totalling `total` bytes, `per_request` each, one connection
#   down:    POST small Messages requests until `total` response-body bytes came back
#   rawdown: connect, read to EOF (the baseline's raw source)
# JSON on stdout: seconds, bytes, sender CPU, per-request seconds, statuses, first error body.
CLIENT = r"""
import base64, json, os, resource, socket, sys, time
mode, host, port, total, per, path, headers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], json.loads(sys.argv[7])
MODEL = "claude-sonnet-4-5"
filler = memoryview(base64.b64encode(os.urandom(3 << 20)))  # 4 MiB of JSON-safe text

def read_response(f):
    status = f.readline()
    if not status:
        raise RuntimeError("connection closed before a response")
    code = int(status.split()[1])
    length, chunked = None, False
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        k = k.strip().lower()
        if k == "content-length":
            length = int(v)
        elif k == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    n, head = 0, b""
    def take(k):
        nonlocal n, head
        while k:
            d = f.read1(min(k, 1 << 20))
            if not d:
                raise RuntimeError("body cut short")
            if len(head) < 600:
                head += d[:600 - len(head)]
            n += len(d); k -= len(d)
    if chunked:
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            take(size); f.readline()
    elif length is not None:
        take(length)
    return code, n, head

t0 = time.monotonic(); r0 = resource.getrusage(resource.RUSAGE_SELF)
s = socket.create_connection((host, port), timeout=300)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 23)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb", buffering=1 << 20)
hdrs = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
times, statuses, moved, error = [], [], 0, None
if mode == "rawdown":
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        moved += len(d)
elif mode == "up":
    left = total
    while left:
        size = min(per, left)
        pre = ('{"model":"%s","max_tokens":1,"messages":[{"role":"user","content":"' % MODEL).encode()
        post = b'"}]}'
        text = size - len(pre) - len(post)
        t = time.monotonic()
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{hdrs}Content-Length: {size}\r\n\r\n".encode() + pre)
        k = text
        while k:
            c = min(k, len(filler)); s.sendall(filler[:c]); k -= c
        s.sendall(post)
        code, _, head = read_response(f)
        times.append(time.monotonic() - t); statuses.append(code)
        if code != 200 and error is None:
            error = head.decode(errors="replace")
        moved += size; left -= size
else:  # down
    body = json.dumps({"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "send the big one"}]}).encode()
    while moved < total:
        t = time.monotonic()
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{hdrs}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        code, n, head = read_response(f)
        times.append(time.monotonic() - t); statuses.append(code)
        if code != 200:
            error = error or head.decode(errors="replace")
            break
        moved += n
t1 = time.monotonic(); r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"seconds": t1 - t0, "bytes": moved, "sender_cpu": cpu, "request_seconds": times, "statuses": statuses, "error": error}))
"""

# The baseline's download counterpart of its raw sink: accept, send N bytes, close.
SOURCE = r"""
import os, socket, sys
host, total = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, 0)); s.listen(4)
print("listening", s.getsockname()[1], flush=True)
chunk = memoryview(os.urandom(1 << 22))
while True:
    c, _ = s.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 23)
    left = total
    while left:
        k = min(left, len(chunk)); c.sendall(chunk[:k]); left -= k
    c.close()
"""


@dataclass
class Row:
    name: str
    direction: str  # "up" or "down"
    mbps: float
    spread: str  # min-max MB/s over the repeats
    cpu_per_gb: dict[str, float]  # process label -> CPU s per GB (median run)
    sender_per_gb: float | None
    notes: list[str] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)


@dataclass
class Endpoint:
    """Where the bulk client connects from and to, and whose CPU counts."""

    name: str
    ns: Netns
    host: str
    port: int
    cpu: dict[str, int]
    headers: dict[str, str]
    nets: dict[str, Netns] = field(default_factory=dict)  # label -> namespace whose drop counters count
    path: str = "/v1/messages"


def net_counters(ns: Netns) -> dict[str, int]:
    """Loss evidence in a namespace: TCP retransmissions, UDP buffer drops, interface drops."""
    out: dict[str, int] = {}
    lines = ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        proto, _, keys = names.partition(": ")
        vals = dict(zip(keys.split(), values.partition(": ")[2].split()))
        for k in {"Tcp": ["RetransSegs"], "Udp": ["RcvbufErrors", "SndbufErrors"]}.get(proto, []):
            out[f"{proto} {k}"] = int(vals[k])
    for link in json.loads(ns.ip("-j", "-s", "link", "show")):
        if link["ifname"] == "lo":
            continue
        kind = "wg" if link["ifname"].startswith("wg") else "veth"
        st = link.get("stats64", {})
        for d in ("rx", "tx"):
            key = f"{kind} {d} dropped"
            out[key] = out.get(key, 0) + int(st.get(d, {}).get("dropped", 0))
    return out


def net_delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, int]:
    return {f"{label}: {k}": after[label][k] - v for label, c in before.items() for k, v in c.items()
            if after[label].get(k, v) - v}


def measure(ep: Endpoint, mode: str, total: int, per: int) -> dict:
    before = {k: proc_cpu_seconds(pid) for k, pid in ep.cpu.items()}
    net0 = {label: net_counters(ns) for label, ns in ep.nets.items()}
    r = ep.ns.run(
        [sys.executable, "-c", CLIENT, mode, ep.host, str(ep.port), str(total), str(per), ep.path, json.dumps(ep.headers)],
        timeout=900,
    )
    after = {k: proc_cpu_seconds(pid) for k, pid in ep.cpu.items()}
    out = json.loads(r.stdout)
    out["cpu"] = {k: after[k] - before[k] for k in ep.cpu}
    out["net"] = net_delta(net0, {label: net_counters(ns) for label, ns in ep.nets.items()})
    bad = [s for s in out["statuses"] if s != 200]
    if bad:
        raise RuntimeError(f"{ep.name} ({mode}): statuses {out['statuses']}; first error: {out['error']}")
    return out


def summarize(name: str, direction: str, runs: list[dict]) -> Row:
    runs = sorted(runs, key=lambda r: r["bytes"] / r["seconds"])
    med = runs[len(runs) // 2]
    gb = med["bytes"] / 1e9
    notes = []
    times = [t for r in runs for t in r.get("request_seconds", [])]
    if len(times) > 2:
        fastest = min(times)
        stalls = [t for t in times if t > 2 * fastest + 0.5]
        if stalls:
            notes.append(f"stalls: {len(stalls)} of {len(times)} requests took > 2x the fastest ({fastest:.2f} s) + 0.5 s: "
                         + ", ".join(f"{t:.2f}" for t in sorted(stalls)[-6:]) + " s")
    net: dict[str, int] = {}
    for r in runs:
        for k, v in r.get("net", {}).items():
            net[k] = net.get(k, 0) + v
    if net:
        notes.append(f"counters over {len(runs)} runs: " + ", ".join(f"{k} {v}" for k, v in net.items()))
    return Row(
        name=name,
        direction=direction,
        mbps=med["bytes"] / med["seconds"] / 1e6,
        spread=f"{runs[0]['bytes'] / runs[0]['seconds'] / 1e6:.0f}-{runs[-1]['bytes'] / runs[-1]['seconds'] / 1e6:.0f}",
        cpu_per_gb={k: v / gb for k, v in med["cpu"].items()},
        sender_per_gb=med["sender_cpu"] / gb if med.get("sender_cpu") else None,
        notes=notes,
        runs=runs,
    )


def repeat(ep: Endpoint, mode: str, total: int, per: int, n: int, direction: str) -> Row:
    measure(ep, mode, min(total, 2 * per), per)  # warm-up: handshake, windows, pools
    return summarize(ep.name, direction, [measure(ep, mode, total, per) for _ in range(n)])


# ---- baseline --------------------------------------------------------------------------------------


def baseline_rows(total: int, n: int, download: int) -> tuple[list[Row], list[str]]:
    rows, findings = [], []
    for make in (baseline.plain_veth, baseline.wireguard_go_pair):
        with contextlib.ExitStack() as stack:
            t = make(stack)
            nets = {"client ns": t.client_ns, "server ns": t.iperf3_server_ns}
            baseline.transfer(t, 8 << 20)
            runs = []
            for _ in range(n):
                net0 = {label: net_counters(ns) for label, ns in nets.items()}
                r = baseline.transfer(t, total)
                runs.append({"seconds": r.seconds, "bytes": r.nbytes, "sender_cpu": r.sender_cpu, "cpu": r.cpu,
                             "net": net_delta(net0, {label: net_counters(ns) for label, ns in nets.items()})})
            rows.append(summarize(t.name, "up", runs))
            if download and make is baseline.wireguard_go_pair:
                srv = t.iperf3_server_ns
                src = stack.enter_context(srv.started(["python3", "-u", "-c", SOURCE, t.host, str(total)],
                                                      ready=r"listening (\d+)", name="source"))
                cpu = {k: v for k, v in t.cpu.items() if not k.startswith("sink")} | {"source (python)": src.pid}
                ep = Endpoint(t.name, t.client_ns, t.host, int(src.match.group(1)), cpu, {}, nets)
                measure(ep, "rawdown", total, total)
                rows.append(summarize(t.name, "down", [measure(ep, "rawdown", total, total) for _ in range(n)]))
            if make is baseline.wireguard_go_pair:
                for label, ns in nets.items():
                    findings += [f"baseline {label} UDP socket {s}" for s in udp_sockets(ns)]
    return rows, findings


# ---- agentnet --------------------------------------------------------------------------------------

CODE_URL = re.compile(r"(https?://\S+user_code=\S+)")
PASSWORD_LINE = re.compile(r"(?m)^\s*password:?\s+(\S+)\s*$", re.I)


def _env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "LANG": "C.UTF-8"}


def sign_in(gw, ns: Netns, veth: VethPair, name: str) -> Path:
    """A local account in group engineering, signed in as nobody in `ns` exactly as
    tests/e2e/test_overlay.py does (device code approved by POSTing the form from `ns`)."""
    import requests

    login = f"{name}{secrets.token_hex(2)}"
    created = gw.cli("users", "create", login, "--email", f"{login}@example.com", "--group", "engineering")
    m = PASSWORD_LINE.search(created.stdout) or re.search(r"password\S*\s+(\S{12,})", created.stdout, re.I)
    if not m:
        raise RuntimeError(f"no generated password in:\n{created.stdout}")
    home = user_home("an-bench-home-")
    server = f"http://{veth.a}:{ADMIN_PORT}"
    proc = ns.popen([agentnet_bin(), "login", "--server", server, "--no-open"], env=_env(home), user=NOBODY,
                    name="agentnet-login")
    try:
        deadline = time.monotonic() + 20
        while not (mm := CODE_URL.search(proc.stderr_text())):
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"no sign-in link from agentnet login:\n{proc.stderr_text()}")
            time.sleep(0.05)
        link = re.sub(r"^https?://[^/]+", server, mm.group(1))
        with ns.entered():
            s = requests.Session()
            s.trust_env = False
            page = s.get(link, timeout=10)
            code = re.search(r'name="user_code" value="([A-Z-]+)"', page.text).group(1)
            ok = s.post(f"{server}/auth/activate", timeout=20,
                        data={"user_code": code, "login": login, "password": m.group(1), "action": "approve"})
            if ok.status_code != 200:
                raise RuntimeError(f"approving the device code: {ok.status_code} {ok.text[:300]}")
        if proc.popen.wait(timeout=30) != 0:
            raise RuntimeError(f"agentnet login failed:\n{proc.stderr_text()}")
    finally:
        proc.stop()
        if proc in ns.procs:
            ns.procs.remove(proc)
    return home


@dataclass
class Agentnet:
    srv: Netns
    cli: Netns
    gw: object
    mock: object
    wg: WgGoPeer
    up: object  # lib.procs.Proc of `agentnet up`
    token: str
    overlay_addr: str
    homes: list[Path]


@contextlib.contextmanager
def agentnet_setup(request_bytes: int, log_level: str) -> Iterator[Agentnet]:
    root = Path(tempfile.mkdtemp(prefix="an-bench-"))
    homes: list[Path] = []
    try:
        with contextlib.ExitStack() as stack:
            srv = stack.enter_context(Netns("bench-an-srv"))
            cli = stack.enter_context(Netns("bench-an-cli"))
            veth = veth_pair(srv, cli, "10.77.250.0/24")
            mock = stack.enter_context(start_mock_llm("--max-recorded", "0", ns=srv))
            cfg = GatewayConfig(issuer=None, data_dir=root / "data", log_level=log_level)
            cfg.listen_ai = "127.0.0.1:0"
            cfg.listen_admin = f"{veth.a}:{ADMIN_PORT}"
            cfg.overlay = {"enabled": True, "listen": f"0.0.0.0:{WG_PORT}"}
            cfg.provider("anthropic", "anthropic", mock.url, key_env=KEY_ENV)
            cfg.policy("bench", groups=["engineering"], providers=["anthropic"])
            cfg.extra = f'[limits]\nmax_request_bytes = {request_bytes + (1 << 20)}\n\n[login]\naccess_ttl = "1h"\n'
            key = f"sk-ant-bench-{secrets.token_hex(16)}"
            gw = stack.enter_context(start_gateway(cfg, env={KEY_ENV: key}, ns=srv, name="agentnet-server"))
            overlay_addr = (gw.overlay or {}).get("address") or baseline.SERVER_OVERLAY
            overlay_addr = overlay_addr.split("/")[0]

            home_wg = sign_in(gw, cli, veth, "benchwg")
            home_up = sign_in(gw, cli, veth, "benchup")
            homes += [home_wg, home_up]
            text = cli.run([agentnet_bin(), "peer", "config", "--name", "bench-wg"], env=_env(home_wg), user=NOBODY).stdout
            wg = stack.enter_context(WgGoPeer(cli, text, log_level="error"))
            token = cli.run([agentnet_bin(), "token"], env=_env(home_wg), user=NOBODY).stdout.strip()

            up = cli.popen([agentnet_bin(), "up", "--name", "bench-up", "--listen", UP_LOCAL], env=_env(home_up),
                           user=NOBODY, name="agentnet-up")
            deadline = time.monotonic() + 30
            while "agentnet is up" not in up.stderr_text():
                if not up.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"agentnet up did not come up:\n{up.stderr_text()}")
                time.sleep(0.05)
            yield Agentnet(srv, cli, gw, mock, wg, up, token, overlay_addr, homes)
    finally:
        for h in homes:
            shutil.rmtree(h, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def endpoints(a: Agentnet) -> list[Endpoint]:
    ai = a.gw.ai_url.removeprefix("http://")
    host, port = ai.rsplit(":", 1)
    base = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    server = {"agentnet server": a.gw.proc.pid, "mock-llm": a.mock.proc.pid}
    nets = {"client ns": a.cli, "server ns": a.srv}
    return [
        Endpoint("agentnet plain listener (loopback)", a.srv, host, int(port), server,
                 base | {"authorization": f"Bearer {a.token}"}, {"server ns": a.srv}),
        Endpoint("agentnet overlay <- wireguard-go", a.cli, a.overlay_addr, 80,
                 {"agentnet server": a.gw.proc.pid, "wireguard-go client": a.wg.pid, "mock-llm": a.mock.proc.pid},
                 base, nets),
        Endpoint("agentnet overlay <- agentnet up", a.cli, "127.0.0.1", int(UP_LOCAL.rsplit(":", 1)[1]),
                 {"agentnet server": a.gw.proc.pid, "agentnet up": a.up.pid, "mock-llm": a.mock.proc.pid}, base, nets),
    ]


def latency(a: Agentnet, eps: list[Endpoint], n: int, warmup: int, rounds: int) -> dict[str, dict]:
    """p50/p90/p99 of small Messages requests, one at a time, one kept-alive connection per series."""
    mock_host, mock_port = a.mock.url.removeprefix("http://").rsplit(":", 1)
    series = [("direct to mock", a.srv, mock_host, int(mock_port), {"x-api-key": "sk-ant-bench-direct"})]
    series += [(ep.name.removeprefix("agentnet "), ep.ns, ep.host, ep.port, {}) for ep in eps]
    body = json.dumps({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}).encode()
    conns = {}
    for label, ns, host, port, extra in series:
        with ns.entered():
            c = http.client.HTTPConnection(host, port, timeout=30)
            c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"} | extra
        if label.startswith("plain"):
            headers["authorization"] = f"Bearer {a.token}"
        conns[label] = (c, headers)

    def one(label: str) -> float:
        c, headers = conns[label]
        t = time.perf_counter_ns()
        c.request("POST", "/v1/messages", body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        dt = (time.perf_counter_ns() - t) / 1e6
        if r.status != 200:
            raise RuntimeError(f"latency series {label}: {r.status} {data[:300]!r}")
        return dt

    for label in conns:
        for _ in range(warmup):
            one(label)
    samples: dict[str, list[float]] = {label: [] for label in conns}
    per_round = math.ceil(n / rounds)
    for _ in range(rounds):
        for label in conns:
            for _ in range(per_round):
                samples[label].append(one(label))
    for c, _ in conns.values():
        c.close()
    out = {}
    for label, xs in samples.items():
        xs.sort()
        q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
        out[label] = {"n": len(xs), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": xs[-1],
                      "mean": statistics.fmean(xs)}
    return out


def udp_sockets(ns: Netns) -> list[str]:
    """Each UDP socket's owner, receive buffer and drop count (`ss -uamnp`): WireGuard's packet
    loss happens here when the reader falls behind."""
    out, head = [], None
    for line in ns.run(["ss", "-Huamnp"]).stdout.splitlines():
        if "skmem:" in line and head:
            m = re.search(r"rb(\d+).*?d(\d+)\)", line)
            proc = re.search(r'users:\(\("([^"]+)"', head)
            if m:
                out.append(f"{head.split()[3]} ({proc.group(1) if proc else '?'}): rcvbuf {m.group(1)} B, drops {m.group(2)}")
            head = None
        else:
            head = line
    return out


def log_findings(a: Agentnet) -> list[str]:
    """Warnings and errors the agentnet processes and the wireguard-go peer logged (read after
    they stopped, so that shutdown is included)."""
    found = []
    counts: dict[str, int] = {}
    stopping = False
    for e in a.gw.log_events():
        f = e.get("fields", {})
        stopping = stopping or str(f.get("message", "")).startswith("shutting down")
        level = str(e.get("level", "")).upper()
        if level in ("WARN", "ERROR"):
            msg = f"server {level}{' during shutdown' if stopping else ''}: {f.get('message')}"
            msg += f" ({f['error']})" if "error" in f else ""
            counts[msg] = counts.get(msg, 0) + 1
    found += [f"{msg} x{n}" for msg, n in counts.items()]
    for label, text in (("agentnet up", a.up.stderr_text()), ("wireguard-go", a.wg.proc.stderr_text())):
        bad = [ln for ln in text.splitlines() if re.search(r"\b(WARN|ERROR|error|panic)", ln)]
        if bad:
            found.append(f"{label}: {len(bad)} warning/error lines, e.g. {bad[-1][:200]}")
    return found


# ---- report ----------------------------------------------------------------------------------------


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} CPUs ({model}), kernel {platform.release()}, load {' '.join(open('/proc/loadavg').read().split()[:3])}"


def table(rows: list[Row]) -> str:
    out = ["| path | dir | MB/s (median) | runs MB/s | CPU s/GB per process | sender CPU s/GB |",
           "|---|---|---:|---:|---|---:|"]
    for r in rows:
        procs = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_per_gb.items())
        sender = f"{r.sender_per_gb:.2f}" if r.sender_per_gb else "-"
        out.append(f"| {r.name} | {r.direction} | {r.mbps:.0f} | {r.spread} | {procs} | {sender} |")
    return "\n".join(out)


def ratios(rows: list[Row]) -> str:
    by = {(r.name, r.direction): r for r in rows}
    wg = "wireguard-go <-> wireguard-go"
    out = ["| path | dir | throughput / wg-go pair | server-side CPU/GB / wg-go server | client-side CPU/GB / wg-go client |",
           "|---|---|---:|---:|---:|"]
    for (name, d), r in by.items():
        base = by.get((wg, d))
        if not name.startswith("agentnet overlay") or base is None:
            continue
        client_label = "wireguard-go client" if "wireguard-go client" in r.cpu_per_gb else "agentnet up"
        out.append(
            f"| {name} | {d} | {r.mbps / base.mbps:.2f} | "
            f"{r.cpu_per_gb['agentnet server'] / base.cpu_per_gb['wireguard-go server']:.2f} | "
            f"{r.cpu_per_gb[client_label] / base.cpu_per_gb['wireguard-go client']:.2f} |"
        )
    return "\n".join(out)


def latency_table(lat: dict[str, dict]) -> str:
    plain = lat.get("plain listener (loopback)")
    out = ["| series | n | p50 ms | p90 ms | p99 ms | max ms | added p50 vs plain | added p99 vs plain |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, s in lat.items():
        add50 = f"{s['p50'] - plain['p50']:+.3f}" if plain and label.startswith("overlay") else ""
        add99 = f"{s['p99'] - plain['p99']:+.3f}" if plain and label.startswith("overlay") else ""
        out.append(f"| {label} | {s['n']} | {s['p50']:.3f} | {s['p90']:.3f} | {s['p99']:.3f} | {s['max']:.2f} | {add50} | {add99} |")
    return "\n".join(out)


def pick_binaries(args: argparse.Namespace) -> None:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release"
    for flag, env, name in ((args.agentnet_bin, "AGENTNET_BIN", "agentnet"), (args.mock_llm_bin, "MOCK_LLM_BIN", "mock-llm")):
        path = Path(flag or os.environ.get(env) or target / name)
        if not (path.is_file() and os.access(path, os.X_OK)):
            sys.exit(f"{name} binary not found at {path}: cargo build --release -p cli -p testkit --bins, or --{name}-bin")
        if "/debug/" in str(path):
            print(f"warning: {path} is a debug build; the figures will mean little", file=sys.stderr)
        os.environ[env] = str(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=256, help="MiB per transfer (default 256)")
    ap.add_argument("--request-mib", type=int, default=48, help="largest Messages body through agentnet (the mock reads at most 64 MiB)")
    ap.add_argument("--download-mib", type=int, default=32, help="response size of the download variant; 0 skips downloads")
    ap.add_argument("--repeat", type=int, default=3, help="transfers per row; the median is reported")
    ap.add_argument("--latency", type=int, default=500, help="requests per latency series")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up requests per latency series")
    ap.add_argument("--rounds", type=int, default=5, help="latency series are interleaved in this many rounds")
    ap.add_argument("--log-level", default="info", help="the server's [log] level (default info)")
    ap.add_argument("--agentnet-bin")
    ap.add_argument("--mock-llm-bin")
    ap.add_argument("--json-out", help="write every figure and run here as JSON")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, TUN)", file=sys.stderr)
        return 2
    pick_binaries(args)
    total = args.mib << 20
    n_req = math.ceil(args.mib / args.request_mib)
    per = math.ceil(total / n_req)
    down = args.download_mib << 20
    print(f"{machine()}\n{args.mib} MiB x {args.repeat} per row; through agentnet {n_req} requests of {per / 2**20:.1f} MiB "
          f"per transfer; downloads {args.download_mib} MiB per response; latency {args.latency} requests per series",
          flush=True)
    started = time.monotonic()

    rows, base_findings = baseline_rows(total, args.repeat, down)
    print(f"baseline done ({time.monotonic() - started:.0f} s)", flush=True)
    with agentnet_setup(per, args.log_level) as a:
        eps = endpoints(a)
        for ep in eps:
            rows.append(repeat(ep, "up", total, per, args.repeat, "up"))
            print(f"{ep.name}: up {rows[-1].mbps:.0f} MB/s ({time.monotonic() - started:.0f} s)", flush=True)
        if down:
            with a.srv.entered():
                a.mock.set_default({"text": "x" * (down - 1024), "usage": {"input": 10, "output": 5}})
            for ep in eps:
                rows.append(repeat(ep, "down", total, down, args.repeat, "down"))
                print(f"{ep.name}: down {rows[-1].mbps:.0f} MB/s ({time.monotonic() - started:.0f} s)", flush=True)
            with a.srv.entered():
                a.mock.reset()
        lat = latency(a, eps, args.latency, args.warmup, args.rounds)
        findings = base_findings + [f"{label} UDP socket {u}" for label, ns in (("server ns", a.srv), ("client ns", a.cli))
                                    for u in udp_sockets(ns)]
        for ep in eps:
            for p in ep.cpu.values():
                if not Path(f"/proc/{p}").exists():
                    findings.append(f"process {p} of {ep.name} is gone")
    findings += log_findings(a)

    print(f"\n{machine()}; {time.monotonic() - started:.0f} s\n")
    print(table(rows))
    print()
    print(ratios(rows))
    print()
    print(latency_table(lat))
    for r in rows:
        for note in r.notes:
            print(f"note: {r.name} {r.direction}: {note}")
    print("\nfindings (server/client logs, UDP sockets at the end):" if findings else "\nfindings: none")
    for f in findings:
        print(f"  {f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "machine": machine(), "args": vars(args),
            "rows": [r.__dict__ for r in rows], "latency": lat, "findings": findings,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Bulk TCP throughput through a WireGuard overlay, and the CPU it costs, in network namespaces.

    python3 bench/overlay_baseline.py                  # 256 MiB x 3 per target
    python3 bench/overlay_baseline.py --mib 1024 --repeat 5 --iperf3

Needs root (namespaces, TUN), wireguard-go and wg (tests/e2e/setup.sh installs them); iperf3 is
optional (`apt-get install --no-install-recommends iperf3`) for a cross-check.

Each *target* is a function `(ExitStack) -> Target` that builds its own namespaces and processes
(closed by the stack) and says where a sender connects (an overlay address, from a client
namespace) and which processes' CPU to measure (/proc/PID/stat utime+stime, all threads, before
and after each transfer). The sender (Python, 4 MiB sendall, large socket buffers) reports its
own CPU time: the `plain veth` target shows what sender and receiver manage without WireGuard,
i.e. that they are not what limits the overlay rows.

bench/overlay.py imports this module and measures the agentnet server (overlay via a stock
wireguard-go peer and via `agentnet up`, and its plain listener) side by side with these targets,
in one run; BENCHMARKS.md has the figures.

Units: MB = 10^6 bytes, GB = 10^9 bytes, MiB = 2^20 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from lib.netns import (  # noqa: E402
    Netns,
    WgGoPeer,
    WgPeer,
    genkey,
    proc_cpu_seconds,
    veth_pair,
    wg_quick_text,
)

SERVER_OVERLAY = "100.64.0.1"
CLIENT_OVERLAY = "100.64.0.2"
WG_PORT = 51820

# Raw sink: accept, read to EOF, reply "OK <bytes>", next connection.
SINK = r"""
import socket, sys
host = sys.argv[1]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, 0)); s.listen(4)
print("listening", s.getsockname()[1], flush=True)
buf = bytearray(1 << 22); view = memoryview(buf)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
    n = 0
    while True:
        k = c.recv_into(view)
        if not k:
            break
        n += k
    c.sendall(f"OK {n}\n".encode()); c.close()
"""

# Sender: connect, push N bytes, wait for the sink's answer; JSON result on stdout.
SEND = r"""
import json, os, resource, socket, sys, time
host, port, total, mode, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
chunk = memoryview(os.urandom(1 << 22))
t0 = time.monotonic(); r0 = resource.getrusage(resource.RUSAGE_SELF)
s = socket.create_connection((host, port), timeout=120)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 23)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if mode == "http":
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
              f"Content-Length: {total}\r\nConnection: close\r\n\r\n".encode())
left = total
while left:
    k = min(left, len(chunk)); s.sendall(chunk[:k]); left -= k
if mode == "raw":
    s.shutdown(socket.SHUT_WR)
reply = b""
while not reply.endswith(b"\n"):
    d = s.recv(4096)
    if not d:
        break
    reply += d
t1 = time.monotonic(); r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"seconds": t1 - t0, "sender_cpu": cpu, "reply": reply.decode(errors="replace").strip()}))
"""


@dataclass
class Target:
    name: str
    client_ns: Netns  # where the sender runs
    host: str  # where it connects
    port: int
    cpu: dict[str, int]  # label -> pid whose CPU is measured
    sink: str = "raw"  # "raw" (our sink) or "http" (one POST)
    http_path: str = "/"
    iperf3_server_ns: Netns | None = None  # set if an iperf3 server can run next to the sink
    notes: list[str] = field(default_factory=list)


def _sink(stack: contextlib.ExitStack, ns: Netns, host: str) -> tuple[int, int]:
    proc = stack.enter_context(ns.started(["python3", "-u", "-c", SINK, host], ready=r"listening (\d+)", name="sink"))
    return int(proc.match.group(1)), proc.pid


def _wg_pair(stack: contextlib.ExitStack) -> tuple[Netns, Netns, WgGoPeer, WgGoPeer]:
    srv = stack.enter_context(Netns("bench-srv"))
    cli = stack.enter_context(Netns("bench-cli"))
    link = veth_pair(srv, cli)
    (sp, spub), (cp, cpub) = genkey(), genkey()
    wsrv = stack.enter_context(
        WgGoPeer(srv, wg_quick_text(sp, f"{SERVER_OVERLAY}/32", listen_port=WG_PORT, peers=[WgPeer(cpub, f"{CLIENT_OVERLAY}/32")]), log_level="error")
    )
    wcli = stack.enter_context(
        WgGoPeer(cli, wg_quick_text(cp, f"{CLIENT_OVERLAY}/32", peers=[WgPeer(spub, "100.64.0.0/10", f"{link.a}:{WG_PORT}")]), log_level="error")
    )
    return srv, cli, wsrv, wcli


def plain_veth(stack: contextlib.ExitStack) -> Target:
    """No WireGuard: the sender/sink ceiling over a bare veth pair."""
    srv = stack.enter_context(Netns("bench-srv"))
    cli = stack.enter_context(Netns("bench-cli"))
    link = veth_pair(srv, cli)
    port, sink_pid = _sink(stack, srv, link.a)
    return Target("plain veth (no WireGuard)", cli, link.a, port, {"sink (python)": sink_pid}, iperf3_server_ns=srv)


def wireguard_go_pair(stack: contextlib.ExitStack) -> Target:
    """Two stock wireguard-go peers (TUN, MTU 1420) over a veth pair; sink on the overlay address."""
    srv, cli, wsrv, wcli = _wg_pair(stack)
    port, sink_pid = _sink(stack, srv, SERVER_OVERLAY)
    return Target(
        "wireguard-go <-> wireguard-go",
        cli,
        SERVER_OVERLAY,
        port,
        {"wireguard-go server": wsrv.pid, "wireguard-go client": wcli.pid, "sink (python)": sink_pid},
        iperf3_server_ns=srv,
    )


# bench/overlay.py adds the agentnet rows (its own harness: HTTP requests, not a raw sink).
TARGETS: list[Callable[[contextlib.ExitStack], Target]] = [plain_veth, wireguard_go_pair]


@dataclass
class Run:
    seconds: float
    nbytes: int
    sender_cpu: float
    cpu: dict[str, float]

    @property
    def mbps(self) -> float:
        return self.nbytes / self.seconds / 1e6


def transfer(t: Target, nbytes: int) -> Run:
    before = {k: proc_cpu_seconds(pid) for k, pid in t.cpu.items()}
    r = t.client_ns.run(
        ["python3", "-c", SEND, t.host, str(t.port), str(nbytes), t.sink, t.http_path], timeout=600
    )
    after = {k: proc_cpu_seconds(pid) for k, pid in t.cpu.items()}
    out = json.loads(r.stdout)
    reply = out["reply"]
    if t.sink == "raw" and reply != f"OK {nbytes}":
        raise RuntimeError(f"{t.name}: sink answered {reply!r}, expected 'OK {nbytes}'")
    if t.sink == "http" and not reply.startswith("HTTP/1.1 2"):
        raise RuntimeError(f"{t.name}: HTTP answer {reply!r}")
    return Run(out["seconds"], nbytes, out["sender_cpu"], {k: after[k] - before[k] for k in t.cpu})


def iperf3(t: Target, nbytes: int) -> tuple[Run, dict] | None:
    """The same transfer with iperf3 (server next to the sink), for a cross-check."""
    if not shutil.which("iperf3") or t.iperf3_server_ns is None:
        return None
    with t.iperf3_server_ns.started(
        ["iperf3", "-s", "-1", "-B", t.host, "-p", "5201", "--forceflush"], ready=r"Server listening", name="iperf3-s"
    ) as server:
        cpu = {k: pid for k, pid in t.cpu.items() if not k.startswith("sink")}
        cpu["iperf3 server"] = server.pid
        before = {k: proc_cpu_seconds(pid) for k, pid in cpu.items()}
        r = t.client_ns.run(["iperf3", "-c", t.host, "-p", "5201", "-n", str(nbytes), "-J"], timeout=600)
        after = {k: proc_cpu_seconds(pid) for k, pid in cpu.items()}
    j = json.loads(r.stdout)
    end = j["end"]
    sent = end["sum_sent"]
    run = Run(sent["seconds"], int(end["sum_received"]["bytes"]), 0.0, {k: after[k] - before[k] for k in cpu})
    return run, end.get("cpu_utilization_percent", {})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=256, help="MiB per transfer (default 256)")
    ap.add_argument("--repeat", type=int, default=3, help="transfers per target; the median is reported")
    ap.add_argument("--iperf3", action="store_true", help="also run iperf3 once per target, if installed")
    ap.add_argument("--json", action="store_true", help="print the runs as JSON too")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, TUN)", file=sys.stderr)
        return 2
    nbytes = args.mib << 20
    print(f"{args.mib} MiB x {args.repeat} per target; load average {open('/proc/loadavg').read().split()[:3]}, "
          f"{os.cpu_count()} CPUs; MB = 1e6 B, CPU s/GB = CPU seconds per 1e9 bytes")
    rows: list[tuple[str, Run, str]] = []
    for make in TARGETS:
        with contextlib.ExitStack() as stack:
            t = make(stack)
            transfer(t, 8 << 20)  # warm-up: handshake, TCP window
            runs = sorted((transfer(t, nbytes) for _ in range(args.repeat)), key=lambda r: r.mbps)
            med = runs[len(runs) // 2]
            spread = f"{runs[0].mbps:.0f}-{runs[-1].mbps:.0f}"
            rows.append((t.name, med, spread))
            if args.iperf3:
                res = iperf3(t, nbytes)
                if res:
                    run, cpu_pct = res
                    note = f"iperf3; client {cpu_pct.get('host_total', 0):.0f}% CPU, server {cpu_pct.get('remote_total', 0):.0f}%"
                    rows.append((f"{t.name} [iperf3]", run, note))
            if args.json:
                print(json.dumps({"target": t.name, "runs": [r.__dict__ for r in runs]}))

    print()
    print(f"{'target':<40} {'MB/s':>6} {'runs MB/s':>10} {'sender CPU s/GB':>16}  process CPU s/GB")
    for name, r, note in rows:
        gb = r.nbytes / 1e9
        procs = ", ".join(f"{k} {v / gb:.2f}" for k, v in r.cpu.items())
        sender = f"{r.sender_cpu / gb:.2f}" if r.sender_cpu else "-"
        spread, extra = (note, "") if not note.startswith("iperf3") else ("", f"  ({note})")
        print(f"{name:<40} {r.mbps:>6.0f} {spread:>10} {sender:>16}  {procs}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

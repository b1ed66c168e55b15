"""lib/procs.py: readiness lines, failures reported with stderr, and stopping by the pid (and
process group) that the harness started."""

from __future__ import annotations

import os
import sys
import time

import pytest

from lib.procs import ProcessError, run, started

PY = sys.executable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    """The group got SIGTERM when `stop` returned, but a loaded machine may take a moment to
    run the grandchild's exit (only the leader is waited for): poll, bounded."""
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_waits_for_readiness_line_and_stops_the_group():
    child = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print('noise'); print('ready child=%d' % p.pid, flush=True); time.sleep(60)"
    )
    with started([PY, "-c", child], ready=r"ready child=(\d+)", name="sleeper") as proc:
        grandchild = int(proc.match.group(1))
        assert proc.alive() and _alive(grandchild)
        assert proc.stdout_text().startswith("noise\n")
    assert not proc.alive()
    assert _gone_within(grandchild, 5), "the child's own children are stopped with it"


def test_early_exit_reports_stderr():
    code = "import sys; sys.stderr.write('boom: bad config\\n'); sys.exit(3)"
    with pytest.raises(ProcessError, match="boom: bad config"):
        with started([PY, "-c", code], ready=r"^listening", name="crasher"):
            pass


def test_readiness_timeout():
    with pytest.raises(ProcessError, match="within 0.5s"):
        with started([PY, "-c", "import time; time.sleep(30)"], ready=r"^listening", timeout=0.5):
            pass


def test_run_times_out_and_kills():
    with pytest.raises(ProcessError, match="timed out"):
        run([PY, "-c", "import time; time.sleep(30)"], timeout=0.5)
    res = run([PY, "-c", "print('hi')"]).check()
    assert res.stdout == "hi\n" and res.returncode == 0

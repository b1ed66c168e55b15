"""Start, watch and stop the processes of an end-to-end test.

    with started(["node", "idp/server.mjs"], ready=r"^issuer (\\S+)", name="idp") as idp:
        issuer = idp.match.group(1)

A process is started in a session of its own (so its pgid is its pid), its stdout is read by a
thread (each line kept, and logged to a file), its stderr goes straight to a file. `started`
returns once a stdout line matches `ready`; if the process exits first, or the timeout passes, it
raises with the tail of the process's stderr. On exit the process group that *this* call started
is sent SIGTERM, then SIGKILL after a grace period: never anything found by name.

`run` is the one-shot counterpart for CLIs (claude, codex): bounded by a timeout, killed by its
own process group when the timeout passes.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = E2E_DIR.parents[1]


def log_dir() -> Path:
    """Where process logs go: $E2E_LOG_DIR, else one temp folder per test run."""
    global _LOG_DIR
    if _LOG_DIR is None:
        configured = os.environ.get("E2E_LOG_DIR")
        if configured:
            _LOG_DIR = Path(configured)
            _LOG_DIR.mkdir(parents=True, exist_ok=True)
        else:
            _LOG_DIR = Path(tempfile.mkdtemp(prefix="agentnet-e2e-logs-"))
    return _LOG_DIR


_LOG_DIR: Path | None = None


class ProcessError(RuntimeError):
    pass


@dataclass
class Proc:
    """A running process started by `started`."""

    name: str
    argv: list[str]
    popen: subprocess.Popen
    stdout_log: Path
    stderr_log: Path
    match: re.Match | None = None
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _eof: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stderr_text(self) -> str:
        try:
            return self.stderr_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait_for_line(self, pattern: str | re.Pattern, timeout: float = 10.0, start: int = 0) -> re.Match:
        """Wait until a stdout line (from index `start` on) matches `pattern`."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                while seen < len(self.lines):
                    m = rx.search(self.lines[seen])
                    seen += 1
                    if m:
                        return m
                if self._eof:
                    raise ProcessError(
                        f"{self.name} (pid {self.pid}) closed stdout (exit {self.popen.poll()}) before a line "
                        f"matched {rx.pattern!r}\n--- stderr tail ---\n{_tail(self.stderr_text())}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessError(
                        f"{self.name} (pid {self.pid}): no stdout line matched {rx.pattern!r} within {timeout}s\n"
                        f"--- stdout ---\n{_tail(''.join(self.lines))}\n--- stderr tail ---\n{_tail(self.stderr_text())}"
                    )
                self._cond.wait(min(remaining, 0.2))

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        with open(self.stdout_log, "w", encoding="utf-8") as out:
            for line in iter(self.popen.stdout.readline, ""):
                out.write(line)
                out.flush()
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM this process's group, SIGKILL it after `grace` seconds; returns the exit code."""
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=grace)
        else:
            # The leader exited; children it left in its group still go.
            _signal_group(self.popen.pid, signal.SIGKILL)
        return self.popen.returncode


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "proc"


def spawn(
    argv: Sequence[str | os.PathLike],
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> Proc:
    """Start a process without waiting for anything; prefer `started`."""
    argv = [str(a) for a in argv]
    name = name or Path(argv[0]).name
    stamp = f"{_slug(name)}-{time.strftime('%H%M%S')}-{os.getpid()}-{next(_counter)}"
    stdout_log = log_dir() / f"{stamp}.stdout.log"
    stderr_log = log_dir() / f"{stamp}.stderr.log"
    stderr_file = open(stderr_log, "wb")  # noqa: SIM115 - handed to the child
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
    finally:
        stderr_file.close()
    proc = Proc(name=name, argv=argv, popen=popen, stdout_log=stdout_log, stderr_log=stderr_log)
    threading.Thread(target=proc._pump, name=f"pump-{name}", daemon=True).start()
    return proc


_counter = iter(range(1, 1 << 62))


@contextlib.contextmanager
def started(
    argv: Sequence[str | os.PathLike],
    *,
    ready: str | re.Pattern,
    timeout: float = 30.0,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    grace: float = 5.0,
) -> Iterator[Proc]:
    """Start `argv`, wait for a stdout line matching `ready`, yield it, stop it on exit."""
    proc = spawn(argv, name=name, env=env, cwd=cwd)
    try:
        proc.match = proc.wait_for_line(ready, timeout=timeout)
        yield proc
    finally:
        proc.stop(grace=grace)


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> "Result":
        if self.returncode != 0:
            raise ProcessError(
                f"{self.argv[0]} exited {self.returncode}\n--- stdout ---\n{_tail(self.stdout)}\n"
                f"--- stderr ---\n{_tail(self.stderr)}"
            )
        return self


def run(
    argv: Sequence[str | os.PathLike],
    *,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    input: str | None = None,
) -> Result:
    """Run a command to completion in its own process group; on timeout, kill that group and raise."""
    argv = [str(a) for a in argv]
    t0 = time.monotonic()
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = popen.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(popen.pid, signal.SIGKILL)
        out, err = popen.communicate()
        raise ProcessError(
            f"{argv[0]} timed out after {timeout}s\n--- stdout ---\n{_tail(out)}\n--- stderr ---\n{_tail(err)}"
        ) from None
    finally:
        # Anything the command left behind in its group (e.g. a tool's child) goes too.
        _signal_group(popen.pid, signal.SIGKILL)
    return Result(argv, popen.returncode, out, err, time.monotonic() - t0)

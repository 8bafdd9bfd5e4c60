"""Child processes that never outlive their owner.

Every process is started in its own session with a pid file. Stopping sends SIGTERM
to its process group, then SIGKILL. A pid file left behind by a crashed run is honoured
at the next start (the old process is killed if it is still ours). When `tie_to_parent`
is set, the kernel also SIGKILLs the child if its parent dies (PR_SET_PDEATHSIG), so even
`kill -9` of the test runner leaves nothing running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0) but is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not alive(pid):
                return
            time.sleep(0.05)


@dataclass
class Managed:
    name: str
    proc: subprocess.Popen[bytes]
    pidfile: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        terminate(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1)
        self.pidfile.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "".join(self.log.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""


def reap_leftover(pidfile: Path) -> None:
    """Kill the process a crashed earlier run recorded, if it is still the same program."""
    try:
        pid_text, marker = pidfile.read_text().split("\n", 1)
        pid = int(pid_text)
    except (OSError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    if alive(pid) and marker.strip() and marker.strip() in _cmdline(pid):
        terminate(pid)
    pidfile.unlink(missing_ok=True)


def start(
    name: str,
    argv: Sequence[str],
    rundir: Path,
    *,
    tie_to_parent: bool,
    env: dict[str, str] | None = None,
) -> Managed:
    rundir.mkdir(parents=True, exist_ok=True)
    pidfile = rundir / f"{name}.pid"
    reap_leftover(pidfile)
    log = rundir / f"{name}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            list(argv),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            preexec_fn=_die_with_parent if tie_to_parent else None,
        )
    pidfile.write_text(f"{proc.pid}\n{argv[0]}\n")
    return Managed(name, proc, pidfile, log)

"""The tools behind `make image`, as they run on this machine.

There is no Docker engine here, so podman runs as root with its own containers.conf (kept
in the cache and passed through CONTAINERS_CONF, so the machine's configuration is left
alone): `runtime = "runc"` and `cgroup_manager = "cgroupfs"`, because crun refuses this
machine's hybrid cgroups, and `default_ulimits = []`, because the defaults cannot be
applied here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from canary.sandbox.build import Progress
from canary.sandbox.paths import cache_dir
from canary.sandbox.tools import ToolError

TOOLS = ("podman", "runc", "debootstrap")  # each also names its Debian package
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def image_dir() -> Path:
    return cache_dir() / "image"


def podman_env() -> dict[str, str]:
    conf = image_dir() / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
    return dict(os.environ, CONTAINERS_CONF=str(conf))


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=timeout
    )


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def ensure_tools(progress: Progress) -> None:
    missing = missing_tools()
    if os.geteuid() != 0:
        raise ToolError(
            "building the image needs root (podman runs rootful here, debootstrap needs "
            f"chroot){'; also missing: ' + ', '.join(missing) if missing else ''}. "
            "Fix: run `make image` as root"
        )
    if not missing:
        return
    progress(f"image: installing {', '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise ToolError(
                f"{' '.join(cmd)} failed: {(out.stdout + out.stderr).strip()[-1500:]}\n"
                f"Fix: apt-get install -y {' '.join(missing)}"
            )


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One build at a time on the machine: test runs and `make image` share the cache."""
    image_dir().mkdir(parents=True, exist_ok=True)
    with (image_dir() / "lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def run_logged(
    cmd: Sequence[str],
    log: Path,
    progress: Progress,
    label: str,
    env: dict[str, str] | None = None,
) -> None:
    """Run a slow command with its output in `log`, saying every 15 s that it still runs."""
    started = last = time.monotonic()
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if time.monotonic() - last >= 15:
                    last = time.monotonic()
                    progress(f"  {label}: {last - started:.0f}s")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise ToolError(f"{label} failed (exit {proc.returncode}); the end of {log}:\n{tail}")

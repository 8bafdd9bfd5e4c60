"""A test run, finished or interrupted, leaves no etcd, kube-apiserver or prometheus behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from canary.sandbox.procs import alive

REPO = Path(__file__).resolve().parents[2]
INNER = "tests/integration/test_foundation.py"


def _run_inner(
    tmp_path: Path, tests: list[str], interrupt_after_pids: int | None = None, sig: str = "SIGINT"
) -> list[int]:
    pidfile = tmp_path / "pids"
    env = dict(os.environ, CANARY_TEST_PIDS=str(pidfile))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if interrupt_after_pids is not None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if pidfile.exists() and len(pidfile.read_text().split()) >= interrupt_after_pids:
                break
            time.sleep(0.2)
        proc.send_signal(getattr(signal, sig))
    out, _ = proc.communicate(timeout=300)
    pids = [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []
    assert pids, f"the inner run started nothing:\n{out.decode()[-2000:]}"
    return pids


def _still_running(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def test_a_finished_run_stops_everything_it_started(tmp_path: Path) -> None:
    pids = _run_inner(
        tmp_path,
        [
            f"{INNER}::test_server_reports_its_real_version",
            f"{INNER}::test_prometheus_scrapes_targets_chosen_by_the_test",
        ],
    )
    assert len(pids) == 3  # etcd, kube-apiserver, prometheus
    assert _still_running(pids) == []


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_interrupted_run_stops_everything(tmp_path: Path, sig: str) -> None:
    pids = _run_inner(
        tmp_path,
        [
            f"{INNER}::test_server_reports_its_real_version",
            f"{INNER}::test_prometheus_scrapes_targets_chosen_by_the_test",
        ],
        interrupt_after_pids=2,
        sig=sig,
    )
    assert _still_running(pids) == []

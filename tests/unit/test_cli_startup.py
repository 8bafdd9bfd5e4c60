"""`canary` starts fast: importing the CLI, `canary --help` and `canary lint` load none of
the heavy libraries (the Kubernetes client, numpy and scipy, the Prometheus clients) nor
the simulator or the sandbox; only the commands that use them do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
HEAVY = (
    "kubernetes",
    "canary.kube",
    "numpy",
    "scipy",
    "prometheus_api_client",
    "prometheus_client",
    "canary.simulate",
    "canary.sandbox",
)
# Runs the command in-process (no args: only the import), then names every module loaded.
PROBE = """
import contextlib, io, sys
from canary.cli.app import app
if sys.argv[1:]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            app(sys.argv[1:])
        except SystemExit:
            pass
print("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "args", [[], ["--help"], ["lint", "analysis_templates/"]], ids=["import", "help", "lint"]
)
def test_the_cli_loads_no_heavy_module_it_does_not_use(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    loaded = out.stdout.split()
    assert "canary.cli.app" in loaded
    heavy = [m for m in loaded if any(m == h or m.startswith(f"{h}.") for h in HEAVY)]
    assert heavy == []

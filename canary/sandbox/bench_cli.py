"""`make bench-cli`: how long `canary` commands take, next to kubectl: prints a table,
asserts nothing.

    python -m canary.sandbox.bench_cli [--canaries 1000] [--runs 7]

On a fresh sandbox control plane: N Canaries in a namespace no controller watches (what
`list -A` reads), and one Canary, `app-0`, rolling out under a controller process with
the status-only stand-in kubelet of bench_scale, paused at a step, so that `abort` and
`retry` are answered by a real controller (they wait for it to apply the request). Each
command runs `--runs` times as a user runs it, a fresh process; the table has the min and
median wall time of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from canary.kube.client import Kube
from canary.sandbox.bench_scale import (
    NS,
    REPO,
    StatusKubelet,
    _canary,
    _deployment,
    _kubectl,
    _start_controllers,
    say,
)
from canary.sandbox.controlplane import ControlPlane
from canary.sandbox.tools import kubectl_path

LISTED = "cli-list"  # the N Canaries `list -A` reads; no controller watches them
TARGETS = {
    "canary --help": 0.3,
    "canary lint analysis_templates/": 0.5,
    "canary list -A": 1.0,
    "canary status app-0": 0.7,
    "canary abort app-0": 0.7,
    "canary retry app-0": 0.7,
}


def _prepare(plane: ControlPlane, kube: Kube, canaries: int) -> None:
    _kubectl(plane, "apply", "-k", str(REPO / "manifests"))
    _kubectl(plane, "wait", "--for=condition=Established", "--timeout=60s",
             "crd/canaries.canary.dev")
    for ns in (NS, LISTED):
        _kubectl(plane, "create", "namespace", ns)
    steering = _canary(0, NS)
    steering["spec"]["steps"] = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]
    docs = [_deployment(0, NS), steering] + [_canary(i, LISTED) for i in range(canaries)]
    for chunk in range(0, len(docs), 200):
        _kubectl(plane, "apply", "-f", "-",
                 input="\n---\n".join(yaml.safe_dump(d) for d in docs[chunk:chunk + 200]))


def _until(kube: Kube, field: str, value: str) -> None:
    deadline = time.monotonic() + 120
    while (kube.get_canary(NS, "app-0").get("status") or {}).get(field) != value:
        if time.monotonic() > deadline:
            raise TimeoutError(f"app-0: status.{field} did not become {value} in 120 s")
        time.sleep(0.5)


def _start_rollout(kube: Kube) -> None:
    """app-0 gets a new image, and waits at its pause step for a request."""
    _until(kube, "reason", "Initialized")
    dep = kube.get_deployment(NS, "app-0")
    assert dep is not None
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "demo/app:v2"
    kube.replace_deployment(NS, dep)
    _until(kube, "phase", "Paused")


def _time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    took = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()}")
    return took


def measure(plane: ControlPlane, runs: int) -> dict[str, list[float]]:
    env = dict(os.environ, KUBECONFIG=str(plane.kubeconfig))
    canary = [sys.executable, "-m", "canary"]
    commands = {
        "canary --help": [*canary, "--help"],
        "canary lint analysis_templates/": [*canary, "lint", "analysis_templates/"],
        "canary list -A": [*canary, "list", "-A"],
        "canary status app-0": [*canary, "status", "app-0", "-n", NS],
        "kubectl get canaries -A": [str(kubectl_path()), "get", "canaries", "-A"],
        # In this order each request applies: abort a paused rollout, retry a rolled-back one.
        "canary abort app-0": [*canary, "abort", "app-0", "-n", NS],
        "canary retry app-0": [*canary, "retry", "app-0", "-n", NS],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _run in range(runs):
        for name, argv in commands.items():
            times[name].append(_time(argv, env))
    return times


def table(times: dict[str, list[float]], canaries: int) -> str:
    lines = [f"{'command':<34} {'min s':>6} {'median s':>9} {'target s':>9}"]
    for name, values in times.items():
        target = TARGETS.get(name)
        lines.append(
            f"{name:<34} {min(values):>6.2f} {statistics.median(values):>9.2f} "
            f"{'reference' if target is None else f'< {target}':>9}"
        )
    lines.append(f"({canaries} Canaries for list -A; {len(next(iter(times.values())))} runs)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="canary-bench-cli-") as tmp:
        plane = ControlPlane(Path(tmp) / "control-plane").start(say)
        kubelet = controllers = None
        try:
            kube = Kube(plane.kubeconfig)
            _prepare(plane, kube, args.canaries)
            kubelet = StatusKubelet(kube, NS).start()
            controllers = _start_controllers(plane, Path(tmp), workers=1, shards=1)
            _start_rollout(kube)
            say(f"timing each command {args.runs} times")
            times = measure(plane, args.runs)
        finally:
            for controller in controllers or []:
                controller.stop()
            if kubelet is not None:
                kubelet.stop()
            plane.stop()
    print(table(times, args.canaries))


if __name__ == "__main__":
    main()

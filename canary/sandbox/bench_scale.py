"""`make bench-scale`: the controller with 100 / 300 / 1,000 Canaries on a real API server.

For each size, a fresh control plane (with an audit log, so every API request the
controller makes is counted by the server itself), N Deployments and N Canaries (steps
only, replica routing), and a status-only stand-in kubelet that reports every Deployment
available as soon as it changes. The controller runs as its own process with its
ServiceAccount's token, as in a cluster. Measured:

- RSS of the controller once everything is onboarded (and its peak);
- onboarding: from the controller's start until every Canary is Initialized, and the
  API requests it took per Canary;
- reads per idle reconcile: every Canary is touched (a label), which makes the
  controller reconcile each once with nothing to do; GETs and LISTs per Canary;
- 100 rollouts at once: the targets of 100 Canaries get a new template together; time
  from each change to the Canary's first canary weight (median and p99).

Prints a table and the targets from the scale issue. No assertions: a benchmark.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from canary.errors import CanaryError
from canary.kube.client import Kube
from canary.kube.errors import Conflict
from canary.kube.port import Obj
from canary.sandbox import procs
from canary.sandbox.controlplane import ControlPlane
from canary.sandbox.deployment_status import desired_status
from canary.sandbox.tools import kubectl_path

REPO = Path(__file__).resolve().parents[2]
NS = "scale"  # with --shards N: scale-0 .. scale-(N-1), Canary i in scale-(i mod N)


def namespace(i: int, shards: int) -> str:
    return NS if shards == 1 else f"{NS}-{i % shards}"
CONTROLLER_USER = "system:serviceaccount:canary-system:canary-controller"
ROLLOUTS = 100
TARGETS = (
    "targets: 1,000 Canaries under 150 MiB RSS; onboarding 1,000 in under 30 s; idle "
    "reconciles with 0 API reads; 100 rollouts at once: p99 template change -> first weight "
    "under 2 s"
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _deployment(i: int, ns: str, image: str = "demo/app:v1") -> Obj:
    labels = {"app": f"app-{i}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"app-{i}", "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def _canary(i: int, ns: str) -> Obj:
    return {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": f"app-{i}", "namespace": ns},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": f"app-{i}"},
            "service": {"port": 80},
            "steps": [{"setWeight": 10}, {"pause": {}}],
        },
    }


class StatusKubelet:
    """Reports every Deployment in `ns` fully available at its current generation, as the
    Deployment controller and kubelet would once pods are up; no processes."""

    def __init__(self, kube: Kube, ns: str):
        self.kube, self.ns = kube, ns
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="status-kubelet")

    def start(self) -> StatusKubelet:
        threading.Thread(target=self._run, daemon=True, name="status-kubelet").start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                items, rv = self.kube.list_deployments(self.ns)
                for dep in items:
                    self._pool.submit(self._report, dep)
                while not self._stop.is_set():
                    for event, dep in self.kube.watch("Deployment", self.ns, rv,
                                                      timeout_seconds=30):
                        rv = dep["metadata"].get("resourceVersion", rv)
                        if event in ("ADDED", "MODIFIED"):
                            self._pool.submit(self._report, dep)
            except CanaryError:
                self._stop.wait(1.0)

    def _report(self, dep: Obj) -> None:
        n = dep["spec"].get("replicas") or 0
        status = dep.get("status") or {}
        if (
            status.get("observedGeneration") == dep["metadata"].get("generation")
            and status.get("availableReplicas", 0) == n
            and status.get("replicas", 0) == n
        ):
            return
        try:
            want = desired_status(dep, n, n, n, n)
            self.kube.patch_deployment_status(self.ns, dep["metadata"]["name"], want)
        except CanaryError:
            pass  # deleted meanwhile, or a conflict the next event repairs


def _kubectl(plane: ControlPlane, *args: str, input: str | None = None) -> str:
    out = subprocess.run(
        [str(kubectl_path()), "--kubeconfig", str(plane.kubeconfig), *args],
        capture_output=True, text=True, input=input, timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def _controller_kubeconfig(plane: ControlPlane, path: Path) -> Path:
    """A kubeconfig with the controller ServiceAccount's token: its own RBAC and name."""
    token = _kubectl(
        plane, "create", "token", "canary-controller", "-n", "canary-system", "--duration=3h"
    ).strip()
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    admin["users"] = [{"name": "controller", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "controller"
    path.write_text(yaml.safe_dump(admin))
    return path


def _audit(plane: ControlPlane, since: int) -> tuple[Counter[str], int]:
    """The controller's requests by verb, from byte `since` of the audit log on."""
    time.sleep(2.5)  # the audit backend flushes in batches of up to 1 s
    verbs: Counter[str] = Counter()
    with plane.audit_log.open("rb") as fh:
        fh.seek(since)
        data = fh.read()
    for line in data.splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") == CONTROLLER_USER:
            verbs[event.get("verb", "?")] += 1
    return verbs, since + len(data)


def _rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@dataclass
class Row:
    size: int
    shards: int
    rss: float  # summed over the shards' controllers
    peak_rss: float
    onboarding: float
    onboarding_requests: float
    idle_reads: float
    rollout_p50: float
    rollout_p99: float


def _wait_all(kube: Kube, done: Callable[[Obj], bool], size: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        items, _ = kube.list_canaries(None)
        ready = sum(1 for c in items if done(c))
        if ready >= size:
            return time.monotonic() - started
        time.sleep(1.0)
    raise TimeoutError(f"only {ready} of {size} Canaries got there in {timeout:.0f}s")


def _first_weights(kube: Kube, names: set[str], since: dict[str, float], rv: str,
                   timeout: float) -> list[float]:
    """Seconds from each Canary's template change to its first canary weight."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(names) and time.monotonic() < deadline:
        for event, obj in kube.watch("Canary", None, rv, timeout_seconds=10):
            rv = obj["metadata"].get("resourceVersion", rv)
            if event == "BOOKMARK":
                continue
            name = obj["metadata"]["name"]
            weight = (obj.get("status") or {}).get("canaryWeight", 0)
            if name in names and name not in seen and weight > 0 and name in since:
                seen[name] = time.monotonic() - since[name]
            if len(seen) == len(names):
                break
    return sorted(seen.values())


def _start_controllers(
    plane: ControlPlane, workdir: Path, workers: int, shards: int
) -> list[procs.Managed]:
    """One controller, or one per shard: each watches its own namespace and holds its
    own Lease, so Kubernetes itself keeps the shards apart."""
    kc = _controller_kubeconfig(plane, workdir / "controller.kubeconfig")
    started = []
    for shard in range(shards):
        argv = [sys.executable, "-m", "canary", "controller", "--kubeconfig", str(kc),
                "--namespace", namespace(shard, shards), "--health-port", "0",
                "--workers", str(workers)]
        if shards > 1:
            argv += ["--leader-elect", "--leader-election-id", f"canary-shard-{shard}"]
        started.append(procs.start(f"controller-{shard}", argv, workdir, tie_to_parent=True))
    return started


def measure(size: int, workdir: Path, workers: int, shards: int) -> Row:
    plane = ControlPlane(workdir / "control-plane", audit=True).start(say)
    kubelets: list[StatusKubelet] = []
    controllers: list[procs.Managed] = []
    namespaces = sorted({namespace(i, shards) for i in range(shards)})
    try:
        _kubectl(plane, "apply", "-k", str(REPO / "manifests"))
        _kubectl(plane, "wait", "--for=condition=Established", "--timeout=60s",
                 "crd/canaries.canary.dev")
        kube = Kube(plane.kubeconfig)
        for ns in namespaces:
            _kubectl(plane, "create", "namespace", ns)
            kubelets.append(StatusKubelet(kube, ns).start())
        say(f"{size} Canaries: creating their Deployments and Canaries")
        docs = [_deployment(i, namespace(i, shards)) for i in range(size)]
        docs += [_canary(i, namespace(i, shards)) for i in range(size)]
        for chunk in range(0, len(docs), 200):
            _kubectl(plane, "apply", "-f", "-",
                     input="\n---\n".join(yaml.safe_dump(d) for d in docs[chunk:chunk + 200]))
        _, audit_at = _audit(plane, 0)
        controllers = _start_controllers(plane, workdir, workers, shards)
        say(f"{size} Canaries: {len(controllers)} controller(s) started; onboarding")
        onboarding = _wait_all(
            kube, lambda c: (c.get("status") or {}).get("reason") == "Initialized", size,
            timeout=900,
        )
        time.sleep(5)  # the hand-off of each user's Deployment follows the Initialized write
        rss = peak = 0.0
        for controller in controllers:
            now, high = _rss_mib(controller.pid)
            rss, peak = rss + now, peak + high
        verbs, audit_at = _audit(plane, audit_at)
        onboarding_requests = sum(v for k, v in verbs.items() if k != "watch") / size

        say(f"{size} Canaries: touching every Canary once (idle reconciles)")
        _kubectl(plane, "label", "canaries", "--all", "-A", "bench/touched=yes")
        time.sleep(10)
        verbs, audit_at = _audit(plane, audit_at)
        idle_reads = (verbs["get"] + verbs["list"]) / size

        k = min(ROLLOUTS, size)
        say(f"{size} Canaries: {k} rollouts at once")
        _, rv = kube.list_canaries(None)
        names = {f"app-{i}" for i in range(k)}
        since: dict[str, float] = {}

        def ship(i: int) -> None:
            name, ns = f"app-{i}", namespace(i, shards)
            for _attempt in range(10):  # the status kubelet writes too: retry conflicts
                dep = kube.get_deployment(ns, name)
                assert dep is not None
                dep["spec"]["template"]["spec"]["containers"][0]["image"] = "demo/app:v2"
                since.setdefault(name, time.monotonic())
                try:
                    kube.replace_deployment(ns, dep)
                    return
                except Conflict:
                    continue

        watcher: list[list[float]] = []
        thread = threading.Thread(
            target=lambda: watcher.append(_first_weights(kube, names, since, rv, 300)))
        thread.start()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(ship, range(k)))
        thread.join()
        latencies = watcher[0] if watcher else []
        if len(latencies) < k:
            say(f"  only {len(latencies)} of {k} reached a weight in 300 s")
        p50 = statistics.median(latencies) if latencies else float("nan")
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
        return Row(size, shards, rss, peak, onboarding, onboarding_requests, idle_reads, p50,
                   p99)
    finally:
        for controller in controllers:
            controller.stop()
        for kubelet in kubelets:
            kubelet.stop()
        plane.stop()


def table(rows: list[Row]) -> str:
    lines = [
        f"{'Canaries':>8} {'shards':>6} {'RSS MiB':>8} {'peak':>6} {'onboard s':>9} "
        f"{'req/onboard':>11} "
        f"{'reads/idle':>10} {'p50 s':>6} {'p99 s':>6}"
    ]
    lines += [
        f"{r.size:>8} {r.shards:>6} {r.rss:>8.0f} {r.peak_rss:>6.0f} {r.onboarding:>9.1f} "
        f"{r.onboarding_requests:>11.1f} {r.idle_reads:>10.1f} {r.rollout_p50:>6.2f} "
        f"{r.rollout_p99:>6.2f}"
        for r in rows
    ]
    return "\n".join([*lines, TARGETS])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000",
                        help="Canary counts, comma-separated (default: 100,300,1000)")
    parser.add_argument("--workers", type=int, default=4,
                        help="the controller's --workers (default: its own default, 4)")
    parser.add_argument("--shards", default="1",
                        help="controllers to split the Canaries over, per size, comma-separated "
                        "(e.g. 1,2 measures each size once with one controller, once with two)")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for shards in (int(n) for n in args.shards.split(",")):
            with tempfile.TemporaryDirectory(prefix=f"canary-scale-{size}-") as tmp:
                rows.append(measure(size, Path(tmp), args.workers, shards))
            print(table(rows), flush=True)


if __name__ == "__main__":
    main()

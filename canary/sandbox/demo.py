"""`canary demo`: a bad rollout that must roll back, then a good one that must promote.

Everything is real except the kubelet: etcd + kube-apiserver, the official Gateway API
HTTPRoute CRD, Prometheus scraping real app processes, the controller as its own
process, and a load generator that splits requests by the weights the controller
writes into the HTTPRoute. The scenario edits the user's Deployment the way CI would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from canary.api.durations import parse_duration
from canary.cli.render import step_text
from canary.controller.workloads import template_hash
from canary.kube.client import Kube
from canary.kube.errors import Conflict
from canary.kube.port import Obj
from canary.sandbox import crds, procs
from canary.sandbox.build import BuildError
from canary.sandbox.controlplane import ControlPlane
from canary.sandbox.demo_objects import NS, objects
from canary.sandbox.kubelet import StandInKubelet
from canary.sandbox.loadgen import LoadGenerator, LoadStats
from canary.sandbox.prometheus import Prometheus
from canary.sandbox.tools import kubectl_path

REPO = Path(__file__).resolve().parents[2]

Say = Callable[[str], None]
# Starts a controller for (kubeconfig, Prometheus URL, workdir): the process and its
# health URL. The demo runs `python -m canary controller`; tests may run the image.
StartController = Callable[[Path, str, Path], tuple[procs.Managed, str]]
# Installs canary (CRDs, RBAC, admission policy, the controller's Deployment) with the
# admin kubeconfig, for the sandbox's Prometheus URL.
Install = Callable[[Path, str, Say], None]


class DemoError(RuntimeError):
    pass


@dataclass
class Outcome:
    name: str
    expected: str
    phase: str
    seconds: float
    failed_requests: int
    canary_requests: int
    message: str

    @property
    def right(self) -> bool:
        return self.phase == self.expected


@dataclass
class DemoEnv:
    kube: Kube
    kubeconfig: Path
    prometheus: Prometheus
    loadgen: LoadGenerator
    controller: procs.Managed
    workdir: Path
    health_url: str  # the controller's /healthz and /readyz, e.g. http://127.0.0.1:PORT
    plane: ControlPlane
    start: StartController

    def restart_controller(self) -> None:
        """Start a new controller process; the previous one must be gone."""
        self.controller, self.health_url = self.start(
            self.kubeconfig, self.prometheus.url, self.workdir
        )


def start_controller(
    kubeconfig: Path,
    prometheus_url: str,
    workdir: Path,
    *,
    name: str = "controller",
    leader_elect: bool = False,
) -> tuple[procs.Managed, str]:
    port = procs.free_port()
    managed = procs.start(
        name,
        [
            sys.executable,
            "-m",
            "canary",
            "controller",
            "--kubeconfig",
            str(kubeconfig),
            "--prometheus-url",
            prometheus_url,
            "--namespace",
            NS,
            "--health-port",
            str(port),
            *(["--leader-elect"] if leader_elect else []),
        ],
        workdir,
        tie_to_parent=True,
    )
    return managed, f"http://127.0.0.1:{port}"


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> None:
    out = subprocess.run(
        [str(kubectl_path()), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )
    if out.returncode != 0:
        raise DemoError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")


def install_manifests(kubeconfig: Path, prometheus_url: str, say: Say) -> None:
    """The demo's controller is a process given the Prometheus URL itself (start_controller);
    the installed Deployment never runs, as the sandbox has no kubelet for it."""
    say("installing canary: kubectl apply -k manifests/")
    kubectl(kubeconfig, "apply", "-k", str(REPO / "manifests"))


@contextmanager
def environment(
    workdir: Path,
    say: Say,
    rps: float,
    interval: str,
    step_pause: str,
    steps: list[Obj] | None = None,
    *,
    install: Install = install_manifests,
    start: StartController = start_controller,
) -> Iterator[DemoEnv]:
    try:
        gateway_crds = crds.ensure(crds.GATEWAY_API, say)
    except BuildError as exc:
        raise DemoError(str(exc)) from None
    with ExitStack() as stack:
        plane = ControlPlane(workdir / "control-plane").start(say)
        stack.callback(plane.stop)
        prom = Prometheus(workdir / "prometheus").start(say)
        stack.callback(prom.stop)
        kc = plane.kubeconfig
        install(kc, prom.url, say)
        say("installing the Gateway API HTTPRoute CRD")
        kubectl(kc, "apply", "--server-side", "-f", str(gateway_crds / "httproutes.yaml"))
        kubectl(
            kc,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/canaries.canary.dev",
            "crd/httproutes.gateway.networking.k8s.io",
        )
        kubectl(kc, "create", "namespace", NS)
        docs = "\n---\n".join(yaml.safe_dump(o) for o in objects(step_pause, interval, steps))
        kubectl(kc, "apply", "-f", "-", input=docs)
        kube = Kube(kc)
        kubelet = StandInKubelet(kube, NS, prom, workdir / "apps").start()
        stack.callback(kubelet.stop)
        loadgen = LoadGenerator(kube, NS, "checkout", "checkout", rps, kubelet=kubelet)
        controller, health_url = start(kc, prom.url, workdir)
        env = DemoEnv(kube, kc, prom, loadgen, controller, workdir, health_url, plane, start)
        stack.callback(lambda: env.controller.stop())
        say(f"controller running (pid {env.controller.pid}); log: {env.controller.log}")
        loadgen.start()
        stack.callback(loadgen.stop)
        yield env


def wait_initialized(env: DemoEnv, say: Say, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = env.kube.get_canary(NS, "checkout").get("status") or {}
        # Initialized: N-primary is ready and the route sends it 100% of traffic.
        if status.get("stableRevision") and status.get("reason") == "Initialized":
            say(f"canary initialized: stable revision {status['stableRevision']} serves 100%")
            return
        if env.controller.proc.poll() is not None:
            raise DemoError(f"the controller exited:\n{env.controller.log_tail()}")
        time.sleep(0.5)
    raise DemoError(
        "the controller did not initialize the Canary within 60s; its log ends:\n"
        + env.controller.log_tail()
    )


def release(
    env: DemoEnv, version: str, error_rate: float, errors_when_file: Path | None = None
) -> str:
    """What CI does: change the Deployment's template (image and config). With
    `errors_when_file`, the errors start only once that file exists (app_process.py)."""
    for attempt in range(5):
        dep = env.kube.get_deployment(NS, "checkout")
        assert dep is not None
        container = dep["spec"]["template"]["spec"]["containers"][0]
        container["image"] = f"demo/checkout:{version}"
        container["env"] = [
            {"name": "ERROR_RATE", "value": str(error_rate)},
            {"name": "LATENCY_MS", "value": "20"},
        ]
        if errors_when_file is not None:
            container["env"].append({"name": "ERRORS_WHEN_FILE", "value": str(errors_when_file)})
        try:
            written = env.kube.replace_deployment(NS, dep)
        except Conflict:  # the controller scaled it meanwhile: read it again, as kubectl does
            if attempt == 4:
                raise
            continue
        return template_hash(written["spec"]["template"])
    raise AssertionError("unreachable: the last attempt returns or raises")


def _rates(before: LoadStats, now: LoadStats) -> str:
    parts = []
    for variant in ("stable", "canary"):
        sent = now[variant].done - before[variant].done
        errors = now[variant].errors - before[variant].errors
        parts.append(
            f"{variant} {100 * errors / sent:4.1f}% err" if sent else f"{variant}    - err"
        )
    return ", ".join(parts)


def _settle(env: DemoEnv) -> None:
    """Release only once the previous canary's pods are gone and scraped no more.

    Prometheus records each pod's requests at its next scrape, so a release within a scrape
    or two of a rollback is judged partly on the rolled-back pods' last requests, which
    the demo's queries (by variant, not by revision) cannot tell apart."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        dep = env.kube.get_deployment(NS, "checkout-canary")
        if dep is None or not (dep.get("status") or {}).get("replicas"):
            break
        time.sleep(0.2)
    time.sleep(2 * parse_duration(env.prometheus.scrape_interval))


def rollout(
    env: DemoEnv,
    say: Say,
    name: str,
    version: str,
    error_rate: float,
    expected: str,
    timeout: float = 600,
) -> Outcome:
    _settle(env)
    start_stats = env.loadgen.stats()
    started = time.monotonic()
    revision = release(env, version, error_rate)
    say(f"--- {name}: releasing {version} (errors {error_rate:.0%}), revision {revision}")
    last_line, window = "", start_stats
    window_started = started
    while time.monotonic() - started < timeout:
        canary = env.kube.get_canary(NS, "checkout")
        status = canary.get("status") or {}
        stats = env.loadgen.stats()
        line = (
            f"phase {status.get('phase')}, step {step_text(canary)}, "
            f"weight {status.get('canaryWeight', 0)}%"
        )
        if time.monotonic() - window_started >= 5 or line != last_line:
            say(f"{time.monotonic() - started:6.1f}s  {line}  [{_rates(window, stats)}]")
            last_line, window, window_started = line, stats, time.monotonic()
        phase = status.get("phase")
        done = (phase in ("RolledBack", "Failed") and status.get("canaryRevision") == revision) or (
            phase == "Succeeded" and status.get("stableRevision") == revision
        )
        if done:
            end_stats = env.loadgen.stats()
            return Outcome(
                name,
                expected,
                str(phase),
                time.monotonic() - started,
                end_stats.failed - start_stats.failed,
                end_stats["canary"].done - start_stats["canary"].done,
                status.get("message", ""),
            )
        if env.controller.proc.poll() is not None:
            raise DemoError(f"the controller exited:\n{env.controller.log_tail()}")
        time.sleep(0.5)
    return Outcome(name, expected, "TimedOut", timeout, 0, 0, "no verdict in time")


def run(
    say: Say,
    *,
    bad_error_rate: float = 0.2,
    rps: float = 20.0,
    interval: str = "5s",
    step_pause: str = "20s",
    workdir: Path | None = None,
) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="canary-demo-") as tmp:
        base = workdir or Path(tmp)
        with environment(base, say, rps, interval, step_pause) as env:
            wait_initialized(env, say)
            time.sleep(3)  # a few scrapes of stable-only traffic first
            return [
                rollout(env, say, "bad rollout", "v2", bad_error_rate, "RolledBack"),
                rollout(env, say, "good rollout", "v3", 0.0, "Succeeded"),
            ]


def summary(outcomes: list[Outcome]) -> str:
    rows = [
        f"{'scenario':<14} {'expected':<11} {'got':<11} {'seconds':>8} "
        f"{'failed req':>10} {'canary req':>10}  message"
    ]
    for o in outcomes:
        rows.append(
            f"{o.name:<14} {o.expected:<11} {o.phase:<11} {o.seconds:8.1f} "
            f"{o.failed_requests:10d} {o.canary_requests:10d}  {o.message}"
        )
    verdict = "both outcomes right" if all(o.right for o in outcomes) else "WRONG OUTCOME"
    return "\n".join([*rows, f"demo: {verdict}"])


def as_json(outcomes: list[Outcome]) -> str:
    return json.dumps([o.__dict__ | {"right": o.right} for o in outcomes], indent=2)

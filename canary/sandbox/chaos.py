"""`make chaos`: rollouts on the sandbox, with load running, while faults strike.

Two controller replicas run with leader election, supervised as a kubelet would: a
replica that exits is started again after a second. Each run releases a version (good,
bad, or slow-burn), waits a random moment into the rollout, injects one fault, and waits
for the verdict. The table counts what users would care about:

- wrong: the verdict is not the one the release deserves (a deleted Canary must be
  handed back: the Canary gone, the route on the user's Service, the user's Deployment
  available);
- blind: a promotion while a metric had not earned its Pass;
- broken: after the verdict, users' requests still fail although the version they get
  is healthy (a route left on Services with no pods, say);
- fault-failed: requests that failed although the version serving them is healthy:
  failures that the fault, not the release, caused.

Seeded: the same --seed gives the same scenarios, faults and moments.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from canary.errors import CanaryError
from canary.kube.client import NotFound
from canary.sandbox import demo, demo_objects, procs
from canary.sandbox.demo import NS, DemoEnv

Say = Callable[[str], None]
ROUTE = ("gateway.networking.k8s.io", "v1", "httproutes", NS, "checkout")

# name: (error rate, expected verdict, how far into the rollout a fault may strike, s)
SCENARIOS: dict[str, tuple[float, str, float]] = {
    "good": (0.0, "Succeeded", 60.0),
    "bad": (0.2, "RolledBack", 8.0),
    "slow-burn": (0.03, "RolledBack", 30.0),  # 3% errors: found only as evidence adds up
}
FAULTS = (
    "controller kill -9",
    "leader change",
    "kube-apiserver kill -9",
    "etcd kill -9",
    "prometheus down 10s",
    "canary deleted",
)
OUTAGE_SECONDS = 8.0  # how long a killed API server or etcd stays down
VERDICT_TIMEOUT = 400.0


@dataclass
class Run:
    scenario: str
    fault: str
    expected: str
    got: str = ""
    blind: bool = False
    broken: bool = False
    fault_failed: int = 0
    seconds: float = 0.0

    @property
    def wrong(self) -> bool:
        return self.got != self.expected


@dataclass
class Replicas:
    """Two controller processes with leader election, restarted when they exit."""

    env: DemoEnv
    procs: dict[str, procs.Managed] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)  # not restarted while named here
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Replicas:
        self.env.controller.stop()  # the demo's single replica gives way to two
        for name in ("controller-a", "controller-b"):
            self._launch(name)
        threading.Thread(target=self._supervise, daemon=True, name="supervisor").start()
        return self

    def _launch(self, name: str) -> None:
        env = self.env
        self.procs[name], _ = demo.start_controller(
            env.kubeconfig, env.prometheus.url, env.workdir, name=name, leader_elect=True
        )

    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            for name, proc in list(self.procs.items()):
                if proc.proc.poll() is not None and name not in self.held:
                    self._launch(name)

    def leader(self) -> str | None:
        try:
            lease = self.env.kube.get_lease("canary-system", "canary-controller")
        except CanaryError:
            return None
        holder = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
        return next(
            (n for n, p in self.procs.items() if holder.endswith(f"-{p.pid}")), None
        )

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs.values():
            proc.stop()


def _status(env: DemoEnv) -> dict[str, Any] | None:
    try:
        return env.kube.get_canary(NS, "checkout").get("status") or {}
    except NotFound:
        return None
    except CanaryError:
        return {}  # the API server is down: unknown, keep waiting


def _wait(what: str, done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if done():
                return True
        except CanaryError:
            pass  # the API server may be down for a moment
        time.sleep(0.5)
    return False


def _kill(proc: procs.Managed) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.proc.wait(timeout=10)


def _inject(env: DemoEnv, replicas: Replicas, fault: str) -> None:
    if fault in ("controller kill -9", "leader change"):
        name = replicas.leader()
        if name is None:
            return
        if fault == "leader change":  # the standby must take over before it comes back
            replicas.held.add(name)
            _kill(replicas.procs[name])
            _wait("a new leader", lambda: replicas.leader() not in (None, name), 60)
            replicas.held.discard(name)
        else:
            _kill(replicas.procs[name])
    elif fault in ("kube-apiserver kill -9", "etcd kill -9"):
        component = fault.split()[0]
        env.plane.kill(component)
        time.sleep(OUTAGE_SECONDS)
        env.plane.restart(component)
    elif fault == "prometheus down 10s":
        port = env.prometheus.port
        env.prometheus.stop()
        time.sleep(10)
        env.prometheus.start(port=port)
    elif fault == "canary deleted":
        demo.kubectl(env.kubeconfig, "delete", "canary", "checkout", "-n", NS, "--wait=false")


def _route_backends(env: DemoEnv) -> list[str]:
    route = env.kube.get_object(*ROUTE)
    return [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]]


def _handed_back(env: DemoEnv) -> bool:
    dep = env.kube.get_deployment(NS, "checkout") or {}
    status = dep.get("status") or {}
    return (
        _status(env) is None
        and _route_backends(env) == ["checkout"]
        and (status.get("availableReplicas") or 0) >= (dep.get("spec") or {}).get("replicas", 1)
    )


def _collect_garbage(env: DemoEnv) -> None:
    """What Kubernetes' garbage collector does once a Canary is gone (the sandbox runs
    none): its Deployments and Services go, and their processes stop."""
    demo.kubectl(
        env.kubeconfig, "delete", "deployment,service", "-n", NS, "-l", "canary.dev/name=checkout"
    )


def _recreate(env: DemoEnv, interval: str, step_pause: str) -> None:
    """After a deletion, the team onboards again."""
    objects = demo_objects.objects(step_pause, interval, None)
    canary = next(o for o in objects if o["kind"] == "Canary")
    demo.kubectl(env.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump(canary))
    if not _wait("onboarding", lambda: bool((_status(env) or {}).get("stableRevision")), 120):
        raise demo.DemoError("the re-created Canary was never initialized")


def one_run(
    env: DemoEnv, replicas: Replicas, rng: random.Random, scenario: str, fault: str, n: int
) -> Run:
    error_rate, expected, window = SCENARIOS[scenario]
    run = Run(scenario, fault, "HandedBack" if fault == "canary deleted" else expected)
    before = env.loadgen.stats()
    started = time.monotonic()
    revision = demo.release(env, f"v{n}", error_rate)
    strike_at = started + rng.uniform(0.0, window)
    struck = False
    last_progress: dict[str, Any] = {}
    deadline = started + VERDICT_TIMEOUT
    while time.monotonic() < deadline:
        status = _status(env)
        if status is None:
            if _wait("hand-back", lambda: _handed_back(env), 120):
                run.got = "HandedBack"
                _collect_garbage(env)
            break
        phase = status.get("phase")
        if phase in ("Progressing", "Promoting") and status.get("canaryRevision") == revision:
            last_progress = status
        if (phase in ("RolledBack", "Failed") and status.get("canaryRevision") == revision) or (
            phase == "Succeeded" and status.get("stableRevision") == revision
        ):
            run.got = str(phase)
            break
        if phase != "Succeeded" and status.get("stableRevision") == revision:
            # Stable without a rollout: the release was adopted on no evidence at all.
            run.got, run.blind = "AdoptedAsStable", True
            break
        if not struck and time.monotonic() >= strike_at:
            _inject(env, replicas, fault)
            struck = True
        time.sleep(0.3)
    run.got = run.got or "TimedOut"
    run.seconds = time.monotonic() - started
    if run.got == "Succeeded":
        run.blind = any(not m.get("passedAt") for m in last_progress.get("analysis") or [])
    after = env.loadgen.stats()
    # The healthy variant's errors and unrouted requests are the fault's doing; with a
    # good release, so are the canary's.
    run.fault_failed = (after["stable"].errors - before["stable"].errors) + (
        after.unrouted - before.unrouted
    )
    if scenario == "good":
        run.fault_failed += after["canary"].errors - before["canary"].errors
    run.broken = _still_failing(env)
    return run


def _still_failing(env: DemoEnv, requests: int = 40) -> bool:
    """Do healthy requests fail after the verdict? (The canary is at 0% or promoted, or
    the app was handed back to the user's Deployment: all of it healthy by then.)"""
    start = env.loadgen.stats()
    _wait("users", lambda: env.loadgen.stats().requests >= start.requests + requests, 30)
    end = env.loadgen.stats()
    stable_errors = end["stable"].errors - start["stable"].errors
    return stable_errors + end.unrouted - start.unrouted > 0


def plan(runs: int, seed: int) -> list[tuple[str, str]]:
    """Every fault with every scenario in turn, shuffled by the seed. A Canary is deleted
    only during good releases: deleting it hands the app to the user's Deployment, which
    then runs whatever version it names, bad or not (the point is that no request fails
    for the hand-back itself)."""
    pairs = [(s, f) for f in FAULTS for s in SCENARIOS if f != "canary deleted" or s == "good"]
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    while len(out) < runs:
        batch = pairs[:]
        rng.shuffle(batch)
        out += batch
    return out[:runs]


@contextmanager
def sandbox(workdir: Path, say: Say, interval: str, step_pause: str) -> Iterator[
    tuple[DemoEnv, Replicas]
]:
    with demo.environment(workdir, say, 20.0, interval, step_pause) as env:
        demo.wait_initialized(env, say)
        replicas = Replicas(env).start()
        try:
            yield env, replicas
        finally:
            replicas.stop()


def table(runs: list[Run]) -> str:
    rows = [
        f"{'fault':<24} {'runs':>4} {'expected':<35} {'wrong':>5} {'blind':>5} "
        f"{'broken':>6} {'fault-failed req':>16}"
    ]
    for fault in FAULTS:
        mine = [r for r in runs if r.fault == fault]
        if not mine:
            continue
        expected = "handed back" if fault == "canary deleted" else (
            "good promoted, bad/slow rolled back")
        rows.append(
            f"{fault:<24} {len(mine):>4} {expected:<35} "
            f"{sum(r.wrong for r in mine):>5} {sum(r.blind for r in mine):>5} "
            f"{sum(r.broken for r in mine):>6} {sum(r.fault_failed for r in mine):>16}"
        )
    rows.append(
        f"{'all':<24} {len(runs):>4} {'':<35} {sum(r.wrong for r in runs):>5} "
        f"{sum(r.blind for r in runs):>5} {sum(r.broken for r in runs):>6} "
        f"{sum(r.fault_failed for r in runs):>16}"
    )
    return "\n".join(rows)


def chaos(
    say: Say,
    runs: list[tuple[str, str]],
    seed: int,
    interval: str = "5s",
    step_pause: str = "10s",
    workdir: Path | None = None,
) -> list[Run]:
    """Run each (scenario, fault) in order on one sandbox; `seed` picks the moments."""
    rng = random.Random(seed)
    results: list[Run] = []
    with (
        tempfile.TemporaryDirectory(prefix="canary-chaos-") as tmp,
        sandbox(workdir or Path(tmp), say, interval, step_pause) as (env, replicas),
    ):
        for n, (scenario, fault) in enumerate(runs, start=1):
            run = one_run(env, replicas, rng, scenario, fault, n)
            results.append(run)
            mark = "WRONG" if run.wrong or run.blind or run.broken else "ok"
            say(
                f"run {n}/{len(runs)}: {scenario} + {fault}: {run.got} in {run.seconds:.0f}s, "
                f"{run.fault_failed} fault-failed requests [{mark}]"
            )
            if fault == "canary deleted":
                _recreate(env, interval, step_pause)
    return results


def main(
    runs: Annotated[int, typer.Option(min=1, help="Faulted rollouts to run.")] = 50,
    seed: Annotated[int, typer.Option(help="Chooses scenarios, faults and moments.")] = 1,
    interval: Annotated[str, typer.Option(help="Analysis interval of the demo template.")] = "5s",
    step_pause: Annotated[str, typer.Option(help="Pause between the demo's steps.")] = "10s",
) -> None:
    """Faulted rollouts on the sandbox; prints a table; exit 1 on any wrong outcome."""
    # The sandbox's kubelet and load generator warn twice a second while the API server
    # is down; here that is the point, not news.
    logging.getLogger("canary.sandbox").setLevel(logging.ERROR)
    started = time.monotonic()
    results = chaos(lambda m: print(m, file=sys.stderr, flush=True), plan(runs, seed), seed,
                    interval, step_pause)
    print(table(results))
    print(f"{len(results)} faulted rollouts in {time.monotonic() - started:.0f}s, seed {seed}")
    bad = [r for r in results if r.wrong or r.blind or r.broken]
    raise typer.Exit(1 if bad else 0)


if __name__ == "__main__":
    typer.run(main)

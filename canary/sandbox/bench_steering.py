"""How fast the controller obeys an engineer: prints a table, asserts nothing.

    python -m canary.sandbox.bench_steering [--samples 20]

abort   -> time from the request (annotation written) until the HTTPRoute gives 0% canary
promote -> time from the request until the HTTPRoute carries the next step's weight

Runs against the demo environment (real API server, controller process, HTTPRoute).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from canary.api import naming, request_codec
from canary.api.request_codec import RequestAction
from canary.sandbox import demo
from canary.sandbox.demo import NS, DemoEnv

ROUTE = ("gateway.networking.k8s.io", "v1", "httproutes", NS, "checkout")


def _canary_weight(env: DemoEnv) -> int:
    route = env.kube.get_object(*ROUTE)
    refs = route["spec"]["rules"][0]["backendRefs"]
    return next((b.get("weight", 1) for b in refs if b["name"] == "checkout-canary"), 0)


def _request(env: DemoEnv, action: RequestAction) -> float:
    # The admission policy accepts only the canonical form, in the writer's own name.
    request = request_codec.new_request(action, env.kube.whoami(), dt.datetime.now(dt.UTC))
    started = time.monotonic()
    env.kube.annotate_canary(
        NS, "checkout", {naming.ANNOTATION_REQUEST: request_codec.encode(request)}
    )
    return started


def _until(env: DemoEnv, predicate, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate(_canary_weight(env)):
            return time.monotonic()
        time.sleep(0.005)
    raise TimeoutError("the controller did not act within 30s")


def _wait_status(env: DemoEnv, **want: object) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = env.kube.get_canary(NS, "checkout").get("status") or {}
        if all(status.get(k) == v for k, v in want.items()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"status never reached {want}")


def measure(env: DemoEnv, samples: int) -> dict[str, list[float]]:
    promote: list[float] = []
    abort: list[float] = []
    version = 10
    while len(promote) < samples or len(abort) < samples:
        version += 1
        revision = demo.release(env, f"v{version}", 0.0)
        _wait_status(env, canaryRevision=revision, canaryWeight=5, phase="Paused")
        weight = 5
        while weight < 95 and len(promote) < samples:
            started = _request(env, "promote")
            done = _until(env, lambda w, nxt=weight + 5: w == nxt)
            promote.append(done - started)
            weight += 5
            _wait_status(env, canaryWeight=weight, phase="Paused")
        started = _request(env, "abort")
        abort.append(_until(env, lambda w: w == 0) - started)
        _wait_status(env, phase="RolledBack")
    return {"promote -> next weight": promote[:samples], "abort -> 0% canary": abort[:samples]}


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    steps: list[dict] = []
    for weight in range(5, 100, 5):
        steps += [{"setWeight": weight}, {"pause": {}}]
    with (
        tempfile.TemporaryDirectory(prefix="canary-bench-") as tmp,
        demo.environment(
            Path(tmp), lambda m: None, rps=5, interval="5s", step_pause="1s", steps=steps
        ) as env,
    ):
        demo.wait_initialized(env, lambda m: None)
        results = measure(env, args.samples)
    print(f"{'request':<24} {'n':>4} {'median ms':>10} {'p99 ms':>8}")
    for name, values in results.items():
        print(
            f"{name:<24} {len(values):>4} {1000 * statistics.median(values):>10.0f} "
            f"{1000 * _p99(values):>8.0f}"
        )


if __name__ == "__main__":
    main()

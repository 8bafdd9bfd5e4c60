"""The whole loop as users run it: the controller as a process, real app processes,
Prometheus scraping them, and a load generator following the HTTPRoute weights."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from canary.kube.client import NotFound
from canary.sandbox import demo
from canary.sandbox.demo import NS, DemoEnv


@pytest.fixture
def env(tmp_path: Path) -> Iterator[DemoEnv]:
    with demo.environment(tmp_path, print, rps=20, interval="5s", step_pause="20s") as e:
        demo.wait_initialized(e, print)
        yield e


def canary_cli(env: DemoEnv, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real `canary` command, as CI or an engineer runs it (no TTY)."""
    return subprocess.run(
        [sys.executable, "-m", "canary", *args, "-n", NS, "--kubeconfig", str(env.kubeconfig)],
        capture_output=True, text=True, timeout=timeout)


def status(env: DemoEnv) -> dict[str, Any]:
    return env.kube.get_canary(NS, "checkout").get("status") or {}


def wait_for(env: DemoEnv, done: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(current := status(env)):
            return current
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout}s; status: {status(env)}")


def wait_live(env: DemoEnv, revision: str) -> None:
    wait_for(env, lambda s: s.get("canaryRevision") == revision and s.get("canaryWeight", 0) > 0,
             120, "the rollout never reached a weight above 0")


def test_bad_canary_is_rolled_back_and_good_one_promoted(env: DemoEnv) -> None:
    bad = demo.rollout(env, print, "bad", "v2", 0.2, "RolledBack", timeout=300)
    assert bad.phase == "RolledBack", bad
    assert "error-rate" in bad.message
    route = env.kube.get_object("gateway.networking.k8s.io", "v1", "httproutes", NS, "checkout")
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"checkout-stable": 100, "checkout-canary": 0}
    # The canary's pods keep running the demo's scaleDownDelaySeconds (10 s), then go.
    canary_dep = env.kube.get_deployment(NS, "checkout-canary")
    assert canary_dep is not None and canary_dep["spec"]["replicas"] > 0
    wait_for(env, lambda s: "canaryScaleDownAt" not in s, 30, "the canary was not scaled down")
    canary_dep = env.kube.get_deployment(NS, "checkout-canary")
    assert canary_dep is not None and canary_dep["spec"]["replicas"] == 0

    good = demo.rollout(env, print, "good", "v3", 0.0, "Succeeded", timeout=300)
    assert good.phase == "Succeeded", good
    primary = env.kube.get_deployment(NS, "checkout-primary")
    assert primary is not None
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "demo/checkout:v3"
    # Users never saw a failure from the good release.
    assert good.failed_requests == 0


def probe(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_kill_9_mid_rollout_then_restart_gives_the_right_outcome(env: DemoEnv) -> None:
    wait_live(env, demo.release(env, "v2", 0.3))
    os.kill(env.controller.pid, signal.SIGKILL)
    env.controller.proc.wait(timeout=10)
    time.sleep(2)
    env.restart_controller()
    final = wait_for(env, lambda s: s.get("phase") in ("RolledBack", "Succeeded", "Failed"),
                     300, "no verdict after the restart")
    assert final["phase"] == "RolledBack", final
    assert final["canaryWeight"] == 0
    # The new process answers Kubernetes' probes: alive, and ready once it hears the API.
    assert probe(f"{env.health_url}/healthz") == 200
    assert probe(f"{env.health_url}/readyz") == 200


def test_ci_deploy_waits_and_exits_0_with_json_and_junit(env: DemoEnv, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    out = canary_cli(env, "deploy", "checkout", "--image", "app=demo/checkout:v5", "--wait",
                     "--timeout", "5m", "--output", "json", "--junit", str(report), timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "\x1b[" not in out.stdout  # no colour codes without a TTY
    summary = json.loads(out.stdout)  # progress went to stderr
    assert summary["result"] == "promoted"
    assert ET.parse(report).getroot().get("failures") == "0"


def test_ci_deploy_times_out_with_exit_3(env: DemoEnv) -> None:
    out = canary_cli(env, "deploy", "checkout", "--image", "app=demo/checkout:v6", "--wait",
                     "--timeout", "3s")
    assert out.returncode == 3, out.stdout + out.stderr


def test_abort_rolls_back_at_once_and_audits_who(env: DemoEnv) -> None:
    wait_live(env, demo.release(env, "v7", 0.0))
    out = canary_cli(env, "abort", "checkout")
    assert out.returncode == 0, out.stdout + out.stderr
    final = status(env)
    assert (final["phase"], final["canaryWeight"]) == ("RolledBack", 0)
    notes = " ".join(e.get("note", "") for e in env.kube.list_events(NS, "checkout"))
    assert f"abort requested by {env.kube.whoami()}" in notes  # the API server's word


def test_a_request_that_does_not_apply_says_why_and_exits_1(env: DemoEnv) -> None:
    out = canary_cli(env, "resume", "checkout")  # nothing is paused
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not applied" in out.stdout


def test_deleting_the_canary_mid_rollout_costs_users_no_request(env: DemoEnv) -> None:
    wait_live(env, demo.release(env, "v8", 0.0))
    before = env.loadgen.stats()
    demo.kubectl(env.kubeconfig, "delete", "canary", "checkout", "-n", NS, "--wait=false")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            env.kube.get_canary(NS, "checkout")
        except NotFound:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the Canary was never released; controller log:\n"
                    f"{env.controller.log_tail()}")
    route = env.kube.get_object("gateway.networking.k8s.io", "v1", "httproutes", NS, "checkout")
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["checkout"]
    assert env.kube.get_deployment(NS, "checkout")["spec"]["replicas"] == 2  # type: ignore[index]
    # What the garbage collector does in a cluster (the sandbox runs none): the Canary's
    # own Deployments and Services go, and their processes stop.
    demo.kubectl(env.kubeconfig, "delete", "deployment,service", "-n", NS,
                  "-l", "canary.dev/name=checkout")
    gone = env.loadgen.stats().requests
    while env.loadgen.stats().requests < gone + 60:  # 3 s of users after the owned pods went
        time.sleep(0.2)
    after = env.loadgen.stats()
    assert after.requests - before.requests > 60
    assert after.failed - before.failed == 0, (before, after)


def test_status_watch_in_a_real_terminal_follows_a_rollback(env: DemoEnv) -> None:
    """What an engineer sees: `canary status --watch` in a real terminal (tmux), redrawn
    as a bad release goes live and is rolled back, and ended with Ctrl-C."""
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (.ci/run installs it)")
    session = f"canary-watch-{os.getpid()}"
    command = shlex.join([sys.executable, "-m", "canary", "status", "checkout", "--watch",
                          "-n", NS, "--kubeconfig", str(env.kubeconfig)])
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "45", command],
                   check=True)

    def screen() -> str:
        return subprocess.run([tmux, "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout

    try:
        revision = demo.release(env, "v9", 0.3)
        seen: list[str] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "RolledBack" not in (seen or [""])[-1]:
            seen.append(screen())
            time.sleep(1)
        live = [s for s in seen if "Progressing" in s]
        assert live, seen[-1]
        assert "demo/checkout:v9" in live[-1] and "step" in live[-1], live[-1]
        final = seen[-1]
        assert f"{NS}/checkout  RolledBack" in final, final
        assert "error-rate" in final and " ago " in final, final
        assert revision[:6] in final, final
        subprocess.run([tmux, "send-keys", "-t", session, "C-c"], check=True)
        gone = time.monotonic() + 10
        while subprocess.run([tmux, "has-session", "-t", session],
                             capture_output=True).returncode == 0:
            assert time.monotonic() < gone, "Ctrl-C did not end the watch: " + screen()
            time.sleep(0.2)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)


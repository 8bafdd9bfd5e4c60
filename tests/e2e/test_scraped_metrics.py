"""The controller's /metrics and the Grafana dashboard, through a real Prometheus.

The sandbox's Prometheus scrapes the controller process (its --health-port serves
/metrics) while it rolls a bad release back and promotes a good one. The per-Canary series
must follow the rollout, the counters must count both outcomes, and every query of
dashboards/canary.json must parse and return data, with its variables set as a user of
the sandbox would set them. The main panels are drawn from the same queries into
dashboard.png next to the test's tmp_path, to look at as a user would.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from canary.api.status import Phase
from canary.sandbox import demo
from canary.sandbox.demo import NS, DemoEnv

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboards" / "canary.json"
JOB = "canary-controller"
CANARY = f'namespace="{NS}", name="checkout"'
# The dashboard's variables as a user of the sandbox sets them: its demo app labels its
# series service/variant (the templates' nameLabel/variantLabel args), and answers in
# about 20 ms, so 25 ms is a bucket edge with requests on both sides.
VARIABLES = {
    "job": JOB,
    "namespace": NS,
    "canary": "checkout",
    "nameLabel": "service",
    "variantLabel": "variant",
    "slowerThan": "0.025",
    "__rate_interval": "1m",
    "__range": "1h",
}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[DemoEnv]:
    with demo.environment(tmp_path, print, rps=20, interval="5s", step_pause="20s") as e:
        demo.wait_initialized(e, print)
        e.prometheus.set_targets(JOB, [e.health_url.removeprefix("http://")])
        yield e


def query(env: DemoEnv, promql: str) -> list[dict[str, Any]]:
    try:
        return env.prometheus.query(promql)
    except urllib.error.HTTPError as error:
        pytest.fail(f"Prometheus rejected {promql!r}: {error.read().decode()}")


def values(env: DemoEnv, promql: str) -> dict[frozenset[tuple[str, str]], float]:
    """Each series' own labels (not its name, job or instance) and its value."""
    out = {}
    for series in query(env, promql):
        labels = {k: v for k, v in series["metric"].items()
                  if k not in ("__name__", "job", "instance")}
        out[frozenset(labels.items())] = float(series["value"][1])
    return out


def one(env: DemoEnv, promql: str) -> float:
    [value] = values(env, promql).values()
    return value


def eventually(env: DemoEnv, check: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if env.controller.proc.poll() is not None:
            pytest.fail(f"the controller exited:\n{env.controller.log_tail()}")
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout}s; controller log:\n{env.controller.log_tail()}")


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL with the sandbox's variables) of every query in the dashboard."""
    def substitute(expr: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: VARIABLES[m.group(1)], expr)

    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], substitute(target["expr"]))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_prometheus_scrapes_the_controller_through_a_real_rollout(
    env: DemoEnv, tmp_path: Path
) -> None:
    started = time.time()
    eventually(env, lambda: values(env, f'up{{job="{JOB}"}}') == {frozenset(): 1.0},
               "Prometheus never scraped the controller", timeout=60)
    bad = demo.rollout(env, print, "bad", "v2", 0.2, "RolledBack", timeout=300)
    assert bad.phase == "RolledBack", bad

    # The good release: look while it is under way.
    demo.release(env, "v3", 0.0)
    eventually(env, lambda: bool(values(env, f"canary_weight{{{CANARY}}} > 0")) and bool(
        values(env, f'canary_metric_verdict{{{CANARY}, verdict="Inconclusive"}} == 1')),
        "Prometheus never saw the good canary take traffic while its evidence accrued")
    phases = values(env, f"canary_phase{{{CANARY}}}")
    assert len(phases) == len(Phase) and sum(phases.values()) == 1
    assert phases[frozenset({("namespace", NS), ("name", "checkout"),
                             ("phase", "Progressing")})] == 1
    assert one(env, f"canary_weight{{{CANARY}}}") in (10, 30, 60)  # the spec's setWeights
    assert 0 <= one(env, f"canary_step_index{{{CANARY}}}") < 6
    assert one(env, f"canary_steps{{{CANARY}}}") == 6
    verdicts = values(env, f'canary_metric_verdict{{{CANARY}, metric="background/error-rate"}}')
    assert len(verdicts) == 4 and sum(verdicts.values()) == 1
    no_data = [title for title, promql in panel_queries() if not query(env, promql)]
    assert no_data == [], f"panels without data during the rollout: {no_data}"

    def phase() -> str:
        return str((env.kube.get_canary(NS, "checkout").get("status") or {}).get("phase"))

    eventually(env, lambda: phase() == "Succeeded", "the good canary was not promoted")
    outcomes = f'canary_rollouts_total{{job="{JOB}", namespace="{NS}"}}'
    promoted = f'canary_rollouts_total{{job="{JOB}", namespace="{NS}", outcome="promoted"}}'
    eventually(env, lambda: one(env, promoted) == 1, "Prometheus never counted the promotion",
               timeout=30)
    counted = {dict(k)["outcome"]: v for k, v in values(env, outcomes).items()}
    assert counted == {"promoted": 1, "rolled_back": 1, "failed": 0, "abandoned": 0,
                       "superseded": 0}
    durations = f'canary_rollout_duration_seconds_count{{job="{JOB}", namespace="{NS}"}}'
    assert {dict(k)["outcome"]: v for k, v in values(env, durations).items() if v} == {
        "promoted": 1, "rolled_back": 1}
    assert one(env, f'canary_rollout_duration_seconds_sum{{namespace="{NS}", '
                    f'outcome="promoted"}}') > 0
    assert one(env, f"canary_phase{{{CANARY}, phase=\"Succeeded\"}}") == 1
    assert one(env, f"canary_step_index{{{CANARY}}}") == 6  # every step done
    assert one(env, f"canary_weight{{{CANARY}}}") == 0

    assert one(env, f'sum(canary_reconcile_duration_seconds_count{{job="{JOB}"}})') > 0
    assert one(env, f'canary_reconcile_errors_total{{job="{JOB}", kind="crash"}}') == 0
    depth = values(env, f'canary_workqueue_depth{{job="{JOB}"}}')
    assert {dict(k)["lane"] for k in depth} == {"urgent", "background"}
    assert all(v >= 0 for v in depth.values())
    requests = values(env, f'canary_kube_requests_total{{job="{JOB}"}}')
    seen = {(dict(k)["verb"], dict(k)["resource"], dict(k)["code"]) for k, v in requests.items()}
    assert {("patch", "canaries/status", "200"), ("watch", "canaries", "200"),
            ("list", "deployments", "200"), ("update", "httproutes", "200")} <= seen
    assert not [k for k in requests if any("checkout" in v for _, v in k)]  # no object names

    no_data = [title for title, promql in panel_queries() if not query(env, promql)]
    assert no_data == [], f"panels without data after the rollouts: {no_data}"
    # Draw a little of the settled state too, so that the promotion is not at the edge.
    settled = f'min_over_time(canary_phase{{{CANARY}, phase="Succeeded"}}[15s]) == 1'
    eventually(env, lambda: bool(query(env, settled)), "the promotion did not last", timeout=60)
    png = render(env, started, time.time(), tmp_path / "dashboard.png")
    print(f"dashboard panels drawn to {png}")


# ------------------------------------------------------------------- drawing


def query_range(env: DemoEnv, promql: str, start: float, end: float) -> list[dict[str, Any]]:
    params = {"query": promql, "start": str(start), "end": str(end), "step": "2"}
    url = f"{env.prometheus.url}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    template = re.sub(r"\$(\w+)", lambda m: VARIABLES.get(m.group(1), m.group(0)), template)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def render(env: DemoEnv, start: float, end: float, path: Path) -> Path:
    """The dashboard's time-series and state-timeline panels, from the same queries over
    the test's time range: what Grafana would draw, for a look by eye."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] in ("timeseries", "state-timeline")]
    rows = (len(panels) + 2) // 3
    fig, axes = plt.subplots(rows, 3, figsize=(18, 3.2 * rows))
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.set_title(panel["title"], fontsize=10)
        for target in panel["targets"]:
            promql = re.sub(r"\$(\w+)", lambda m: VARIABLES[m.group(1)], target["expr"])
            for series in query_range(env, promql, start, end):
                times = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                label = legend(target.get("legendFormat", ""), series["metric"])
                # The last value holds to the end, so a change at the last scrape shows.
                ax.step([*times, end - start], [*ys, ys[-1]], where="post", label=label[:40])
        ax.set_xlim(0, end - start)
        mappings = panel["fieldConfig"]["defaults"].get("mappings")
        if mappings:
            options = mappings[0]["options"]
            ax.set_yticks([int(k) for k in options], [o["text"] for o in options.values()],
                          fontsize=7)
        ax.set_xlabel("seconds into the test", fontsize=8)
        ax.legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

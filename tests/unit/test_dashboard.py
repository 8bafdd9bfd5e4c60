"""dashboards/canary.json: a Grafana dashboard that only asks for what the controller
exports, with variables it defines. tests/e2e/test_scraped_metrics.py runs its queries."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from canary.api.status import CanaryStatus, MetricStatus, Phase
from canary.controller.telemetry import Metrics
from canary.controller.workqueue import WorkQueue

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "canary.json"
GRAFANA_BUILTINS = {"__rate_interval", "__range", "__interval"}


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in dashboard()["panels"] for t in p.get("targets", [])]


def test_panels_have_unique_ids_and_fit_the_grid_without_overlapping() -> None:
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                 for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_every_query_reads_the_chosen_prometheus_with_defined_variables() -> None:
    defined = {v["name"] for v in dashboard()["templating"]["list"]} | GRAFANA_BUILTINS
    for title, target in targets():
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        used = set(re.findall(r"\$(\w+)", target["expr"] + target.get("legendFormat", "")))
        assert used <= defined, f"{title}: undefined {used - defined}"


def test_every_controller_metric_it_charts_is_one_the_controller_exports() -> None:
    metrics = Metrics()
    live = CanaryStatus(phase=Phase.PROGRESSING, canary_revision="r2", current_step_index=0,
                        analysis=[MetricStatus(name="background/error-rate")])
    metrics.observe("shop", "checkout", 2, CanaryStatus(), live, dt.datetime.now(dt.UTC))
    metrics.watch_queue(WorkQueue())
    metrics.kube_request("get", "canaries", "200")
    exported = {s.name for family in metrics.registry.collect() for s in family.samples}
    charted = {name for _, t in targets() for name in re.findall(r"\bcanary_\w+", t["expr"])}
    assert charted and charted <= exported, charted - exported

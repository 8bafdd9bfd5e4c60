"""What `canary status` and `canary list` show people: images and replicas, the step
1-based with the time a pause has left, the weight the route carries where it is not the
one desired, each metric's evidence in words, a request the controller has not answered,
event ages, and an invalid spec as the phase."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from canary.cli import inspection, render
from canary.cli.app import app
from canary.cli.screen import Workloads, status_view

pytestmark = pytest.mark.unit

NOW = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC)


def ts(seconds_ago: float, now: dt.datetime = NOW) -> str:
    return (now - dt.timedelta(seconds=seconds_ago)).isoformat()


def deployment(name: str, image: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"replicas": replicas,
                 "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"readyReplicas": ready},
    }


WORKLOADS = Workloads(
    primary=deployment("checkout-primary", "shop/checkout:v1", 3, 3),
    canary=deployment("checkout-canary", "shop/checkout:v2", 1, 1),
    target=deployment("checkout", "shop/checkout:v2", 0, 0),
)
ERRORS = {
    "name": "error-rate", "verdict": "Inconclusive", "value": "n/a",
    "reason": "error-rate: errors: canary 0% (0/63) vs stable 0.6% (4/620), no bad requests yet, "
              "95% bounds [0, 4.1]; not yet shown within ratio < 1.5: about 400 more canary "
              "requests at these rates (Inconclusive)",
    "measurements": 3, "failures": 0, "inconclusives": 3,
    "evidence": [
        {"step": 1, "canaryRequests": 20, "canaryBad": 0, "stableRequests": 200, "stableBad": 1},
        {"step": 3, "canaryRequests": 43, "canaryBad": 0, "stableRequests": 420, "stableBad": 3},
    ],
}
SUCCESS = {
    "name": "success", "verdict": "Pass", "value": "0.998", "measurements": 5,
    "reason": "success: 0.998 is within [0.99, 1] (Pass)",
}


def rollout(now: dt.datetime = NOW, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "targetRef": {"name": "checkout"},
            "steps": [{"setWeight": 10},
                      {"analysis": {"templates": [{"templateName": "error-rate"}]}},
                      {"setWeight": 30}, {"pause": {"duration": "10m"}}, {"setWeight": 60},
                      {"pause": {}}],
        },
        "status": {
            "phase": "Paused", "stableRevision": "5d8f6c", "canaryRevision": "7c9a41",
            "canaryWeight": 30, "currentStepIndex": 3, "stepStartedAt": ts(192, now),
            "message": "step 4/6: paused for 10m", "analysis": [ERRORS, SUCCESS],
            **status,
        },
    }


EVENTS = [
    {"metadata": {}, "eventTime": ts(700), "type": "Normal", "reason": "RolloutStarted",
     "note": "rolling out 7c9a41 over 5d8f6c"},
    {"metadata": {}, "eventTime": ts(150), "type": "Normal", "reason": "PausedAtStep",
     "note": "step 4/6: paused for 10m"},
]

SCREEN = """\
shop/checkout  Paused
  stable   shop/checkout:v1  checkout-primary 3/3 ready  revision 5d8f6c
  canary   shop/checkout:v2  checkout-canary 1/1 ready   revision 7c9a41
  step     4/6 (pause 10m, 6m48s left)
  weight   30%
  message  step 4/6: paused for 10m
metrics:
  error-rate  Inconclusive  ✔0 ✖0 ?3  63 canary requests, 0 vs 0.41 expected errors (at stable's rate) over 2 steps; not yet shown within ratio < 1.5: about 400 more canary requests at these rates
  success     Pass          ✔5 ✖0 ?0  value 0.998: 0.998 is within [0.99, 1]
events:
  11m ago  Normal  RolloutStarted: rolling out 7c9a41 over 5d8f6c
  2m ago   Normal  PausedAtStep: step 4/6: paused for 10m"""  # noqa: E501


def test_the_screen_shows_images_replicas_the_step_evidence_and_event_ages() -> None:
    assert "\n".join(status_view(rollout(), EVENTS, WORKLOADS, NOW, False)) == SCREEN


def test_a_succeeded_rollout_shows_no_stale_inconclusive_metric() -> None:
    done = rollout(phase="Succeeded", canaryRevision=None, currentStepIndex=None)
    lines = status_view(done, [], WORKLOADS, NOW, False)
    assert not [line for line in lines if "Inconclusive" in line]
    assert "  success  Pass  ✔5 ✖0 ?0  value 0.998: 0.998 is within [0.99, 1]" in lines
    assert "  step     -" in lines


def test_the_screen_says_what_each_webhook_last_answered_and_what_it_means() -> None:
    hooks = [
        {"name": "change-freeze", "type": "confirm-promotion", "verdict": "Fail",
         "message": "HTTP 423: frozen until 18:00", "calledAt": ts(40), "calls": 3},
        {"name": "incidents", "type": "rollback", "verdict": "Error",
         "message": "http://pager/ did not answer within 10s (3 attempts)",
         "calledAt": ts(5), "calls": 1},
        {"name": "notify", "type": "post-rollout"},
    ]
    lines = status_view(rollout(webhooks=hooks), [], WORKLOADS, NOW, False)
    at = lines.index("webhooks:")
    assert lines[at + 1 : at + 4] == [
        "  change-freeze  confirm-promotion  Fail   holds the promotion, 40s ago: "
        "HTTP 423: frozen until 18:00",
        "  incidents      rollback           Error  no answer; no rollback, 5s ago: "
        "http://pager/ did not answer within 10s (3 attempts)",
        "  notify         post-rollout       -      due: the controller calls it next",
    ]


class Cluster:
    namespace = "shop"

    def __init__(self, canary: dict[str, Any]) -> None:
        self.canary = canary

    def get_canary(self, ns: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.canary)

    def list_canaries(self, ns: str | None) -> tuple[list[dict[str, Any]], str]:
        return [copy.deepcopy(self.canary)], "1"

    def list_events(self, ns: str, name: str) -> list[dict[str, Any]]:
        return []

    def get_deployment(self, ns: str, name: str) -> dict[str, Any] | None:
        return {"checkout-primary": WORKLOADS.primary, "checkout-canary": WORKLOADS.canary,
                "checkout": WORKLOADS.target}.get(name)


def run(monkeypatch: pytest.MonkeyPatch, canary: dict[str, Any], *args: str) -> Any:
    monkeypatch.setattr(inspection, "connect", lambda kubeconfig, context: Cluster(canary))
    return CliRunner().invoke(app, list(args))


def invalid() -> dict[str, Any]:
    problem = "spec.steps[5].pause.duration: 'soon' is not a duration"
    condition = {"type": "Invalid", "status": "True", "reason": "InvalidSpec", "message": problem}
    return rollout(conditions=[condition])


def test_an_invalid_canary_shows_invalid_as_its_phase_and_status_exits_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(monkeypatch, invalid(), "status", "checkout")
    assert result.exit_code == 2, result.output
    assert result.stdout.startswith("shop/checkout  Invalid\n")
    assert "  invalid  spec.steps[5].pause.duration: 'soon' is not a duration\n" in result.stdout
    listed = run(monkeypatch, invalid(), "list")
    assert listed.stdout.splitlines()[1].split()[:4] == ["checkout", "Invalid", "30%", "4/6"]


def test_a_request_the_controller_has_not_answered_shows_as_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = dt.datetime.now(dt.UTC)
    canary = rollout(now, lastRequestId="r1", lastRequestOutcome="Applied")
    request = {"id": "r2", "action": "promote", "user": "alice", "at": ts(330, now)}
    canary["metadata"]["annotations"] = {"canary.dev/request": json.dumps(request)}
    result = run(monkeypatch, canary, "status", "checkout")
    assert result.exit_code == 0, result.output
    pending = "promote by alice 5m ago: pending, the controller has not answered it yet"
    assert f"  request  {pending}\n" in result.stdout
    canary["status"]["lastRequestId"] = "r2"
    answered = run(monkeypatch, canary, "status", "checkout")
    assert "ago: Applied\n" in answered.stdout


def test_deployments_it_may_not_read_are_unknown_not_stopped() -> None:
    lines = status_view(rollout(), [], Workloads(None, None, None, "forbidden"), NOW, False)
    assert lines[1:3] == ["  stable   -  -  revision 5d8f6c", "  canary   -  -  revision 7c9a41"]
    assert "  images   cannot read the Deployments: forbidden" in lines


def test_the_weight_the_route_carries_shows_only_when_it_is_not_the_weight_desired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lagging = status_view(rollout(routeWeight=25), [], WORKLOADS, NOW, False)
    assert "  weight   30% desired, route carries 25%" in lagging
    for agreeing in (rollout(routeWeight=30), rollout()):  # agrees, or not read yet
        assert "  weight   30%" in status_view(agreeing, [], WORKLOADS, NOW, False)
    result = run(monkeypatch, rollout(routeWeight=25), "status", "checkout", "-o", "json")
    assert json.loads(result.stdout)["routeWeight"] == 25


def test_the_one_line_summary_names_the_route_weight_when_it_differs() -> None:
    """CI logs and a piped --watch print a line per change of the status; the route
    catching up is one, so the line shows it."""
    lagging = render.summary_line(rollout(routeWeight=0))
    assert lagging.startswith("phase=Paused weight=30% route=0% step=4/6 ")
    assert render.summary_line(rollout(routeWeight=30)).startswith("phase=Paused weight=30% step=")


def waiting(*blackouts: dict[str, str]) -> dict[str, Any]:
    canary = rollout(phase="Waiting", canaryWeight=0, currentStepIndex=None, analysis=[],
                     message="revision 7c9a41 waits out the blackout")
    canary["spec"]["deployWindow"] = {"blackouts": list(blackouts)}
    return canary


SALE = {"start": "2024-05-06T00:00:00-05:00", "end": "2024-05-08T00:00:00-05:00",
        "reason": "holiday sale"}
AUDIT = {"start": "2024-05-06T11:00:00Z", "end": "2024-05-06T12:00:00Z", "reason": "audit"}
OVER = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z", "reason": "over"}


def test_the_screen_shows_the_blackout_holding_now() -> None:
    lines = status_view(waiting(OVER, AUDIT, SALE), [], WORKLOADS, NOW, False)
    assert lines[1:7] == [
        "  stable    shop/checkout:v1  checkout-primary 3/3 ready  revision 5d8f6c",
        "  canary    shop/checkout:v2  checkout-canary 1/1 ready   revision 7c9a41",
        "  step      -",
        "  weight    0%",
        "  message   revision 7c9a41 waits out the blackout",
        "  blackout  holiday sale: now, until 2024-05-08T00:00:00-05:00 (43h from now)",
    ]


def test_the_screen_shows_the_next_blackout_and_none_once_they_are_over() -> None:
    lines = status_view(waiting(OVER, AUDIT), [], WORKLOADS, NOW, False)
    assert "  blackout  audit: from 2024-05-06T11:00:00Z (in 60m) to 2024-05-06T12:00:00Z" in lines
    later = NOW + dt.timedelta(hours=2)
    assert not [line for line in status_view(waiting(OVER, AUDIT), [], WORKLOADS, later, False)
                if "blackout " in line]
    plain = status_view(rollout(), [], WORKLOADS, NOW, False)
    assert "  message  step 4/6: paused for 10m" in plain  # no blackout row: labels as before


def baking() -> dict[str, Any]:
    canary = rollout(phase="Baking", canaryWeight=95, currentStepIndex=6,
                     bakeStartedAt=ts(330), stepStartedAt=ts(330))
    canary["spec"]["bake"] = {"duration": "15m", "holdback": 5}
    return canary


def test_a_bake_shows_as_its_phase_with_the_time_it_has_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = status_view(baking(), [], WORKLOADS, NOW, False)
    assert lines[0] == "shop/checkout  Baking"
    assert "  step     6/6 (baking 15m, 9m30s left)" in lines
    assert "  weight   95%" in lines
    listed = run(monkeypatch, baking(), "list")
    assert listed.stdout.splitlines()[1].split()[:5] == ["checkout", "Baking", "95%", "6/6",
                                                         "(baking"]


def test_a_pending_scale_down_says_when_the_canary_pods_go() -> None:
    rolled_back = rollout(phase="RolledBack", canaryWeight=0, canaryScaleDownAt=ts(-25))
    lines = status_view(rolled_back, [], WORKLOADS, NOW, False)
    assert ("  scale-down  checkout-canary in 25s: its pods outlive its traffic for late data "
            "planes") in lines
    assert not [line for line in status_view(rollout(), [], WORKLOADS, NOW, False)
                if "scale-down" in line]

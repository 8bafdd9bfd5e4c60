"""The controller's Invalid condition: validation's findings, each problem named once."""

from __future__ import annotations

import datetime as dt

import pytest
from fake_kube import FakeKube, canary_object, pod_template, user_deployment

from canary.api import naming
from canary.controller.reconciler import Controller
from canary.kube.client import Obj
from canary.validation import validate_canary

pytestmark = pytest.mark.unit

NS, NAME = "default", "shop"
NOW = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC)

DEPLOYMENT = user_deployment(NS, NAME, 2, pod_template(NAME, "demo/shop:v1"))


def _canary(**spec: object) -> Obj:
    return canary_object(NS, NAME, **spec)


TEMPLATE: Obj = {
    "apiVersion": "canary.dev/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "errors", "namespace": NS},
    "spec": {
        "args": [{"name": "service"}],
        "metrics": [
            {
                "name": "errors",
                "provider": {"prometheus": {"query": 'up{job="{{args.service}}"}'}},
                "thresholdRange": {"min": 1},
            }
        ],
    },
}


def _reconcile(canary: Obj, *templates: Obj) -> tuple[FakeKube, dict[str, object]]:
    """One reconcile of `canary`: the store afterwards, and its Invalid condition."""
    kube = FakeKube()
    for template in templates:
        kube.seed_template(NS, template)
    kube.user_apply_deployment(NS, DEPLOYMENT)
    kube.seed_canary(canary)
    Controller(kube, clock=lambda: NOW).reconcile_key(f"{NS}/{NAME}")  # type: ignore[arg-type]
    [condition] = kube.canaries[(NS, NAME)]["status"]["conditions"]
    return kube, condition


def test_each_problem_is_named_once_in_validations_words() -> None:
    canary = _canary(
        analysis={"templates": [{"templateName": "missing"}]},
        deployWindow={"timezone": "Mars/Olympus", "days": [], "start": "09:00", "end": "16:00"},
    )
    kube, condition = _reconcile(canary)
    assert (condition["status"], condition["reason"]) == ("True", "InvalidSpec")
    assert condition["message"] == "; ".join(str(f) for f in validate_canary(canary, {}))
    message = str(condition["message"])
    for field in (
        "spec.analysis.templates[0].templateName:",
        "spec.deployWindow.timezone:",
        "spec.deployWindow.days:",
    ):
        assert message.count(field) == 1, field
    assert message.count("'missing'") == 1
    assert (NS, naming.primary(NAME)) not in kube.deployments  # nothing changes while invalid
    # kubectl get canaries shows the Phase column from here
    assert kube.canaries[(NS, NAME)]["status"]["phaseDisplay"] == "Invalid"


def test_a_step_analysis_may_take_its_args_from_the_background_analysis() -> None:
    canary = _canary(
        steps=[{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "errors"}]}}],
        analysis={
            "templates": [{"templateName": "errors"}],
            "args": [{"name": "service", "value": NAME}],
        },
    )
    _, condition = _reconcile(canary, TEMPLATE)
    assert (condition["status"], condition["message"]) == ("False", "")


def test_a_window_with_start_equal_to_end_is_invalid_and_says_how_to_write_a_whole_day() -> None:
    window = {"days": ["Mon"], "start": "09:00", "end": "09:00"}
    kube, condition = _reconcile(_canary(deployWindow=window))
    assert condition["status"] == "True"
    assert str(condition["message"]).startswith("spec.deployWindow.end: equals start (09:00)")
    assert 'start: "00:00" and end: "24:00"' in str(condition["message"])
    assert (NS, naming.primary(NAME)) not in kube.deployments

"""promote, abort, pause, resume and retry report what the controller recorded in the
Canary's status for their request (applied, ignored or rejected), and exit by it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from engine_support import canary, decide, observe, rolling
from typer.testing import CliRunner

from canary.api.status import CanaryStatus
from canary.cli import rollout
from canary.cli.app import app
from canary.controller.observe import parse_request

pytestmark = pytest.mark.unit


class Cluster:
    """The API server, with a controller that consumes each request as it is written:
    the real parse_request and engine, its clock `skew` off the CLI's."""

    namespace = "shop"  # the kubeconfig context's

    def __init__(self, status: CanaryStatus, user: str = "alice", skew: float = 0) -> None:
        self.status, self.user, self.skew = status, user, dt.timedelta(seconds=skew)

    def get_canary(self, ns: str, name: str) -> dict[str, Any]:
        return canary(self.status).model_dump(by_alias=True, exclude_none=True, mode="json")

    def whoami(self) -> str:
        return self.user

    def annotate_canary(self, ns: str, name: str, annotations: dict[str, str | None]) -> None:
        now = dt.datetime.now(dt.UTC) + self.skew
        present = {k: v for k, v in annotations.items() if v is not None}
        request = parse_request(present, self.status.last_request_id, now)
        self.status = decide(canary(self.status), observe(request=request)).status


def steer(monkeypatch: pytest.MonkeyPatch, cluster: Cluster, *args: str) -> Any:
    monkeypatch.setattr(rollout, "connect", lambda kubeconfig, context: cluster)
    return CliRunner().invoke(app, [*args, "checkout"])


def test_an_applied_request_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    result = steer(monkeypatch, Cluster(rolling(3, 50)), "pause")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("pause shop/checkout: done. phase=Paused weight=50%")


def test_a_request_that_does_not_apply_says_why_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = steer(monkeypatch, Cluster(rolling(3, 50)), "resume")
    assert result.exit_code == 1, result.output
    assert result.output == "resume shop/checkout: not applied: not paused (phase Progressing)\n"


def test_a_request_the_controller_rejects_says_why_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = steer(monkeypatch, Cluster(rolling(3, 50), skew=-600), "abort")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("abort shop/checkout: not applied: at: ")
    assert "more than 5 minutes in the future" in result.output


def test_a_user_a_request_cannot_carry_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    result = steer(monkeypatch, Cluster(rolling(3, 50), user='al"ice'), "abort")
    assert result.exit_code == 2
    assert "Fix: use a kubeconfig user with a plainer name" in result.output

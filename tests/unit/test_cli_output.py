"""What a pipe or a CI job reads from `deploy --wait`, `wait`, `status` and `list`: the
result alone on stdout (progress on stderr), whole lines, the exit codes of DESIGN.md 1."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from canary.cli import inspection, rollout
from canary.cli.app import app
from canary.controller.workloads import template_hash

pytestmark = pytest.mark.unit

LONG = "step 2/4: paused until `canary promote checkout -n shop`; " + "x" * 150
TEMPLATE = {"spec": {"containers": [{"name": "app", "image": "checkout:v1"}]}}
V2 = {"spec": {"containers": [{"name": "app", "image": "checkout:v2"}]}}


class Cluster:
    """The API server as the CLI reads it: each read of the Canary returns the next status
    of `script` (the controller's progress), then the last one again."""

    namespace = "shop"  # the kubeconfig context's

    def __init__(self, *script: dict[str, Any], template: dict[str, Any] = TEMPLATE) -> None:
        self.script = list(script)
        self.deployment: dict[str, Any] = {
            "metadata": {"name": "checkout"}, "spec": {"template": template}
        }

    def _canary(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"targetRef": {"name": "checkout"}, "steps": [{"setWeight": 10}]},
            "status": status,
        }

    def get_canary(self, ns: str, name: str) -> dict[str, Any]:
        status = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return self._canary(name, status)

    def list_canaries(self, ns: str | None) -> tuple[list[dict[str, Any]], str]:
        items = [self._canary(f"app-{i}", self.script[0]) for i in range(3)]
        return [] if ns == "empty" else items, "1"

    def list_events(self, ns: str, name: str) -> list[dict[str, Any]]:
        return []

    def get_deployment(self, ns: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.deployment)

    def replace_deployment(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        self.deployment = body
        return body


def run(monkeypatch: pytest.MonkeyPatch, kube: Cluster, *args: str) -> Any:
    for module in (rollout, inspection):
        monkeypatch.setattr(module, "connect", lambda kubeconfig, context: kube)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return CliRunner().invoke(app, list(args))


def rollout_to(revision: str, phase: str) -> list[dict[str, Any]]:
    start = {"phase": "Idle", "stableRevision": "old"}
    live = {"phase": "Progressing", "canaryRevision": revision, "canaryWeight": 10,
            "currentStepIndex": 0, "message": LONG,
            "analysis": [{"name": "errors", "verdict": "Pass", "value": "0.1", "reason": "ok"}]}
    stable = revision if phase == "Succeeded" else "old"
    return [start, live, {"phase": phase, "canaryRevision": revision, "stableRevision": stable,
                          "message": "done"}]


def test_deploy_wait_json_writes_only_the_summary_to_stdout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    revision = template_hash(V2)
    result = run(monkeypatch, Cluster(*rollout_to(revision, "Succeeded")), "deploy", "checkout",
                 "--image", "app=checkout:v2", "--wait", "-o", "json",
                 "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # nothing else on stdout
    assert (summary["canary"], summary["result"]) == ("shop/checkout", "promoted")
    assert f"revision {revision}" in result.stderr
    assert "errors: Pass value=0.1 (ok)" in result.stderr
    assert ET.parse(tmp_path / "r.xml").getroot().get("failures") == "0"


@pytest.mark.parametrize(
    ("phase", "code", "verdict"), [("Succeeded", 0, "promoted"), ("RolledBack", 1, "rolled back")]
)
def test_wait_exits_by_the_verdict_on_the_current_revision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, phase: str, code: int, verdict: str
) -> None:
    """GitOps: Argo CD or Flux already changed the image; `wait` changes nothing."""
    kube = Cluster(*rollout_to(template_hash(V2), phase), template=V2)
    result = run(monkeypatch, kube, "wait", "checkout", "-o", "json",
                 "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code == code, result.output
    assert json.loads(result.stdout)["result"] == verdict
    assert ET.parse(tmp_path / "r.xml").getroot().get("failures") == str(code)
    assert kube.deployment["spec"]["template"] == V2


def test_deploy_wait_never_shows_the_previous_revisions_story(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revision = template_hash(V2)
    stale = {"phase": "RolledBack", "canaryRevision": "r1", "stableRevision": "old",
             "message": "rolled back revision r1",
             "analysis": [{"name": "errors", "verdict": "Fail", "value": "9", "reason": "bad"}]}
    result = run(monkeypatch, Cluster(stale, stale, *rollout_to(revision, "Succeeded")[1:]),
                 "deploy", "checkout", "--image", "app=checkout:v2", "--wait")
    assert result.exit_code == 0, result.output
    lines = [line.split(" ", 1)[1] for line in result.stderr.splitlines()]  # no clock
    assert lines[0] == f"deploy shop/checkout: revision {revision} (app=checkout:v2)"
    assert lines[1] == f"[{revision[:10]}] waiting for the controller to take up this revision"
    assert all(line.startswith(f"[{revision[:10]}]") for line in lines[1:]), lines
    assert "r1" not in result.stderr and "Fail" not in result.stderr


def test_a_revision_replaced_mid_rollout_is_said_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    revision = template_hash(V2)
    live = rollout_to(revision, "Succeeded")[1]
    newer = {**live, "canaryRevision": "r3", "message": "rolling out revision r3"}
    result = run(monkeypatch, Cluster(live, live, newer), "deploy", "checkout",
                 "--image", "app=checkout:v2", "--wait")
    assert result.exit_code == 1, result.output
    assert f"[{revision[:10]}] replaced mid-rollout by revision r3" in result.stderr


def test_wait_times_out_with_3(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(monkeypatch, Cluster({"phase": "Progressing"}, template=V2),
                 "wait", "checkout", "--timeout", "0s")
    assert result.exit_code == 3
    assert result.stdout.startswith("result: timed out after ")


def test_status_piped_prints_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(monkeypatch, Cluster(rollout_to("r2", "Succeeded")[1]), "status", "checkout")
    assert result.exit_code == 0, result.output
    assert f"  message  {LONG}\n" in result.stdout
    assert "  errors  Pass  -  value 0.1: ok\n" in result.stdout
    assert "\x1b[" not in result.stdout
    assert all(line == line.rstrip() for line in result.stdout.splitlines())


def test_status_watch_json_is_one_line_per_change_until_final(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = rollout_to("r2", "RolledBack")
    kube = Cluster(script[0], script[0], script[1], script[1], script[2])
    result = run(monkeypatch, kube, "status", "checkout", "-w", "-o", "json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == script


def test_status_watch_piped_prints_changes_and_metrics_until_final(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(monkeypatch, Cluster(*rollout_to("r2", "Succeeded")), "status", "checkout", "-w")
    assert result.exit_code == 0, result.output
    lines = [line.split(" ", 1)[1] for line in result.stdout.splitlines()]  # no time stamps
    assert lines[0] == "phase=Idle weight=0% step=-"
    assert lines[1].startswith("phase=Progressing weight=10% step=1/1 (setWeight 10) message=")
    assert LONG in lines[1]
    assert lines[2:] == ["  errors: Pass value=0.1 (ok)", "phase=Succeeded weight=0% step=- "
                         "message='done'"]


def test_list_all_namespaces_piped_prints_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(monkeypatch, Cluster(rollout_to("r2", "Succeeded")[1]), "list", "-A")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "PHASE", "WEIGHT", "STEP", "MESSAGE"]
    assert lines[1].startswith("shop       app-0  Progressing  10%     1/1 (setWeight 10)  ")
    assert lines[1].endswith(LONG)


def test_list_wide_adds_revisions_and_target(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(monkeypatch, Cluster(rollout_to("r2", "Succeeded")[1]), "list", "-o", "wide")
    header, first = (line.split() for line in result.stdout.splitlines()[:2])
    assert header == ["NAME", "PHASE", "WEIGHT", "STEP", "STABLE", "CANARY", "TARGET", "MESSAGE"]
    assert first[6:9] == ["-", "r2", "checkout"]  # the step is "1/1 (setWeight 10)"


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_list_json_and_yaml_are_a_list(monkeypatch: pytest.MonkeyPatch, output: str) -> None:
    result = run(monkeypatch, Cluster({"phase": "Idle"}), "list", "-o", output)
    doc = yaml.safe_load(result.stdout)  # YAML reads JSON too
    assert doc["kind"] == "List"
    assert [c["metadata"]["name"] for c in doc["items"]] == ["app-0", "app-1", "app-2"]


def test_list_of_an_empty_namespace_suggests_all_namespaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run(monkeypatch, Cluster({}), "list", "-n", "empty")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No Canaries found in namespace empty; to look in every namespace: canary list -A" \
        in result.stderr


def test_a_missing_canary_names_the_command_with_its_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from canary.kube.errors import NotFound

    class Empty(Cluster):
        def get_canary(self, ns: str, name: str) -> dict[str, Any]:
            raise NotFound(name)

    result = run(monkeypatch, Empty({}), "status", "ghost")
    assert result.exit_code == 2
    assert "Canary shop/ghost not found. List them with: canary list -n shop (or in every " \
        "namespace: canary list -A)" in result.stderr

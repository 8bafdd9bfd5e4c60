"""The Helm chart with the real helm v4: it lints, renders the very CRDs, RBAC and admission
policy that manifests/ applies and dashboards/canary.json for Grafana, and the API server
accepts what it renders.
(tests/e2e/test_image.py installs it and runs a rollout with the controller's image.)"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.sandbox.tools import helm_path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "canary"
DASHBOARD = REPO / "dashboards" / "canary.json"
SHARED_KINDS = {
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ServiceAccount",
}
HELM_LABELS = {"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"}
Obj = dict[str, Any]


def _run(*argv: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, input=input, timeout=120
    )
    assert out.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{out.stderr}"
    return out


def helm_template(namespace: str = "canary-system", *values: str) -> str:
    return _run(
        helm_path(), "template", "canary", CHART, "--namespace", namespace, "--include-crds",
        *(arg for value in values for arg in ("--set", value)),
    ).stdout


def objects(text: str) -> dict[tuple[str, str], Obj]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


def manifests() -> dict[tuple[str, str], Obj]:
    """What `kubectl apply -k manifests/` applies, read from the files themselves: kustomize
    re-emits folded scalars with extra blank lines (harmless in CEL, but not equal)."""
    kustomization = yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())
    # Only resources: were a transformer added, these files would no longer be the output.
    assert set(kustomization) == {"apiVersion", "kind", "resources"}, kustomization
    return {
        key: obj
        for name in kustomization["resources"]
        for key, obj in objects((REPO / "manifests" / name).read_text()).items()
    }


def without_helm_labels(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    labels = obj["metadata"].get("labels", {})
    for label in HELM_LABELS:
        labels.pop(label, None)
    return obj


def test_helm_lint_passes_strict_with_defaults_and_every_option() -> None:
    _run(helm_path(), "lint", "--strict", CHART)
    _run(
        helm_path(), "lint", "--strict", CHART, "--set", "replicas=2",
        "--set", "serviceMonitor.enabled=true", "--set", "watchNamespaces={shop,payments}",
        "--set", "podAnnotations.team=platform", "--set", "leaderElection=true",
        "--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.namespace=monitoring",
        "--set", "grafanaDashboard.annotations.grafana_folder=canary",
    )


def test_the_chart_renders_the_crds_rbac_and_admission_policy_of_manifests() -> None:
    kustomized = manifests()
    charted = objects(helm_template())
    shared = sorted(k for k in kustomized if k[0] in SHARED_KINDS)
    assert sorted(k for k in charted if k[0] in SHARED_KINDS) == shared
    for key in shared:
        assert without_helm_labels(charted[key]) == kustomized[key], (
            f"{key[0]} {key[1]} differs between charts/canary and manifests/: change both"
        )


def test_the_charts_deployment_runs_the_pod_manifests_describes() -> None:
    """Probes, ports, resources, security and volumes; the arguments come from values."""
    kustomized = manifests()
    charted = objects(helm_template("canary-system", "leaderElection=true"))
    key = ("Deployment", "canary-controller")
    ours, theirs = charted[key]["spec"]["template"], kustomized[key]["spec"]["template"]
    assert ours["metadata"]["annotations"] == theirs["metadata"]["annotations"]
    for field in ("securityContext", "serviceAccountName", "terminationGracePeriodSeconds",
                  "volumes"):
        assert ours["spec"][field] == theirs["spec"][field], field
    [mine], [base] = ours["spec"]["containers"], theirs["spec"]["containers"]
    for field in ("command", "ports", "livenessProbe", "readinessProbe", "resources",
                  "securityContext", "volumeMounts", "image"):
        assert mine[field] == base[field], field
    assert "--leader-elect" in mine["args"] and "--leader-elect" in base["args"]


@pytest.mark.parametrize(
    ("values", "leader_elect", "strategy"),
    [([], False, "Recreate"), (["replicas=2"], True, None), (["leaderElection=true"], True, None)],
)
def test_leader_election_follows_replicas(
    values: list[str], leader_elect: bool, strategy: str | None
) -> None:
    deployment = objects(helm_template("canary-system", *values))[
        ("Deployment", "canary-controller")
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert ("--leader-elect" in args) == leader_elect
    assert deployment["spec"].get("strategy", {}).get("type") == strategy


def test_watched_namespaces_prometheus_and_notifications_become_arguments() -> None:
    deployment = objects(
        helm_template(
            "canary-system", "watchNamespaces={shop,payments}", "prometheus.url=http://prom:9090",
            "notifications.configMap=",
        )
    )[("Deployment", "canary-controller")]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--prometheus-url") + 1] == "http://prom:9090"
    assert args[args.index("--notifications-configmap") + 1] == ""  # off
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["shop", "payments"]


def test_the_service_monitor_is_off_by_default_and_finds_the_controller_when_on() -> None:
    assert not any(k[0] == "ServiceMonitor" for k in objects(helm_template()))
    rendered = objects(
        helm_template("canary-system", "serviceMonitor.enabled=true",
                      "serviceMonitor.labels.release=prom")
    )
    monitor = rendered[("ServiceMonitor", "canary-controller")]
    service = rendered[("Service", "canary-controller-metrics")]
    pod = rendered[("Deployment", "canary-controller")]["spec"]["template"]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["honorLabels"]) == (
        "health", "/metrics", True
    )


def test_the_grafana_dashboard_is_off_by_default_and_the_dashboards_own_json_when_on() -> None:
    assert not any(k[0] == "ConfigMap" for k in objects(helm_template()))
    config_map = objects(helm_template("canary-system", "grafanaDashboard.enabled=true"))[
        ("ConfigMap", "canary-dashboard")
    ]
    assert config_map["metadata"]["namespace"] == "canary-system"
    # The label kube-prometheus-stack's Grafana sidecar selects dashboards by.
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "annotations" not in config_map["metadata"]
    [(key, text)] = config_map["data"].items()
    assert key.endswith(".json")
    assert json.loads(text) == json.loads(DASHBOARD.read_text())


def test_the_grafana_dashboards_namespace_labels_and_annotations_come_from_values() -> None:
    config_map = objects(
        helm_template(
            "canary-system", "grafanaDashboard.enabled=true",
            "grafanaDashboard.namespace=monitoring", "grafanaDashboard.labelValue=true",
            "grafanaDashboard.labels.team=platform", "grafanaDashboard.labels.tier=1",
            "grafanaDashboard.annotations.grafana_folder=Delivery",
            # Not the chart's own labels: Helm and selectors rely on them.
            "grafanaDashboard.labels.app\\.kubernetes\\.io/name=other",
        )
    )[("ConfigMap", "canary-dashboard")]
    metadata = config_map["metadata"]
    assert metadata["namespace"] == "monitoring"
    labels = metadata["labels"]
    # Label values are strings, whatever --set made of them.
    assert {"grafana_dashboard": "true", "team": "platform", "tier": "1"}.items() <= labels.items()
    assert labels["app.kubernetes.io/name"] == "canary"
    assert set(labels) - {"grafana_dashboard", "team", "tier"} == {
        "app.kubernetes.io/name", "app.kubernetes.io/part-of", *HELM_LABELS
    }
    assert metadata["annotations"] == {"grafana_folder": "Delivery"}
    # Without a sidecar label (a Grafana that selects by another one, given in labels).
    labels = objects(
        helm_template("canary-system", "grafanaDashboard.enabled=true", "grafanaDashboard.label=",
                      "grafanaDashboard.labels.dashboards=grafana")
    )[("ConfigMap", "canary-dashboard")]["metadata"]["labels"]
    assert "grafana_dashboard" not in labels and labels["dashboards"] == "grafana"


@pytest.mark.parametrize("namespace", ["canary-system", "platform-canary"])
def test_the_api_server_accepts_what_the_chart_renders(kubectl, namespace: str) -> None:
    """`helm template | kubectl apply --dry-run=server`, into a namespace that enforces the
    restricted Pod Security Standard, as NOTES.txt recommends."""
    kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted",
                       "pod-security.kubernetes.io/warn": "restricted"},
        },
    }))
    rendered = helm_template(
        namespace, "replicas=2", "watchNamespaces={shop}", "grafanaDashboard.enabled=true"
    )
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "PodSecurity" not in out.stderr, out.stderr
    policy = objects(rendered)[("ValidatingAdmissionPolicy", "canary-requests")]
    controller = f"system:serviceaccount:{namespace}:canary-controller"
    assert any(controller in v["expression"] for v in policy["spec"]["variables"])
    assert ("ConfigMap", "canary-dashboard") in objects(rendered)

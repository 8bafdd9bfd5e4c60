"""One demo_app process (canary.sandbox.demo_app) standing for all of a Deployment's pods,
on a free loopback port, configured from the pod template's first container:

    env ERROR_RATE    fraction of requests answered 500        (default 0)
    env LATENCY_MS    median latency in milliseconds           (default 20)
    env ERRORS_WHEN_FILE  ERROR_RATE applies only while this file exists (a regression
                      that starts late: a cache that fills, a job at :00)
    image tag         the version it reports (demo/checkout:v2 -> v2; no tag -> latest)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canary.api import naming
from canary.kube.client import Obj
from canary.sandbox import procs

DEFAULT_LATENCY_MS = "20"
DEFAULT_ERROR_RATE = "0"
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class AppSettings:
    version: str
    error_rate: str
    latency_ms: str
    errors_when_file: str = ""

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> AppSettings:
        containers = (template.get("spec") or {}).get("containers") or [{}]
        first = containers[0]
        env = {e.get("name"): e.get("value") for e in first.get("env") or [] if e.get("name")}
        return cls(
            version=image_version(first.get("image") or ""),
            error_rate=str(env.get("ERROR_RATE") or DEFAULT_ERROR_RATE),
            latency_ms=str(env.get("LATENCY_MS") or DEFAULT_LATENCY_MS),
            errors_when_file=str(env.get("ERRORS_WHEN_FILE") or ""),
        )


def image_version(image: str) -> str:
    """demo/checkout:v2 -> v2; registry:5000/checkout -> latest; x@sha256:ab.. -> sha256:ab.."""
    if "@" in image:
        return image.split("@", 1)[1][:19]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _variant(dep: Obj) -> str:
    labels = dep["metadata"].get("labels") or {}
    if naming.LABEL_NAME not in labels:
        return "target"
    tpl_labels = ((dep["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    variant = labels.get(naming.LABEL_VARIANT) or tpl_labels.get(naming.LABEL_VARIANT)
    if variant in ("stable", "canary"):
        return variant
    return "canary" if dep["metadata"]["name"].endswith("-canary") else "stable"


def _service(dep: Obj) -> str:
    """The Canary name N: from the label, or the user's Deployment's own name."""
    meta = dep["metadata"]
    return str((meta.get("labels") or {}).get(naming.LABEL_NAME) or meta["name"])


@dataclass
class AppProcess:
    """One demo_app process standing for a Deployment's pods at one pod template."""

    deployment: str
    service: str  # the Canary name N
    variant: str  # stable | canary | target
    template_hash: str
    settings: AppSettings
    port: int
    proc: procs.Managed
    started: float
    healthy: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc.proc.poll() is None



def start(
    dep: Obj, digest: str, namespace: str, workdir: Path, clock: Callable[[], float]
) -> AppProcess:
    """Start the process for `dep` at the pod template whose hash is `digest`."""
    name = dep["metadata"]["name"]
    settings = AppSettings.from_template(dep["spec"].get("template") or {})
    port = procs.free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
    proc = procs.start(
        f"app-{namespace}-{name}-{digest[:6]}",
        [sys.executable, "-m", "canary.sandbox.demo_app", "--port", str(port),
         "--version", settings.version, "--error-rate", settings.error_rate,
         "--latency-ms", settings.latency_ms,
         *(["--errors-when-file", settings.errors_when_file]
           if settings.errors_when_file else [])],
        workdir,
        tie_to_parent=True,
        env=env,
    )
    return AppProcess(
        deployment=name, service=_service(dep), variant=_variant(dep),
        template_hash=digest, settings=settings, port=port, proc=proc,
        started=clock())

"""Build the local control plane (kube-apiserver, etcd) from the Go module proxy.

The binaries land in the cache directory keyed by version and are built only
when missing, so the first run pays the cold build once per machine. Each
build happens in a throwaway Go module under the cache, never in the repo.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from canary.sandbox.paths import bin_dir, cache_dir

KUBE_VERSION = "v1.36.3"
# Staging repos (k8s.io/api, apimachinery, ...) are published as v0.<minor>.<patch>.
STAGING_VERSION = "v0" + KUBE_VERSION[2:]
ETCD_VERSION = "v3.6.16"

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A build step failed; the message carries the fix or the log tail."""


@dataclass(frozen=True)
class BuildReport:
    name: str
    path: Path
    seconds: float
    peak_rss_mib: float
    built: bool


def kube_apiserver_path() -> Path:
    return bin_dir() / f"kube-apiserver-{KUBE_VERSION}"


def etcd_path() -> Path:
    return bin_dir() / f"etcd-{ETCD_VERSION}"


def require_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "Go is not installed, and it is needed once to build kube-apiserver and etcd.\n"
            "Fix: apt-get install -y golang-go (Go >= 1.26), or put your Go on PATH."
        )
    return go


def _run_logged(
    cmd: list[str], cwd: Path, log: Path, env: dict[str, str], progress: Progress, label: str
) -> None:
    """Run a Go command, streaming a progress line every few packages, keeping a log."""
    started = time.monotonic()
    count = 0
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                fh.write(line)
                count += 1
                if count % 50 == 0:
                    progress(
                        f"  {label}: {count} lines of go output, "
                        f"{time.monotonic() - started:.0f}s, last: {line.strip()[:70]}"
                    )
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if rc != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        hint = ""
        if "dial tcp" in tail or "proxy.golang.org" in tail:
            hint = (
                "\nThe Go module proxy could not be reached. Check the network, "
                "or set GOPROXY to a proxy you can reach."
            )
        raise BuildError(f"{label} failed (exit {rc}); last lines of {log}:\n{tail}{hint}")


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-buildvcs=false")
    return env


def _kubernetes_staging_modules(go: str, workdir: Path, env: dict[str, str]) -> list[str]:
    """Read k8s.io/kubernetes' own go.mod to list the staging modules it replaces locally."""
    out = subprocess.run(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{KUBE_VERSION}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise BuildError(
            f"go mod download k8s.io/kubernetes@{KUBE_VERSION} failed:\n"
            f"{out.stdout[-2000:]}{out.stderr[-2000:]}"
        )
    gomod = Path(json.loads(out.stdout)["GoMod"]).read_text()
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", gomod, re.M)))


def _write_module(workdir: Path, module: str, imports: list[str], go_mod_extra: str) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "go.mod").write_text(f"module {module}\n\ngo 1.26\n{go_mod_extra}")
    body = "\n".join(f'\t_ "{imp}"' for imp in imports)
    (workdir / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{body}\n)\n")


def _measure(fn: Callable[[], None]) -> tuple[float, float]:
    started = time.monotonic()
    fn()
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return time.monotonic() - started, peak_kib / 1024


def _build(
    name: str,
    version: str,
    target: Path,
    pkg: str,
    progress: Progress,
    *,
    requirements: Callable[[str, Path, dict[str, str]], str],
    ldflags: str,
    compile_time: str,
) -> BuildReport:
    """Build `pkg` into `target` in a throwaway module; `requirements` gives go.mod's tail."""
    if target.exists():
        return BuildReport(name, target, 0.0, 0.0, built=False)
    go, env = require_go(), go_env()
    workdir = cache_dir() / "build" / f"{name}-{version}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    log = workdir / "build.log"

    def run() -> None:
        progress(f"{name} {version}: resolving modules")
        _write_module(workdir, "canary.local/build", [pkg], requirements(go, workdir, env))
        _run_logged([go, "mod", "tidy"], workdir, log, env, progress, f"go mod tidy ({name})")
        progress(f"{name} {version}: compiling (first time: {compile_time} on 2 cores)")
        tmp = target.with_suffix(".tmp")
        _run_logged(
            [go, "build", "-v", "-trimpath", "-ldflags", f"-s -w {ldflags}", "-o", str(tmp), pkg],
            workdir,
            log,
            env,
            progress,
            f"build {name}",
        )
        tmp.rename(target)

    seconds, peak = _measure(run)
    return BuildReport(name, target, seconds, peak, built=True)


def _kubernetes_requirements(go: str, workdir: Path, env: dict[str, str]) -> str:
    """Pin k8s.io/kubernetes and map each staging module to its published release."""
    (workdir / "go.mod").write_text("module canary.local/build\n\ngo 1.26\n")
    staging = _kubernetes_staging_modules(go, workdir, env)
    replaces = "".join(f"\t{m} => {m} {STAGING_VERSION}\n" for m in staging)
    return f"\nrequire k8s.io/kubernetes {KUBE_VERSION}\n\nreplace (\n{replaces})\n"


def _kubernetes_version_ldflags() -> str:
    """What the release build stamps, so /version reports the real version."""
    major, minor = KUBE_VERSION[1:].split(".")[:2]
    stamp = {
        "gitVersion": KUBE_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "gitCommit": "0" * 40,
        "buildDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return " ".join(
        f"-X {prefix}.{k}={v}"
        for prefix in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for k, v in stamp.items()
    )


def build_kube_apiserver(progress: Progress) -> BuildReport:
    return _build(
        "kube-apiserver",
        KUBE_VERSION,
        kube_apiserver_path(),
        "k8s.io/kubernetes/cmd/kube-apiserver",
        progress,
        requirements=_kubernetes_requirements,
        ldflags=_kubernetes_version_ldflags(),
        compile_time="about 5 minutes",
    )


def build_etcd(progress: Progress) -> BuildReport:
    pkg = "go.etcd.io/etcd/server/v3"
    return _build(
        "etcd",
        ETCD_VERSION,
        etcd_path(),
        pkg,
        progress,
        requirements=lambda go, workdir, env: f"\nrequire {pkg} {ETCD_VERSION}\n",
        ldflags="",
        compile_time="about 1 minute",
    )


def build_all(
    progress: Progress = lambda m: print(m, file=sys.stderr, flush=True),
) -> list[BuildReport]:
    bin_dir().mkdir(parents=True, exist_ok=True)
    return [build_etcd(progress), build_kube_apiserver(progress)]


if __name__ == "__main__":
    try:
        for report in build_all():
            state = "built" if report.built else "cached"
            print(
                f"{report.name}: {state} {report.path} "
                f"({report.seconds:.0f}s, peak RSS {report.peak_rss_mib:.0f} MiB)"
            )
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)

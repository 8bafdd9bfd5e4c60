"""`canary sandbox ...` sets up, starts, inspects and stops the local control plane;
`canary demo` runs a bad and a good rollout on it."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from canary.cli.exits import EXIT_FAILED, EXIT_OK, fail
from canary.cli.render import log_line
from canary.errors import CanaryError

StateDir = typer.Option(
    None, "--dir", metavar="DIR", help="State directory (default: ~/.cache/canary/sandbox)."
)


def register(app: typer.Typer) -> None:
    app.command()(demo)
    sandbox = typer.Typer(
        help="A local Kubernetes control plane (real etcd + kube-apiserver) and Prometheus."
        "\n\nTypical use: `canary sandbox setup` once, then `canary sandbox up`, "
        "`eval $(canary sandbox env)`, and `canary sandbox down` when done.",
        no_args_is_help=True,
    )
    for command in (setup, up, env, down):
        sandbox.command()(command)
    app.add_typer(sandbox, name="sandbox")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _info_path(state: Path) -> Path:
    return state / "sandbox.json"


def setup() -> None:
    """Install Prometheus, unpack kubectl and helm, build kube-apiserver and etcd, and
    download the Gateway API and Istio CRDs (all cached under ~/.cache/canary)."""
    from canary.sandbox import crds
    from canary.sandbox.build import BuildError, build_all
    from canary.sandbox.tools import ToolError, ensure_kubectl_and_helm, ensure_prometheus

    try:
        ensure_prometheus(_say)
        ensure_kubectl_and_helm(_say)
        for path in crds.ensure_all(_say):
            _say(f"CRDs: {path}")
        for report in build_all(_say):
            state = "built" if report.built else "cached"
            _say(
                f"{report.name}: {state} at {report.path}"
                + (
                    f" in {report.seconds:.0f}s, peak RSS {report.peak_rss_mib:.0f} MiB"
                    if report.built
                    else ""
                )
            )
    except (BuildError, ToolError) as exc:
        raise fail(str(exc)) from None


def up(state: Path | None = StateDir) -> None:
    """Start etcd, kube-apiserver and Prometheus in the background; print how to use them."""
    from canary.sandbox.controlplane import ControlPlane, ControlPlaneError
    from canary.sandbox.paths import state_dir
    from canary.sandbox.prometheus import Prometheus, PrometheusError

    state = state or state_dir()
    down(state)
    started = time.monotonic()
    plane = ControlPlane(state, tie_to_parent=False)
    prom = Prometheus(state / "prometheus", tie_to_parent=False)
    try:
        plane.start(_say)
        prom.start(_say)
    except (ControlPlaneError, PrometheusError) as exc:
        plane.stop()
        prom.stop()
        raise fail(str(exc), EXIT_FAILED) from None
    info = {
        "server": plane.server,
        "kubeconfig": str(plane.kubeconfig),
        "prometheus": prom.url,
        "version": plane.version,
        "etcd": plane.etcd_version,
    }
    _info_path(state).write_text(json.dumps(info, indent=2))
    _say(
        f"sandbox up in {time.monotonic() - started:.1f}s: kube-apiserver {plane.version} "
        f"at {plane.server}, prometheus at {prom.url}"
    )
    env(state)


def env(state: Path | None = StateDir) -> None:
    """Print shell exports for the running sandbox: eval $(canary sandbox env)."""
    from canary.sandbox.paths import bin_dir, state_dir

    state = state or state_dir()
    try:
        info = json.loads(_info_path(state).read_text())
    except OSError:
        raise fail("no sandbox is running. Fix: canary sandbox up", EXIT_FAILED) from None
    print(f"export KUBECONFIG={info['kubeconfig']}")
    print(f"export CANARY_PROMETHEUS_URL={info['prometheus']}")
    print(f"export PATH={bin_dir()}:$PATH")


def down(state: Path | None = StateDir) -> None:
    """Stop everything `up` started (also cleans up after a crashed run)."""
    from canary.sandbox import procs
    from canary.sandbox.paths import state_dir

    state = state or state_dir()
    for pidfile in [*state.glob("run/*.pid"), *state.glob("prometheus/*.pid")]:
        procs.reap_leftover(pidfile)
    _info_path(state).unlink(missing_ok=True)
    shutil.rmtree(state / "etcd-data", ignore_errors=True)


def demo(
    bad_error_rate: Annotated[
        float, typer.Option(metavar="FRACTION", help="Fraction of requests the bad canary fails.")
    ] = 0.2,
    rps: Annotated[
        float, typer.Option(metavar="RPS", help="Requests per second from the load generator.")
    ] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the demo on a local control plane: a bad rollout (must roll back), then a good
    one (must promote). Exits 0 only when both outcomes are right."""
    from canary.sandbox import demo as demo_mod

    try:
        outcomes = demo_mod.run(log_line, bad_error_rate=bad_error_rate, rps=rps)
    except (demo_mod.DemoError, CanaryError, RuntimeError) as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    print(demo_mod.as_json(outcomes) if json_out else demo_mod.summary(outcomes))
    raise typer.Exit(EXIT_OK if all(o.right for o in outcomes) else EXIT_FAILED)

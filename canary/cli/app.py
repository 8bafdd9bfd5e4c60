"""The `canary` command (also `kubectl canary`): a thin Typer layer that parses, calls, prints.

Exit codes: 0 success / promoted, 1 rolled back or failed, 2 usage or config error,
3 timed out.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from canary.api import naming
from canary.api.durations import parse_duration
from canary.api.models import RequestAction, RequestAnnotation
from canary.cli import render
from canary.cli.analysis import register as register_analysis
from canary.cli.simulate import register as register_simulate
from canary.engine.clock import to_iso
from canary.errors import CanaryError, PermanentError
from canary.kube.client import Kube, NotFound
from canary.sandbox.commands import app as sandbox_app

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3
TERMINAL_BAD = {"RolledBack", "Failed"}

app = typer.Typer(
    help="Canary rollouts for Kubernetes: step traffic to a new version, judge it from "
    "Prometheus, promote it or roll it back on its own.\n\n"
    "\b\n"
    "CI:         canary deploy checkout --image app=registry/checkout:v2 --wait --timeout 30m\n"
    "Engineers:  canary status checkout --watch\n"
    "            canary promote checkout | canary abort checkout\n"
    "Platform:   canary lint analysis_templates/ my-canary.yaml\n"
    "            canary analyze --template http-error-rate --arg service=checkout\n"
    "Try it:     canary demo\n\n"
    "Exit codes: 0 success/promoted, 1 rolled back or failed, 2 usage or config error, "
    "3 timed out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(sandbox_app, name="sandbox")
register_analysis(app)
register_simulate(app)

out = Console(highlight=False)

Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        envvar="KUBECONFIG",
        help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config).",
    ),
]
Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the Canary.")]
Name = Annotated[str, typer.Argument(help="Name of the Canary.")]


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)  # never wrapped: CI logs are grepped
    return typer.Exit(code)


def _kube(kubeconfig: Path | None) -> Kube:
    # urllib3 warns on every retry; the one error line below says it all.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        kube = Kube(kubeconfig)
        kube.require_crds()
        return kube
    except CanaryError as exc:
        raise _fail(str(exc)) from None


def _get(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    try:
        return kube.get_canary(ns, name)
    except NotFound:
        raise _fail(f"Canary {ns}/{name} not found. List them with: canary list -n {ns}") from None
    except CanaryError as exc:
        raise _fail(str(exc)) from None


# ----------------------------------------------------------------- controller


@app.command()
def controller(
    kubeconfig: Kubeconfig = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace", "-n", help="Watch only these namespaces (repeatable; default: all)."
        ),
    ] = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            "--prometheus-url",
            envvar="CANARY_PROMETHEUS_URL",
            help="Prometheus for metrics whose template sets no address.",
        ),
    ] = None,
    log_format: Annotated[str, typer.Option(help="text or json")] = "text",
    workers: Annotated[int, typer.Option(min=1, help="Canaries reconciled in parallel.")] = 4,
    leader_elect: Annotated[
        bool, typer.Option(help="Run only while holding a Lease, so several replicas can stand by.")
    ] = False,
    leader_namespace: Annotated[
        str, typer.Option(envvar="POD_NAMESPACE", help="Namespace of the leader-election Lease.")
    ] = "canary-system",
    leader_election_id: Annotated[
        str,
        typer.Option(
            help="Name of the Lease. Shards (controllers given different --namespace sets) "
            "each need their own, so that each shard has one active replica."
        ),
    ] = "canary-controller",
    health_port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            envvar="CANARY_HEALTH_PORT",
            help="Serve /healthz (liveness), /readyz (readiness) and /metrics (Prometheus) on "
            "this port; 0: off.",
        ),
    ] = 8081,
) -> None:
    """Run the controller: watch Canaries and move their traffic until promoted or rolled back."""
    # Imported here, not at the top: the other commands start faster without them.
    from prometheus_client import REGISTRY

    from canary.controller.logs import configure_logging
    from canary.controller.reconciler import Controller
    from canary.controller.telemetry import Metrics

    if log_format not in ("text", "json"):
        raise _fail(f"--log-format must be text or json, not {log_format!r}")
    configure_logging(log_format)
    kube = _kube(kubeconfig)
    # The default registry also holds the client library's process_* and python_* metrics.
    metrics = Metrics(REGISTRY)
    kube.on_request(metrics.kube_request)
    elector = None
    if leader_elect:
        from canary.controller.leader import LeaderElector

        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        elector = LeaderElector(kube, leader_namespace, identity, name=leader_election_id)
    ctl = Controller(
        kube,
        prometheus_url=prometheus_url,
        namespaces=namespace or [],
        workers=workers,
        elector=elector,
        metrics=metrics,
    )
    if health_port:
        from canary.controller.health import serve

        try:
            serve(ctl.health, health_port, metrics=metrics.exposition)
        except OSError as exc:
            message = f"--health-port {health_port}: {exc.strerror} (choose a free port, or 0)"
            raise _fail(message) from None
    try:
        ctl.run()
    except KeyboardInterrupt:
        ctl.stop()
    except PermanentError as exc:
        raise _fail(str(exc)) from None
    except CanaryError as exc:  # e.g. lost leadership: exit so the restart starts clean
        raise _fail(str(exc), EXIT_FAILED) from None


# ----------------------------------------------------------------- deploy (CI)


def _parse_images(images: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in images:
        container, sep, image = item.partition("=")
        if not sep or not container or not image:
            raise _fail(f"--image {item!r}: write CONTAINER=IMAGE, e.g. app=registry/checkout:v2")
        pairs.append((container, image))
    return pairs


def _set_images(kube: Kube, ns: str, deployment: str, images: list[tuple[str, str]]) -> str:
    from canary.controller.workloads import template_hash

    dep = kube.get_deployment(ns, deployment)
    if dep is None:
        raise _fail(f"Deployment {ns}/{deployment} (the Canary's spec.targetRef) not found")
    containers = dep["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    for container, image in images:
        item = f"{container}={image}"
        if container not in names:
            raise _fail(
                f"--image {item!r}: Deployment {deployment} has no container "
                f"{container!r} (containers: {', '.join(names)})"
            )
        next(c for c in containers if c["name"] == container)["image"] = image
    dep = kube.replace_deployment(ns, dep)
    return template_hash(dep["spec"]["template"])


@app.command()
def deploy(
    name: Name,
    image: Annotated[
        list[str],
        typer.Option(
            "--image",
            metavar="CONTAINER=IMAGE",
            help="Image to roll out, e.g. app=registry/checkout:v2 (repeatable).",
        ),
    ],
    namespace: Namespace = "default",
    wait: Annotated[
        bool,
        typer.Option(
            help="Wait for the verdict: exit 0 promoted, 1 rolled back or failed, "
            "2 invalid Canary, 3 timed out."
        ),
    ] = False,
    timeout: Annotated[
        str,
        typer.Option(metavar="DURATION", help="With --wait: give up after this long (30s, 1h)."),
    ] = "30m",
    output: Annotated[
        str, typer.Option("--output", "-o", help="text or json (a final summary)")
    ] = "text",
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML report here.")] = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Roll out a new image through the Canary (CI's entry point).

    \b
    Example (a CI job):
      canary deploy checkout -n shop --image app=registry/checkout:v2 --wait --timeout 30m \\
          --output json --junit canary-report.xml

    It sets the image on the Canary's target Deployment (what `kubectl set image` does);
    the controller then rolls the new revision out step by step. With --wait it prints one
    line per change and exits 0 when promoted, 1 when rolled back or failed, 2 on a usage
    or config error, 3 on timeout.
    """
    try:
        limit = parse_duration(timeout)
    except ValueError as exc:
        raise _fail(f"--timeout: {exc}") from None
    if output not in ("text", "json"):
        raise _fail(f"--output must be text or json, not {output!r}")
    images = _parse_images(image)
    kube = _kube(kubeconfig)
    canary = _get(kube, namespace, name)
    started = time.monotonic()
    revision = _set_images(kube, namespace, canary["spec"]["targetRef"]["name"], images)
    _line(f"deploy {namespace}/{name}: revision {revision} ({', '.join(image)})")
    if not wait:
        return
    code, final = _wait_for_verdict(kube, namespace, name, revision, limit)
    summary = {
        "canary": f"{namespace}/{name}",
        "revision": revision,
        "result": {0: "promoted", 1: "rolled back", 2: "invalid", 3: "timed out"}[code],
        "phase": (final.get("status") or {}).get("phase"),
        "message": (final.get("status") or {}).get("message"),
        "seconds": round(time.monotonic() - started, 1),
        "analysis": (final.get("status") or {}).get("analysis", []),
    }
    if output == "json":
        print(json.dumps(summary, indent=2))
    else:
        _line(f"result: {summary['result']} after {summary['seconds']}s: {summary['message']}")
    if junit:
        from canary.cli.junit import write_report

        write_report(junit, summary)
    raise typer.Exit(code)


def _line(text: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {text}", flush=True)


def _wait_for_verdict(
    kube: Kube, ns: str, name: str, revision: str, limit: float
) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + limit
    last, seen_metrics = "", set()
    canary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            canary = kube.get_canary(ns, name)
        except CanaryError as exc:
            _line(f"warning: {exc}")
            time.sleep(2)
            continue
        status = canary.get("status") or {}
        line = render.summary_line(canary)
        if line != last:
            _line(line)
            last = line
        for m in render.metric_lines(canary):
            if m not in seen_metrics:
                seen_metrics.add(m)
                _line(f"  {m}")
        phase = status.get("phase")
        if status.get("stableRevision") == revision and phase in ("Succeeded", "Idle"):
            return EXIT_OK, canary  # promoted, or it already was the stable revision
        invalid = [
            c
            for c in status.get("conditions") or []
            if c.get("type") == "Invalid" and c.get("status") == "True"
        ]
        if invalid:
            _line(f"the Canary is invalid, fix it first: {invalid[0].get('message')}")
            return EXIT_USAGE, canary
        if status.get("canaryRevision") == revision and phase in TERMINAL_BAD:
            return EXIT_FAILED, canary
        time.sleep(1)
    return EXIT_TIMEOUT, canary


# ----------------------------------------------------------------- inspection


@app.command()
def status(
    name: Name,
    namespace: Namespace = "default",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep showing changes.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="json or yaml")] = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Show a Canary's phase, step, weight, and each metric's last verdict with its reason."""
    if output not in (None, "json", "yaml"):
        raise _fail(f"--output must be json or yaml, not {output!r}")
    kube = _kube(kubeconfig)
    last = None
    while True:
        canary = _get(kube, namespace, name)
        if output:
            text = (
                json.dumps(canary.get("status", {}), indent=2)
                if output == "json"
                else yaml.safe_dump(canary.get("status", {}), sort_keys=False)
            )
            print(text)
        elif not watch or out.is_terminal:
            if watch:
                out.clear()
            events = kube.list_events(namespace, name)
            render.status_view(out, canary, events)
        else:
            line = render.summary_line(canary)
            if line != last:
                _line(line)
                last = line
        if not watch:
            return
        time.sleep(1)


@app.command("list")
def list_(
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
    kubeconfig: Kubeconfig = None,
) -> None:
    """List Canaries with their phase, weight and step."""
    kube = _kube(kubeconfig)
    try:
        items, _ = kube.list_canaries(None if all_namespaces else (namespace or "default"))
    except CanaryError as exc:
        raise _fail(str(exc)) from None
    if not items:
        out.print("no canaries found")
        return
    render.list_table(out, items)


# ----------------------------------------------------------------- steering


def _request(
    name: str,
    namespace: str,
    action: RequestAction,
    kubeconfig: Path | None,
    full: bool = False,
) -> None:
    """Ask the controller to act. Spec is left alone (Git owns it): the request is an
    annotation the controller consumes once, and the Events keep who asked and when. The
    user is the one the API server authenticates, which its admission policy checks."""
    kube = _kube(kubeconfig)
    _get(kube, namespace, name)
    try:
        user = kube.whoami()
    except CanaryError as exc:
        raise _fail(str(exc)) from None
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        req = RequestAnnotation(
            id=uuid.uuid4().hex[:12], action=action, full=full, user=user, at=at.isoformat()
        )
    except ValidationError:
        raise _fail(
            f"the API server knows you as {user!r}, which a request cannot carry (at most 256 "
            "characters, no quotes, backslashes or control characters). Fix: use a "
            "kubeconfig user with a plainer name"
        ) from None
    kube.annotate_canary(namespace, name, {naming.ANNOTATION_REQUEST: req.model_dump_json()})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        canary = kube.get_canary(namespace, name)
        if (canary.get("status") or {}).get("lastRequestId") == req.id:
            # The controller names the request in its Event, applied or ignored.
            marker = f"{action} requested by {user} at {to_iso(at)}"
            ignored = [
                e.get("note", "")
                for e in kube.list_events(namespace, name)
                if e.get("reason") == "RequestIgnored" and marker in e.get("note", "")
            ]
            if ignored:
                print(f"{action} {namespace}/{name}: not applied: {ignored[-1]}")
                raise typer.Exit(EXIT_FAILED)
            print(f"{action} {namespace}/{name}: done. {render.summary_line(canary)}")
            return
        time.sleep(0.3)
    print(
        f"{action} {namespace}/{name}: requested, but the controller has not picked it up "
        "within 15s (is `canary controller` running for this namespace?); it will apply "
        "the request when it does."
    )
    raise typer.Exit(EXIT_TIMEOUT)


@app.command()
def promote(
    name: Name,
    namespace: Namespace = "default",
    full: Annotated[bool, typer.Option(help="Skip all remaining steps and analysis.")] = False,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Move past the current step (or a pause); --full promotes right away."""
    _request(name, namespace, "promote", kubeconfig, full=full)


@app.command()
def abort(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Roll back now: all traffic to stable in one step, canary scaled down."""
    _request(name, namespace, "abort", kubeconfig)


@app.command()
def pause(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Hold the rollout at its current weight until `canary resume`."""
    _request(name, namespace, "pause", kubeconfig)


@app.command()
def resume(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Continue a paused rollout from where it stopped."""
    _request(name, namespace, "resume", kubeconfig)


@app.command()
def retry(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Start a rolled-back or failed rollout again from step 1 with the same revision."""
    _request(name, namespace, "retry", kubeconfig)


@app.command()
def demo(
    bad_error_rate: Annotated[
        float, typer.Option(help="Fraction of requests the bad canary fails.")
    ] = 0.2,
    rps: Annotated[float, typer.Option(help="Requests per second from the load generator.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the demo on a local control plane: a bad rollout (must roll back), then a good
    one (must promote). Exits 0 only when both outcomes are right."""
    from canary.sandbox import demo as demo_mod

    try:
        outcomes = demo_mod.run(_line, bad_error_rate=bad_error_rate, rps=rps)
    except (demo_mod.DemoError, CanaryError, RuntimeError) as exc:
        raise _fail(str(exc), EXIT_FAILED) from None
    print(demo_mod.as_json(outcomes) if json_out else demo_mod.summary(outcomes))
    raise typer.Exit(EXIT_OK if all(o.right for o in outcomes) else EXIT_FAILED)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except PermanentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except CanaryError as exc:  # transient: the API server or network; worth a retry
        print(f"error: {exc} (try again)", file=sys.stderr)
        sys.exit(EXIT_FAILED)

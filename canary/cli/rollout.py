"""The rollout verbs: `deploy` for CI; `status` and `list` to look; `promote`, `abort`,
`pause`, `resume` and `retry` to steer a rollout through the controller."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from canary.api.durations import parse_duration
from canary.cli import render
from canary.cli.cluster import Kubeconfig, connect
from canary.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, fail
from canary.cli.render import log_line
from canary.errors import CanaryError

if TYPE_CHECKING:  # the Kubernetes client and pydantic models load when a command runs
    from canary.api.request_codec import RequestAction
    from canary.kube.client import Kube

TERMINAL_BAD = {"RolledBack", "Failed"}
RESULTS = {
    EXIT_OK: "promoted",
    EXIT_FAILED: "rolled back",
    EXIT_USAGE: "invalid",
    EXIT_TIMEOUT: "timed out",
}

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the Canary.")]
Name = Annotated[str, typer.Argument(help="Name of the Canary.")]


def register(app: typer.Typer) -> None:
    app.command()(deploy)
    app.command()(status)
    app.command("list")(list_)
    for verb in (promote, abort, pause, resume, retry):
        app.command()(verb)


def _get(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    from canary.kube.client import NotFound

    try:
        return kube.get_canary(ns, name)
    except NotFound:
        raise fail(f"Canary {ns}/{name} not found. List them with: canary list -n {ns}") from None
    except CanaryError as exc:
        raise fail(str(exc)) from None


# ----------------------------------------------------------------- deploy (CI)


def _parse_images(images: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in images:
        container, sep, image = item.partition("=")
        if not sep or not container or not image:
            raise fail(f"--image {item!r}: write CONTAINER=IMAGE, e.g. app=registry/checkout:v2")
        pairs.append((container, image))
    return pairs


def _set_images(kube: Kube, ns: str, deployment: str, images: list[tuple[str, str]]) -> str:
    from canary.controller.workloads import template_hash

    dep = kube.get_deployment(ns, deployment)
    if dep is None:
        raise fail(f"Deployment {ns}/{deployment} (the Canary's spec.targetRef) not found")
    containers = dep["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    for container, image in images:
        item = f"{container}={image}"
        if container not in names:
            raise fail(
                f"--image {item!r}: Deployment {deployment} has no container "
                f"{container!r} (containers: {', '.join(names)})"
            )
        next(c for c in containers if c["name"] == container)["image"] = image
    dep = kube.replace_deployment(ns, dep)
    return template_hash(dep["spec"]["template"])


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
        raise fail(f"--timeout: {exc}") from None
    if output not in ("text", "json"):
        raise fail(f"--output must be text or json, not {output!r}")
    images = _parse_images(image)
    kube = connect(kubeconfig)
    canary = _get(kube, namespace, name)
    started = time.monotonic()
    revision = _set_images(kube, namespace, canary["spec"]["targetRef"]["name"], images)
    log_line(f"deploy {namespace}/{name}: revision {revision} ({', '.join(image)})")
    if not wait:
        return
    code, final = _wait_for_verdict(kube, namespace, name, revision, limit)
    summary = {
        "canary": f"{namespace}/{name}",
        "revision": revision,
        "result": RESULTS[code],
        "phase": (final.get("status") or {}).get("phase"),
        "message": (final.get("status") or {}).get("message"),
        "seconds": round(time.monotonic() - started, 1),
        "analysis": (final.get("status") or {}).get("analysis", []),
    }
    if output == "json":
        print(json.dumps(summary, indent=2))
    else:
        log_line(f"result: {summary['result']} after {summary['seconds']}s: {summary['message']}")
    if junit:
        from canary.cli.junit import write_report

        write_report(junit, summary)
    raise typer.Exit(code)


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
            log_line(f"warning: {exc}")
            time.sleep(2)
            continue
        status = canary.get("status") or {}
        line = render.summary_line(canary)
        if line != last:
            log_line(line)
            last = line
        for m in render.metric_lines(canary):
            if m not in seen_metrics:
                seen_metrics.add(m)
                log_line(f"  {m}")
        phase = status.get("phase")
        if status.get("stableRevision") == revision and phase in ("Succeeded", "Idle"):
            return EXIT_OK, canary  # promoted, or it already was the stable revision
        invalid = [
            c
            for c in status.get("conditions") or []
            if c.get("type") == "Invalid" and c.get("status") == "True"
        ]
        if invalid:
            log_line(f"the Canary is invalid, fix it first: {invalid[0].get('message')}")
            return EXIT_USAGE, canary
        if status.get("canaryRevision") == revision and phase in TERMINAL_BAD:
            return EXIT_FAILED, canary
        time.sleep(1)
    return EXIT_TIMEOUT, canary


# ----------------------------------------------------------------- inspection


def status(
    name: Name,
    namespace: Namespace = "default",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep showing changes.")] = False,
    output: Annotated[str | None, typer.Option("--output", "-o", help="json or yaml")] = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Show a Canary's phase, step, weight, and each metric's last verdict with its reason."""
    import yaml
    from rich.console import Console

    if output not in (None, "json", "yaml"):
        raise fail(f"--output must be json or yaml, not {output!r}")
    out = Console(highlight=False)
    kube = connect(kubeconfig)
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
                log_line(line)
                last = line
        if not watch:
            return
        time.sleep(1)


def list_(
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
    kubeconfig: Kubeconfig = None,
) -> None:
    """List Canaries with their phase, weight and step."""
    from rich.console import Console

    out = Console(highlight=False)
    kube = connect(kubeconfig)
    try:
        items, _ = kube.list_canaries(None if all_namespaces else (namespace or "default"))
    except CanaryError as exc:
        raise fail(str(exc)) from None
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
    from canary.api import naming, request_codec

    kube = connect(kubeconfig)
    _get(kube, namespace, name)
    try:
        user = kube.whoami()
    except CanaryError as exc:
        raise fail(str(exc)) from None
    try:
        request = request_codec.new_request(action, user, dt.datetime.now(dt.UTC), full=full)
    except request_codec.UnsendableRequest as exc:
        raise fail(str(exc)) from None
    kube.annotate_canary(
        namespace, name, {naming.ANNOTATION_REQUEST: request_codec.encode(request)}
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        canary = kube.get_canary(namespace, name)
        status = canary.get("status") or {}
        if status.get("lastRequestId") == request.id:
            if status.get("lastRequestOutcome") in ("Ignored", "Rejected"):
                why = status.get("lastRequestMessage")
                print(f"{action} {namespace}/{name}: not applied: {why}")
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


def promote(
    name: Name,
    namespace: Namespace = "default",
    full: Annotated[bool, typer.Option(help="Skip all remaining steps and analysis.")] = False,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Move past the current step (or a pause); --full promotes right away."""
    _request(name, namespace, "promote", kubeconfig, full=full)


def abort(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Roll back now: all traffic to stable in one step, canary scaled down."""
    _request(name, namespace, "abort", kubeconfig)


def pause(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Hold the rollout at its current weight until `canary resume`."""
    _request(name, namespace, "pause", kubeconfig)


def resume(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Continue a paused rollout from where it stopped."""
    _request(name, namespace, "resume", kubeconfig)


def retry(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Start a rolled-back or failed rollout again from step 1 with the same revision."""
    _request(name, namespace, "retry", kubeconfig)

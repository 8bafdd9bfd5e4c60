"""The verbs that move a rollout: `deploy` and `wait` for CI; `promote`, `abort`, `pause`,
`resume`, `retry` and `undo` to steer one through the controller."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from canary.cli import render
from canary.cli.cluster import Context, Kubeconfig, Name, Namespace, connect, get_canary
from canary.cli.exits import EXIT_FAILED, EXIT_TIMEOUT, fail
from canary.cli.render import progress
from canary.cli.waiting import EXITS, Junit, Output, Timeout, limit_of, wait_and_report
from canary.errors import CanaryError

if TYPE_CHECKING:  # the Kubernetes client and pydantic models load when a command runs
    from canary.api.request_codec import RequestAction
    from canary.kube.client import Kube


def register(app: typer.Typer) -> None:
    app.command()(deploy)
    app.command()(wait)
    for verb in (promote, abort, pause, resume, retry, undo):
        app.command()(verb)


# ----------------------------------------------------------------- CI


def _parse_images(images: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in images:
        container, sep, image = item.partition("=")
        if not sep or not container or not image:
            raise fail(f"--image {item!r}: write CONTAINER=IMAGE, e.g. app=registry/checkout:v2")
        pairs.append((container, image))
    return pairs


def _target(kube: Kube, ns: str, canary: dict) -> dict:
    deployment = canary["spec"]["targetRef"]["name"]
    dep = kube.get_deployment(ns, deployment)
    if dep is None:
        raise fail(f"Deployment {ns}/{deployment} (the Canary's spec.targetRef) not found")
    return dep


def _set_images(kube: Kube, ns: str, dep: dict, images: list[tuple[str, str]]) -> str:
    from canary.controller.workloads import template_hash

    containers = dep["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    for container, image in images:
        item = f"{container}={image}"
        if container not in names:
            raise fail(
                f"--image {item!r}: Deployment {dep['metadata']['name']} has no container "
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
    namespace: Namespace = None,
    wait: Annotated[bool, typer.Option(help=f"Wait for the verdict: {EXITS}.")] = False,
    timeout: Timeout = "30m",
    output: Output = "text",
    junit: Junit = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Roll out a new image through the Canary (CI's entry point).

    \b
    Example (a CI job):
      canary deploy checkout -n shop --image app=registry/checkout:v2 --wait --timeout 30m \\
          --output json --junit canary-report.xml > canary.json

    It sets the image on the Canary's target Deployment (what `kubectl set image` does);
    the controller then rolls the new revision out step by step. With --wait it prints one
    line per change on stderr, the result on stdout, and exits 0 when promoted, 1 when
    rolled back or failed, 2 on a usage or config error, 3 on timeout.
    """
    limit = limit_of(timeout)
    images = _parse_images(image)
    kube = connect(kubeconfig, context)
    ns = namespace or kube.namespace
    canary = get_canary(kube, ns, name)
    started = time.monotonic()
    revision = _set_images(kube, ns, _target(kube, ns, canary), images)
    if not wait:
        if output == "json":
            print(json.dumps({"canary": f"{ns}/{name}", "revision": revision}, indent=2))
        else:
            print(f"deploy {ns}/{name}: revision {revision} ({', '.join(image)})")
        return
    progress(f"deploy {ns}/{name}: revision {revision} ({', '.join(image)})")
    raise wait_and_report(kube, ns, name, revision, limit, output, junit, started)


def wait(
    name: Name,
    namespace: Namespace = None,
    timeout: Timeout = "30m",
    output: Output = "text",
    junit: Junit = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Wait for the verdict on the target Deployment's current revision (for GitOps).

    \b
    Example (Argo CD or Flux changed the image; CI only waits):
      canary wait checkout -n shop --timeout 30m --output json --junit canary-report.xml

    Like `deploy --wait`, without changing anything: progress on stderr, the result on
    stdout; exit 0 promoted, 1 rolled back or failed, 2 invalid Canary, 3 timed out.
    """
    from canary.controller.workloads import template_hash

    limit = limit_of(timeout)
    kube = connect(kubeconfig, context)
    ns = namespace or kube.namespace
    started = time.monotonic()
    revision = template_hash(_target(kube, ns, get_canary(kube, ns, name))["spec"]["template"])
    progress(f"wait {ns}/{name}: revision {revision}")
    raise wait_and_report(kube, ns, name, revision, limit, output, junit, started)


# ----------------------------------------------------------------- steering


def _request(
    name: str,
    namespace: str | None,
    action: RequestAction,
    kubeconfig: Path | None,
    context: str | None,
    full: bool = False,
) -> None:
    """Ask the controller to act. Spec is left alone (Git owns it): the request is an
    annotation the controller consumes once, and the Events keep who asked and when. The
    user is the one the API server authenticates, which its admission policy checks."""
    from canary.api import naming, request_codec

    kube = connect(kubeconfig, context)
    ns = namespace or kube.namespace
    get_canary(kube, ns, name)
    try:
        user = kube.whoami()
    except CanaryError as exc:
        raise fail(str(exc)) from None
    try:
        request = request_codec.new_request(action, user, dt.datetime.now(dt.UTC), full=full)
    except request_codec.UnsendableRequest as exc:
        raise fail(str(exc)) from None
    kube.annotate_canary(ns, name, {naming.ANNOTATION_REQUEST: request_codec.encode(request)})
    deadline, pause = time.monotonic() + 15, 0.05
    while time.monotonic() < deadline:
        # A watching controller answers within a few hundred milliseconds: look often
        # at first, then every 0.3 s.
        time.sleep(pause)
        pause = min(pause * 2, 0.3)
        canary = kube.get_canary(ns, name)
        status = canary.get("status") or {}
        if status.get("lastRequestId") == request.id:
            if status.get("lastRequestOutcome") in ("Ignored", "Rejected"):
                why = status.get("lastRequestMessage")
                print(f"{action} {ns}/{name}: not applied: {why}")
                raise typer.Exit(EXIT_FAILED)
            print(f"{action} {ns}/{name}: done. {render.summary_line(canary)}")
            return
    print(
        f"{action} {ns}/{name}: requested, but the controller has not picked it up "
        "within 15s (is `canary controller` running for this namespace?); it will apply "
        "the request when it does."
    )
    raise typer.Exit(EXIT_TIMEOUT)


def promote(
    name: Name,
    namespace: Namespace = None,
    full: Annotated[
        bool, typer.Option("--full", help="Skip all remaining steps and analysis.")
    ] = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Move past the current step (or a pause); --full promotes right away."""
    _request(name, namespace, "promote", kubeconfig, context, full=full)


def abort(
    name: Name, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Roll back now: all traffic to stable in one step, canary scaled down."""
    _request(name, namespace, "abort", kubeconfig, context)


def pause(
    name: Name, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Hold the rollout at its current weight until `canary resume`."""
    _request(name, namespace, "pause", kubeconfig, context)


def resume(
    name: Name, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Continue a paused rollout from where it stopped."""
    _request(name, namespace, "resume", kubeconfig, context)


def retry(
    name: Name, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Start a rolled-back or failed rollout again from step 1 with the same revision."""
    _request(name, namespace, "retry", kubeconfig, context)


def undo(
    name: Name, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Go back to the previous revision. During a rollout or its bake its pods still
    serve: one router call, like abort. Once promoted they are gone: your Deployment gets
    the previous template back (as `kubectl rollout undo` would), and that revision is
    rolled out like any other, with analysis."""
    from canary.api import naming
    from canary.controller.workloads import template_hash

    kube = connect(kubeconfig, context)
    ns = namespace or kube.namespace
    canary = get_canary(kube, ns, name)
    status = canary.get("status") or {}
    if status.get("phase") != "Succeeded":
        _request(name, namespace, "undo", kubeconfig, context)
        return
    primary = kube.get_deployment(ns, naming.primary(name)) or {"metadata": {}}
    kept = primary["metadata"].get("annotations") or {}
    previous = kept.get(naming.ANNOTATION_PREVIOUS_TEMPLATE)
    if not previous:
        raise fail(
            f"undo {ns}/{name}: no previous revision is recorded on {naming.primary(name)} "
            "(promoted before canary kept one); revert your Deployment's template instead "
            "(git revert, or kubectl rollout undo)"
        )
    try:
        user = kube.whoami()
    except CanaryError as exc:
        raise fail(str(exc)) from None
    dep = _target(kube, ns, canary)
    dep["spec"]["template"] = json.loads(previous)
    was = kept.get(naming.ANNOTATION_PREVIOUS_REVISION, "?")
    cause = f"canary undo by {user} at {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    dep["metadata"].setdefault("annotations", {})["kubernetes.io/change-cause"] = cause
    revision = template_hash(kube.replace_deployment(ns, dep)["spec"]["template"])
    print(
        f"undo {ns}/{name}: Deployment {dep['metadata']['name']} is back at revision "
        f"{revision} (stable before {status.get('stableRevision')}; recorded as {was}); it "
        f"rolls out with analysis. Follow it: canary status {name} -n {ns} --watch"
    )

"""The verbs that look: `status` (once, or --watch) and `list`."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from canary.api import naming
from canary.api.display import INVALID
from canary.cli import render
from canary.cli.cluster import Context, Kubeconfig, Name, Namespace, connect, get_canary
from canary.cli.exits import EXIT_USAGE, fail
from canary.cli.screen import Workloads, status_view
from canary.errors import CanaryError

if TYPE_CHECKING:  # the Kubernetes client loads when a command runs
    from canary.kube.client import Kube

Obj = dict[str, Any]


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command("list")(list_)


def _dump(data: Any, output: str, watching: bool) -> str:
    """JSON or YAML for a program. While watching, one object per change: a JSON line, or
    a YAML document."""
    if output == "json":
        return json.dumps(data, separators=(",", ":")) if watching else json.dumps(data, indent=2)
    import yaml

    text = yaml.safe_dump(data, sort_keys=False).rstrip("\n")
    return f"---\n{text}" if watching else text


def status(
    name: Name,
    namespace: Namespace = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Keep showing changes. Without a terminal: one line (and the new metric "
            "lines) per change, ending when the rollout is Succeeded, RolledBack or Failed.",
        ),
    ] = False,
    output: Annotated[
        Literal["json", "yaml"] | None,
        typer.Option(
            "--output",
            "-o",
            help="The status as json or yaml (with --watch: one JSON line or YAML document "
            "per change).",
        ),
    ] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Show a Canary's phase, step, weight, images and replicas, each metric's evidence and
    verdicts, a pending request, and recent events. Exits 2 when the spec is invalid."""
    kube = connect(kubeconfig, context)
    ns = namespace or kube.namespace
    terminal = sys.stdout.isatty()
    last: Any = None
    seen_metrics: set[str] = set()
    while True:
        canary = get_canary(kube, ns, name)
        current = canary.get("status") or {}
        if output:
            if current != last:
                print(_dump(current, output, watch), flush=True)
        elif terminal:
            if watch:
                print("\033[H\033[2J", end="")  # clear the screen, as `watch` does
            print("\n".join(_screen(kube, canary, colour=True)))
        elif not watch:
            print("\n".join(_screen(kube, canary, colour=False)))
        else:
            if current != last:
                render.log_line(render.summary_line(canary))
            for line in render.metric_lines(canary):
                if line not in seen_metrics:
                    seen_metrics.add(line)
                    render.log_line(f"  {line}")
        last = current
        if not watch:
            if render.phase_text(canary) == INVALID:
                raise typer.Exit(EXIT_USAGE)  # a config error, as for a bad option
            return
        if not terminal and current.get("phase") in render.FINAL_PHASES:
            return
        time.sleep(1)


def _screen(kube: Kube, canary: Obj, colour: bool) -> list[str]:
    ns, name = canary["metadata"]["namespace"], canary["metadata"]["name"]
    target = ((canary.get("spec") or {}).get("targetRef") or {}).get("name")
    try:
        workloads = Workloads(
            primary=kube.get_deployment(ns, naming.primary(name)),
            canary=kube.get_deployment(ns, naming.canary_deployment(name)),
            target=kube.get_deployment(ns, target) if target else None,
        )
    except CanaryError as exc:  # as for events: the status is worth showing without them
        workloads = Workloads(None, None, None, unreadable=str(exc))
    now = dt.datetime.now(dt.UTC)
    return status_view(canary, _events(kube, ns, name), workloads, now, colour)


def _events(kube: Kube, ns: str, name: str) -> list[Obj]:
    try:
        return kube.list_events(ns, name)
    except CanaryError:  # the status is worth showing without them
        return []


def list_(
    namespace: Namespace = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List the Canaries of every namespace.")
    ] = False,
    output: Annotated[
        Literal["wide", "json", "yaml"] | None,
        typer.Option(
            "--output",
            "-o",
            help="wide: also the stable and canary revisions and the target; json or yaml: "
            "the Canaries as a List, as kubectl prints one.",
        ),
    ] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """List Canaries with their phase, weight, step and message."""
    kube = connect(kubeconfig, context)
    ns = None if all_namespaces else (namespace or kube.namespace)
    try:
        items, _ = kube.list_canaries(ns)
    except CanaryError as exc:
        raise fail(str(exc)) from None
    if output in ("json", "yaml"):
        print(_dump({"apiVersion": "v1", "kind": "List", "items": items}, output, False))
        return
    if not items:
        where = "any namespace" if ns is None else f"namespace {ns}"
        hint = "" if ns is None else "; to look in every namespace: canary list -A"
        print(f"No Canaries found in {where}{hint}", file=sys.stderr)
        return
    rows = render.list_rows(items, all_namespaces, output == "wide")
    print("\n".join(render.table(rows, colour=False)))

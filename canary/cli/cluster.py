"""What the commands that talk to a cluster share: the options that pick the cluster and
namespace (as kubectl's do), a client, and reading one Canary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from canary.cli.exits import fail
from canary.errors import CanaryError

if TYPE_CHECKING:  # the Kubernetes client is loaded by commands that connect
    from canary.kube.client import Kube

Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        envvar="KUBECONFIG",
        metavar="FILE",
        help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config).",
    ),
]
Context = Annotated[
    str | None,
    typer.Option(
        "--context", metavar="NAME", help="Kubeconfig context (default: its current-context)."
    ),
]
Namespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        metavar="NAMESPACE",
        help="Namespace of the Canary (default: the context's namespace, as kubectl's).",
    ),
]
Name = Annotated[str, typer.Argument(metavar="NAME", help="Name of the Canary.")]


def connect(kubeconfig: Path | None, context: str | None) -> Kube:
    """A client for the cluster, once it is known to have canary's CRDs."""
    from canary.kube.client import Kube

    # urllib3 warns on every retry; the one error line below says it all.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        kube = Kube(kubeconfig, context)
        kube.require_crds()
        return kube
    except CanaryError as exc:
        raise fail(str(exc)) from None


def get_canary(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    from canary.kube.client import NotFound

    try:
        return kube.get_canary(ns, name)
    except NotFound:
        raise fail(
            f"Canary {ns}/{name} not found. List them with: canary list -n {ns} "
            "(or in every namespace: canary list -A)"
        ) from None
    except CanaryError as exc:
        raise fail(str(exc)) from None

"""What the commands that talk to a cluster share: the --kubeconfig option and a client."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
        help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config).",
    ),
]


def connect(kubeconfig: Path | None) -> Kube:
    """A client for the cluster, once it is known to have canary's CRDs."""
    from canary.kube.client import Kube

    # urllib3 warns on every retry; the one error line below says it all.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        kube = Kube(kubeconfig)
        kube.require_crds()
        return kube
    except CanaryError as exc:
        raise fail(str(exc)) from None

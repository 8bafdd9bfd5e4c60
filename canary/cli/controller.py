"""`canary controller`: run the controller in-cluster (with leader election) or locally."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Literal

import typer

from canary.cli.cluster import Context, Kubeconfig, connect
from canary.cli.exits import EXIT_FAILED, fail
from canary.errors import CanaryError, PermanentError


def register(app: typer.Typer) -> None:
    app.command()(controller)


def controller(
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="NAMESPACE",
            help="Watch only these namespaces (repeatable; default: all).",
        ),
    ] = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            "--prometheus-url",
            metavar="URL",
            envvar="CANARY_PROMETHEUS_URL",
            help="Prometheus for metrics whose template sets no address.",
        ),
    ] = None,
    log_format: Annotated[
        Literal["text", "json"],
        typer.Option(help="text: lines for people; json: a JSON object per line, for log "
                     "collectors."),
    ] = "text",
    workers: Annotated[
        int, typer.Option(min=1, metavar="N", help="Canaries reconciled in parallel.")
    ] = 4,
    leader_elect: Annotated[
        bool, typer.Option(help="Run only while holding a Lease, so several replicas can stand by.")
    ] = False,
    leader_namespace: Annotated[
        str,
        typer.Option(
            envvar="POD_NAMESPACE",
            metavar="NAMESPACE",
            help="The controller's own namespace: its leader-election Lease, and the "
            "notification ConfigMap and Secrets.",
        ),
    ] = "canary-system",
    notifications_configmap: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="ConfigMap (in --leader-namespace) naming notification sinks and routes; "
            "while it does not exist, nothing is sent. Empty: notifications off.",
        ),
    ] = "canary-notifications",
    leader_election_id: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="Name of the Lease. Shards (controllers given different --namespace sets) "
            "each need their own, so that each shard has one active replica."
        ),
    ] = "canary-controller",
    health_port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            metavar="PORT",
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

    configure_logging(log_format)
    kube = connect(kubeconfig, context)
    # The default registry also holds the client library's process_* and python_* metrics.
    metrics = Metrics(REGISTRY)
    kube.on_request(metrics.kube_request)
    elector = None
    if leader_elect:
        from canary.controller.leader import LeaderElector

        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        elector = LeaderElector(kube, leader_namespace, identity, name=leader_election_id)
    notifier = None
    if notifications_configmap:
        from canary.controller.notifications import Notifier

        notifier = Notifier(
            kube, leader_namespace, notifications_configmap, report=metrics.notification
        )
    ctl = Controller(
        kube,
        notifier=notifier,
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
            raise fail(message) from None
    try:
        ctl.run()
    except KeyboardInterrupt:
        ctl.stop()
    except PermanentError as exc:
        raise fail(str(exc)) from None
    except CanaryError as exc:  # e.g. lost leadership: exit so the restart starts clean
        raise fail(str(exc), EXIT_FAILED) from None

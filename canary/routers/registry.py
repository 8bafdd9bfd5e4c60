"""Every traffic router this controller has; a new router is one entry here.

Validation and the CLI read the names, so importing this module loads no router (and no
Kubernetes client): a router's module is imported when a Canary first needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from canary.errors import PermanentError

if TYPE_CHECKING:
    from canary.api.canary import Canary
    from canary.kube.port import KubePort
    from canary.routers.base import TrafficRouter


@dataclass(frozen=True)
class Router:
    implementation: str  # "module:Class", a TrafficRouter built from a Kube
    spec_field: str | None  # its key under spec.trafficRouting; None: trafficRouting left out


ROUTERS: Mapping[str, Router] = MappingProxyType({
    "replicas": Router("canary.routers.replicas:ReplicaRouter", spec_field=None),
    "gatewayAPI": Router("canary.routers.gateway_api:GatewayAPIRouter", spec_field="gatewayAPI"),
    "istio": Router("canary.routers.istio:IstioRouter", spec_field="istio"),
})

# The trafficRouting fields a Canary may set; the schema reserves others for later routers.
IMPLEMENTED_ROUTERS = tuple(r.spec_field for r in ROUTERS.values() if r.spec_field is not None)


def load(name: str) -> Callable[[KubePort], TrafficRouter]:
    if name not in ROUTERS:
        raise PermanentError(f"no traffic router named {name!r} (known: {', '.join(ROUTERS)})")
    module, _, cls = ROUTERS[name].implementation.partition(":")
    router: Callable[[KubePort], TrafficRouter] = getattr(importlib.import_module(module), cls)
    return router


def name_for(canary: Canary) -> str:
    """The router the Canary's spec.trafficRouting picks; a reserved field is an error."""
    routing = canary.spec.traffic_routing
    # The model admits at most one field.
    field = next(iter(routing.wire()), None) if routing is not None else None
    for name, router in ROUTERS.items():
        if router.spec_field == field:
            return name
    supported = " or ".join(f"trafficRouting.{f}" for f in IMPLEMENTED_ROUTERS)
    raise PermanentError(
        f"spec.trafficRouting.{field} is not supported by this controller version yet "
        f"(use {supported}, or leave trafficRouting out for replica-ratio routing)"
    )


def router_for(canary: Canary, kube: KubePort) -> TrafficRouter:
    return load(name_for(canary))(kube)

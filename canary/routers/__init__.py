"""Traffic routers; `router_for` picks one from the Canary's spec.trafficRouting."""

from __future__ import annotations

from canary.api.models import Canary
from canary.errors import PermanentError
from canary.kube.port import KubePort
from canary.routers.base import TrafficRouter
from canary.routers.gateway_api import GatewayAPIRouter
from canary.routers.replicas import ReplicaRouter


def router_for(canary: Canary, kube: KubePort) -> TrafficRouter:
    routing = canary.spec.traffic_routing
    if routing is None:
        return ReplicaRouter(kube)
    if routing.gateway_api is not None:
        return GatewayAPIRouter(kube)
    chosen = "istio" if routing.istio is not None else "nginx"
    raise PermanentError(
        f"spec.trafficRouting.{chosen} is not supported by this controller version yet "
        "(use trafficRouting.gatewayAPI, or leave trafficRouting out for replica-ratio routing)"
    )


__all__ = ["GatewayAPIRouter", "ReplicaRouter", "TrafficRouter", "router_for"]

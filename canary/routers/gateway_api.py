"""Gateway API HTTPRoute: the canary weight lives in backendRef weights.

The user owns the HTTPRoute (parents, matches, filters). We rewrite only the backendRefs
of rules that point at this Canary's services (N, N-stable or N-canary), so routes
shared with other apps are left alone.
"""

from __future__ import annotations

from typing import Any

from canary import naming
from canary.errors import PermanentError, TransientError
from canary.kube import Kube
from canary.models import Canary

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


class GatewayAPIRouter:
    name = "gatewayAPI"

    def __init__(self, kube: Kube):
        self.kube = kube

    def _route(self, canary: Canary) -> tuple[str, str, dict[str, Any]]:
        assert canary.spec.traffic_routing and canary.spec.traffic_routing.gateway_api
        ns = canary.metadata.namespace or "default"
        route_name = canary.spec.traffic_routing.gateway_api.http_route
        return ns, route_name, self.kube.get_object(GROUP, VERSION, PLURAL, ns, route_name)

    @staticmethod
    def _our_rules(canary: Canary, route: dict[str, Any], route_name: str) -> list[dict]:
        name = canary.metadata.name
        ours = {name, naming.stable_service(name), naming.canary_service(name)}
        rules = [
            r
            for r in route.get("spec", {}).get("rules", [])
            if any(b.get("name") in ours for b in r.get("backendRefs", []))
        ]
        if not rules:
            raise PermanentError(
                f"HTTPRoute {route_name}: no rule has a backendRef to Service "
                f"{naming.stable_service(name)} (or {name}); add one so canary can split its "
                "traffic"
            )
        return rules

    def set_weight(self, canary: Canary, weight: int) -> int:
        ns, route_name, route = self._route(canary)
        name, port = canary.metadata.name, canary.spec.service.port
        for rule in self._our_rules(canary, route, route_name):
            rule["backendRefs"] = [
                {"name": naming.stable_service(name), "port": port, "weight": 100 - weight},
                {"name": naming.canary_service(name), "port": port, "weight": weight},
            ]
        self.kube.replace_object(GROUP, VERSION, PLURAL, ns, route)
        written = self.get_weight(canary)
        if written != weight:
            raise TransientError(
                f"HTTPRoute {route_name}: wrote canary weight {weight}, read back {written}"
            )
        return written

    def in_sync(self, canary: Canary, weight: int) -> bool:
        return self.get_weight(canary) == weight

    def get_weight(self, canary: Canary) -> int:
        _ns, route_name, route = self._route(canary)
        canary_svc = naming.canary_service(canary.metadata.name)
        weights = [
            sum(b.get("weight", 1) for b in rule["backendRefs"] if b.get("name") == canary_svc)
            * 100
            // max(1, sum(b.get("weight", 1) for b in rule["backendRefs"]))
            for rule in self._our_rules(canary, route, route_name)
        ]
        return max(weights)

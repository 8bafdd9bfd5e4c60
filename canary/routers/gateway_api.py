"""Gateway API HTTPRoute: the canary weight lives in backendRef weights.

The user owns the HTTPRoute (parents, matches, filters). We rewrite only the backendRefs
of rules that point at this Canary's services (N, N-stable or N-canary), so routes
shared with other apps are left alone. The first write also records those rules'
backendRefs in an annotation on the route, in the same write (so no crash can lose it);
teardown puts them back.
"""

from __future__ import annotations

import json
from typing import Any

from canary.api import naming
from canary.api.canary import Canary
from canary.errors import PermanentError, TransientError
from canary.kube.errors import NotFound
from canary.kube.port import KubePort
from canary.routers.base import RouteReading
from canary.routers.record import read_record

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
ANNOTATION_ORIGINAL = "canary.dev/original-backend-refs"  # {"rule index": [backendRef]}


class GatewayAPIRouter:
    def __init__(self, kube: KubePort):
        self.kube = kube

    def canary_replicas(self, total: int) -> int:
        return total  # the route splits traffic, so the canary can take any weight at once

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
        ours = self._our_rules(canary, route, route_name)
        annotations = route["metadata"].get("annotations") or {}
        if ANNOTATION_ORIGINAL not in annotations:
            annotations[ANNOTATION_ORIGINAL] = json.dumps({
                str(i): rule.get("backendRefs") or []
                for i, rule in enumerate(route["spec"]["rules"])
                if any(rule is r for r in ours)
            })
            route["metadata"]["annotations"] = annotations
        for rule in ours:
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

    def read(self, canary: Canary, weight: int) -> RouteReading:
        carried = self.get_weight(canary)
        return RouteReading(carried, carried == weight)

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

    def teardown(self, canary: Canary) -> None:
        try:
            ns, _route_name, route = self._route(canary)
        except NotFound:
            return  # the user deleted the route: nothing sends traffic to our Services
        name, port = canary.metadata.name, canary.spec.service.port
        owned = {naming.stable_service(name), naming.canary_service(name)}
        annotations = route["metadata"].get("annotations") or {}
        recorded = read_record(annotations.pop(ANNOTATION_ORIGINAL, None))
        changed = recorded is not None
        for i, rule in enumerate(route.get("spec", {}).get("rules") or []):
            if not any(b.get("name") in owned for b in rule.get("backendRefs") or []):
                continue
            # Our own Services are about to go, so a route that sent to N-stable from the
            # start goes to the user's Service N instead.
            before = [b for b in (recorded or {}).get(str(i), []) if b.get("name") not in owned]
            rule["backendRefs"] = before or [{"name": name, "port": port}]
            changed = True
        if changed:
            route["metadata"]["annotations"] = annotations
            self.kube.replace_object(GROUP, VERSION, PLURAL, ns, route)


"""Istio VirtualService (networking.istio.io/v1): the canary weight lives in the
destination weights of http routes.

The user owns the VirtualService (hosts, gateways, matches, retries, other routes). We
rewrite only the `route` list of our http routes, to two destinations: N-stable and
N-canary, weights summing to 100. Our routes are the ones spec.trafficRouting.istio.routes
names; with no names, every http route with a destination host of N, N-stable or
N-canary (short or `.ns.svc...` form), as for the Gateway API router. Argo Rollouts
requires names; we accept both so that a one-route VirtualService needs no naming.

The first write records those routes' destinations in an annotation, in the same write
(so no crash can lose it); teardown puts them back. tcp and tls routes are left alone:
a weight split is an HTTP concept here. DestinationRule subsets are not supported: the
two Services canary creates are the two destinations.
"""

from __future__ import annotations

import json
from typing import Any

from canary.api import naming
from canary.api.canary import Canary, IstioRouting
from canary.errors import PermanentError, TransientError
from canary.kube.errors import NotFound
from canary.kube.port import KubePort, Obj
from canary.routers.base import RouteReading
from canary.routers.record import read_record

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
# {"route key": [HTTPRouteDestination]}; the key is the route's name, or "#index" unnamed.
ANNOTATION_ORIGINAL = "canary.dev/original-http-destinations"
FIELD = "spec.trafficRouting.istio"


def _key(index: int, route: dict[str, Any]) -> str:
    name = route.get("name")
    return name if isinstance(name, str) and name else f"#{index}"


def _service(route_destination: dict[str, Any], ns: str) -> str | None:
    """The Service in `ns` a route destination's host names, in any of the forms Istio
    accepts (`svc`, `svc.ns`, `svc.ns.svc.<cluster domain>`); None for anything else."""
    destination = route_destination.get("destination")
    host = destination.get("host") if isinstance(destination, dict) else None
    if not isinstance(host, str):
        return None
    parts = host.split(".")
    if len(parts) == 1:
        return host
    if parts[1] == ns and (len(parts) == 2 or parts[2] == "svc"):
        return parts[0]
    return None


def _destinations(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in route.get("route") or [] if isinstance(d, dict)]


class IstioRouter:
    def __init__(self, kube: KubePort):
        self.kube = kube

    def canary_replicas(self, total: int) -> int:
        return total  # the mesh splits traffic, so the canary can take any weight at once

    @staticmethod
    def _spec(canary: Canary) -> tuple[str, IstioRouting]:
        assert canary.spec.traffic_routing and canary.spec.traffic_routing.istio
        return canary.metadata.namespace or "default", canary.spec.traffic_routing.istio

    def _get(self, canary: Canary) -> Obj:
        ns, istio = self._spec(canary)
        try:
            return self.kube.get_object(GROUP, VERSION, PLURAL, ns, istio.virtual_service)
        except NotFound:
            raise PermanentError(
                f"{FIELD}.virtualService: VirtualService {ns}/{istio.virtual_service} does "
                "not exist; create it (with an http route to Service "
                f"{canary.metadata.name}) or name an existing one"
            ) from None

    def _our_routes(self, canary: Canary, vs: Obj) -> list[tuple[str, dict[str, Any]]]:
        ns, istio = self._spec(canary)
        http = [r for r in (vs.get("spec") or {}).get("http") or [] if isinstance(r, dict)]
        keyed = [(_key(i, r), r) for i, r in enumerate(http)]
        where = f"VirtualService {ns}/{istio.virtual_service}"
        if not istio.routes:
            ours = self._owned(canary) | {canary.metadata.name}
            found = [
                (k, r) for k, r in keyed if any(_service(d, ns) in ours for d in _destinations(r))
            ]
            if not found:
                raise PermanentError(
                    f"{FIELD}.routes: {where} has no http route with a destination host "
                    f"{canary.metadata.name} (or {naming.stable_service(canary.metadata.name)}); "
                    "add one, or name the routes to split in trafficRouting.istio.routes"
                )
            return found
        by_name = {r.get("name"): (k, r) for k, r in keyed if r.get("name")}
        missing = [n for n in istio.routes if n not in by_name]
        if missing:
            have = ", ".join(sorted(str(n) for n in by_name)) or "no named http routes"
            raise PermanentError(
                f"{FIELD}.routes: {where} has no http route named "
                f"{', '.join(repr(n) for n in missing)} (it has {have}); fix the name in "
                "trafficRouting.istio.routes or give the route that `name`"
            )
        found = [by_name[n] for n in dict.fromkeys(istio.routes)]
        for _k, route in found:
            if "redirect" in route or "directResponse" in route:
                raise PermanentError(
                    f"{FIELD}.routes: http route {route['name']!r} of {where} answers with "
                    "a redirect or a direct response, so no traffic reaches a destination; "
                    "name a route that forwards"
                )
        return found

    @staticmethod
    def _owned(canary: Canary) -> set[str]:
        name = canary.metadata.name
        return {naming.stable_service(name), naming.canary_service(name)}

    @staticmethod
    def _split(canary: Canary, weight: int) -> list[dict[str, Any]]:
        name, port = canary.metadata.name, canary.spec.service.port
        return [
            {
                "destination": {"host": naming.stable_service(name), "port": {"number": port}},
                "weight": 100 - weight,
            },
            {
                "destination": {"host": naming.canary_service(name), "port": {"number": port}},
                "weight": weight,
            },
        ]

    def set_weight(self, canary: Canary, weight: int) -> int:
        ns, istio = self._spec(canary)
        vs = self._get(canary)
        ours = self._our_routes(canary, vs)
        annotations = vs["metadata"].get("annotations") or {}
        if ANNOTATION_ORIGINAL not in annotations:
            annotations[ANNOTATION_ORIGINAL] = json.dumps(
                {k: r.get("route") or [] for k, r in ours}
            )
            vs["metadata"]["annotations"] = annotations
        for _k, route in ours:
            route["route"] = self._split(canary, weight)
        # The PUT's answer is the object as stored, after the CRD's schema validated and
        # pruned it: reading it is the read-back, without a second call.
        stored = self.kube.replace_object(GROUP, VERSION, PLURAL, ns, vs)
        written = self._carried(canary, stored)
        if written != weight:
            raise TransientError(
                f"VirtualService {ns}/{istio.virtual_service}: wrote canary weight {weight}, "
                f"read back {written}"
            )
        return written

    def _carried(self, canary: Canary, vs: Obj) -> int:
        ns, _istio = self._spec(canary)
        canary_svc = naming.canary_service(canary.metadata.name)
        shares = []
        for _k, route in self._our_routes(canary, vs):
            dests = _destinations(route)
            # Istio sends everything to a lone destination whatever its weight says.
            weights = [d.get("weight", 0) if len(dests) > 1 else 100 for d in dests]
            to_canary = sum(
                w for d, w in zip(dests, weights, strict=True) if _service(d, ns) == canary_svc
            )
            shares.append(to_canary * 100 // max(1, sum(weights)))
        # Routes can disagree after a hand edit: report the most the canary can get.
        return max(shares)

    def get_weight(self, canary: Canary) -> int:
        return self._carried(canary, self._get(canary))

    def read(self, canary: Canary, weight: int) -> RouteReading:
        vs = self._get(canary)
        split = self._split(canary, weight)
        in_sync = all(r.get("route") == split for _k, r in self._our_routes(canary, vs))
        return RouteReading(self._carried(canary, vs), in_sync)

    def teardown(self, canary: Canary) -> None:
        ns, istio = self._spec(canary)
        try:
            vs = self.kube.get_object(GROUP, VERSION, PLURAL, ns, istio.virtual_service)
        except NotFound:
            return  # the user deleted it: nothing sends traffic to our Services
        name, port = canary.metadata.name, canary.spec.service.port
        owned = self._owned(canary)
        annotations = vs["metadata"].get("annotations") or {}
        recorded = read_record(annotations.pop(ANNOTATION_ORIGINAL, None))
        changed = recorded is not None
        for i, route in enumerate((vs.get("spec") or {}).get("http") or []):
            if not isinstance(route, dict) or not any(
                _service(d, ns) in owned for d in _destinations(route)
            ):
                continue
            # Our own Services are about to go, so a route that sent to N-stable from the
            # start goes to the user's Service N instead.
            before = [
                d
                for d in (recorded or {}).get(_key(i, route), [])
                if isinstance(d.get("destination"), dict) and _service(d, ns) not in owned
            ]
            route["route"] = before or [{"destination": {"host": name, "port": {"number": port}}}]
            changed = True
        if changed:
            vs["metadata"]["annotations"] = annotations
            self.kube.replace_object(GROUP, VERSION, PLURAL, ns, vs)

"""The TrafficRouter protocol: how canary traffic weight reaches the data plane.

One implementation per data plane, named in registry.py. Each writes the weight in ONE
call to its API and reads it back, so a rollback is a single write and a silent drop is
caught at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from canary.api.canary import Canary


@dataclass(frozen=True)
class RouteReading:
    """One read of the data plane, taken on every reconcile."""

    carried: int  # the canary weight it carries now, as get_weight reports it
    in_sync: bool  # it holds what set_weight(weight) would write, for the weight asked about


class TrafficRouter(Protocol):
    def canary_replicas(self, total: int) -> int:
        """Replicas N-canary starts a rollout with, when the user runs `total`."""
        ...

    def set_weight(self, canary: Canary, weight: int) -> int:
        """Send `weight`% to the canary, the rest to stable; return the weight read back
        from what was written."""
        ...

    def get_weight(self, canary: Canary) -> int:
        """The canary weight the data plane carries now. It can differ from the weight
        written: replica routing carries it only once the pods are ready, and a route can
        be edited by hand."""
        ...

    def read(self, canary: Canary, weight: int) -> RouteReading:
        """get_weight, and whether the data plane holds what set_weight(weight) would
        write, from one read of it: the controller asks on every reconcile, so a second
        read would cost a thousand Canaries a thousand API calls."""
        ...

    def teardown(self, canary: Canary) -> None:
        """Point traffic back where it went before this Canary first set a weight, so the
        objects the Canary owns can go (it is being deleted). Idempotent."""
        ...

"""The TrafficRouter protocol: how canary traffic weight reaches the data plane.

One implementation per data plane, named in registry.py. Each writes the weight in ONE
call to its API and reads it back, so a rollback is a single write and a silent drop is
caught at once.
"""

from __future__ import annotations

from typing import Protocol

from canary.api.canary import Canary


class TrafficRouter(Protocol):
    def canary_replicas(self, total: int) -> int:
        """Replicas N-canary starts a rollout with, when the user runs `total`."""
        ...

    def set_weight(self, canary: Canary, weight: int) -> int:
        """Send `weight`% to the canary, the rest to stable; return the weight read back."""
        ...

    def get_weight(self, canary: Canary) -> int:
        """The canary weight the data plane has now."""
        ...

    def in_sync(self, canary: Canary, weight: int) -> bool:
        """Does the data plane carry what set_weight(weight) would write?"""
        ...

    def teardown(self, canary: Canary) -> None:
        """Point traffic back where it went before this Canary first set a weight, so the
        objects the Canary owns can go (it is being deleted). Idempotent."""
        ...

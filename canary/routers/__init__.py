"""Traffic routers: the TrafficRouter protocol (base.py), one module per data plane, and
the registry (registry.py) that names them and picks one from a Canary's spec.

Importing this package loads no router; see registry.py.
"""

from __future__ import annotations

from canary.routers.base import RouteReading, TrafficRouter
from canary.routers.registry import router_for

__all__ = ["RouteReading", "TrafficRouter", "router_for"]

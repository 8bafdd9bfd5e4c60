"""trafficRouting's router names, and the table that rewords the models' validator errors.

The two stay together, apart from the other checks, because changing the routers
changes both: the table's entry for the one-router rule names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.providers.registry import supported
from canary.routers.registry import IMPLEMENTED_ROUTERS
from canary.validation.findings import Finding, format_path


def check_routing(routing: Any) -> list[Finding]:
    if not isinstance(routing, Mapping):
        return []
    return [
        Finding(
            format_path("spec.trafficRouting", [name]),
            "is not supported by this controller version yet",
            f"use one of {', '.join(f'trafficRouting.{n}' for n in IMPLEMENTED_ROUTERS)}, "
            "or leave trafficRouting out for replica-ratio routing",
        )
        for name in routing
        if name not in IMPLEMENTED_ROUTERS and routing.get(name) is not None
    ]


VALIDATOR_FIXES = (
    (
        "each step sets exactly one of",
        "sets more or less than one of setWeight, pause, analysis",
        "give each step exactly one of them; put the others in steps of their own",
    ),
    (
        "set only one of gatewayAPI",
        "sets more than one router",
        "keep one of gatewayAPI, istio, nginx, or leave trafficRouting out for replica-ratio "
        "routing",
    ),
    ("thresholdRange needs min, max or both", "has neither min nor max", "set min, max or both"),
    ("thresholdRange.min must not exceed", "min is greater than max", "swap min and max"),
    (
        "provider must name exactly one backend",
        "must name exactly one provider",
        f"keep one of the supported providers: {supported()}",
    ),
    (
        "errorRate comparison needs",
        "an errorRate comparison needs requestsQuery and errorsQuery",
        "add both queries",
    ),
    (
        "latency comparison needs bucketsQuery",
        "a latency comparison needs bucketsQuery",
        "add bucketsQuery: cumulative histogram buckets, one series per le",
    ),
    (
        "a metric has exactly one of thresholdRange, comparison",
        "has both or neither of thresholdRange and comparison",
        "keep one: thresholdRange for a fixed bound, comparison to judge canary against stable",
    ),
)

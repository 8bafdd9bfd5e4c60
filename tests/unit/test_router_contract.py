"""The router contract's offline half: every router in the registry, checked without a
cluster. tests/integration/test_routers.py runs the same routers against a real API server.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from fake_kube import FakeKube

from canary.api.canary import Canary, TrafficRouting
from canary.errors import PermanentError
from canary.routers import TrafficRouter, router_for
from canary.routers.registry import IMPLEMENTED_ROUTERS, ROUTERS, load, name_for

pytestmark = pytest.mark.unit

PROTOCOL = [n for n, v in vars(TrafficRouter).items() if callable(v) and not n.startswith("_")]
SCHEMA_FIELDS = [f.alias or n for n, f in TrafficRouting.model_fields.items()]


def _canary(routing: dict | None) -> Canary:
    spec = {"targetRef": {"name": "pay"}, "service": {"port": 80}, "steps": [{"setWeight": 10}]}
    if routing is not None:
        spec["trafficRouting"] = routing
    return Canary.model_validate({"metadata": {"name": "pay", "namespace": "shop"}, "spec": spec})


@pytest.mark.parametrize("name", ROUTERS)
def test_every_router_has_the_protocols_methods(name: str) -> None:
    router = load(name)
    for method in PROTOCOL:
        assert inspect.signature(getattr(router, method)) == inspect.signature(
            getattr(TrafficRouter, method)
        ), f"{name}.{method}"


@pytest.mark.parametrize("name", ROUTERS)
@pytest.mark.parametrize("total", [1, 4, 10])
def test_a_rollout_starts_with_at_most_the_users_replica_count(name: str, total: int) -> None:
    assert 0 <= load(name)(FakeKube()).canary_replicas(total) <= total


def test_one_router_serves_canaries_without_traffic_routing() -> None:
    assert [r.spec_field for r in ROUTERS.values()].count(None) == 1
    assert name_for(_canary(None)) == name_for(_canary({}))


@pytest.mark.parametrize("name", [n for n, r in ROUTERS.items() if r.spec_field is not None])
def test_every_routers_field_is_in_the_schema(name: str) -> None:
    """The schema (canary.api.canary.TrafficRouting) is what the CRD and validation check."""
    assert ROUTERS[name].spec_field in SCHEMA_FIELDS
    assert ROUTERS[name].spec_field in IMPLEMENTED_ROUTERS


def test_an_unknown_router_name_is_an_error() -> None:
    with pytest.raises(PermanentError, match="no traffic router named 'linkerd'"):
        load("linkerd")


@pytest.mark.parametrize("field", [f for f in SCHEMA_FIELDS if f not in IMPLEMENTED_ROUTERS])
def test_a_reserved_router_is_an_error_not_a_default(field: str) -> None:
    routing = {"istio": {"virtualService": "pay"}, "nginx": {"ingress": "pay"}}[field]
    with pytest.raises(PermanentError, match=rf"trafficRouting\.{field} is not supported"):
        router_for(_canary({field: routing}), FakeKube())


def test_the_registry_loads_no_router_until_one_is_asked_for() -> None:
    """Validation and the CLI read the registry; neither should pay for a Kubernetes client."""
    code = (
        "import sys, canary.validation, canary.routers.registry; "
        "print(sorted(m for m in sys.modules if m.startswith('kubernetes') "
        "or m in ('canary.routers.replicas', 'canary.routers.gateway_api', "
        "'canary.routers.istio')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

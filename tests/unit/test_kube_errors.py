"""How API server answers become canary's typed errors (what the worker retries)."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from canary.errors import PermanentError, TransientError
from canary.kube.calls import translate


def _answer(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="Internal Server Error")
    exc.body = json.dumps({"kind": "Status", "message": message})
    return exc


def test_a_full_service_ip_range_is_permanent_and_names_the_fix() -> None:
    full = "Internal error occurred: failed to allocate a serviceIP: range is full"
    err = translate(_answer(500, full), "create Service shop/checkout-stable")
    assert isinstance(err, PermanentError) and not isinstance(err, TransientError)
    assert "range is full" in str(err) and "--service-cluster-ip-range" in str(err)


def test_other_server_errors_are_retried() -> None:
    err = translate(_answer(500, "etcdserver: request timed out"), "create Service x")
    assert isinstance(err, TransientError)

"""Events as kubectl shows them: a repeat is one object with a count (`x3 over` in
`kubectl describe`), and both `kubectl get events` and `kubectl describe` list an object's
Events in the order they happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.kube.client import Kube

pytestmark = pytest.mark.integration


def test_a_repeated_event_is_one_object_with_a_count(
    kubeconfig: Path, kubectl, namespace: str
) -> None:
    kubectl("create", "configmap", "shop", "-n", namespace)
    regarding = Kube(kubeconfig).core.read_namespaced_config_map("shop", namespace).to_dict()
    regarding = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "shop", "namespace": namespace, "uid": regarding["metadata"]["uid"]},
    }
    kube = Kube(kubeconfig)
    for _ in range(3):
        kube.emit_event(regarding, "Normal", "Waiting", "waiting for the deploy window")
    kube.emit_event(regarding, "Warning", "MetricsUnavailable", "prometheus is down")

    events = kube.list_events(namespace, "shop")
    assert [(e["reason"], e.get("series", {}).get("count")) for e in events] == [
        ("Waiting", 3),
        ("MetricsUnavailable", None),
    ]

    # kubectl's views, in the order things happened: `get events` lists by name,
    # `describe` sorts by the series' last time, else eventTime.
    listed = kubectl("get", "events", "-n", namespace, "--no-headers").stdout
    assert listed.index("Waiting") < listed.index("MetricsUnavailable"), listed
    described = kubectl("describe", "configmap", "shop", "-n", namespace).stdout
    events_part = described[described.index("Events:"):]
    assert events_part.index("Waiting") < events_part.index("MetricsUnavailable"), described
    assert "(x3 over" in events_part, described

"""spec.deployWindow.blackouts as the real API server and kubectl take them: the CRD's
schema keeps start and end optional (a window of blackouts only) and refuses a blackout
time without its UTC offset before the controller ever sees it."""

from __future__ import annotations

import json

import pytest

CANARY = """
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata: {name: checkout}
spec:
  targetRef: {kind: Deployment, name: checkout}
  service: {port: 80, targetPort: 8080}
  steps:
    - setWeight: 10
  deployWindow:
"""
SALE = "{start: %s, end: 2026-12-01T00:00:00-05:00, reason: Black Friday sale}"


def test_blackouts_only_with_unquoted_date_times_are_stored_as_written(
    installed: None, kubectl, namespace: str
) -> None:
    # YAML would read an unquoted date-time as a timestamp; kubectl sends it as text.
    window = "    blackouts: [" + SALE % "2026-11-26T00:00:00-05:00" + "]\n"
    kubectl("apply", "-n", namespace, "-f", "-", input=CANARY + window)
    stored = json.loads(kubectl("get", "canary", "checkout", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["deployWindow"] == {
        "timezone": "UTC",
        "blackouts": [
            {
                "start": "2026-11-26T00:00:00-05:00",
                "end": "2026-12-01T00:00:00-05:00",
                "reason": "Black Friday sale",
            }
        ],
    }


@pytest.mark.parametrize("start", ['"2026-11-26"', '"2026-11-26T00:00:00"'])
def test_a_blackout_time_without_an_offset_is_refused(
    installed: None, kubectl, namespace: str, start: str
) -> None:
    window = "    blackouts: [" + SALE % start + "]\n"
    result = kubectl("apply", "-n", namespace, "-f", "-", input=CANARY + window, check=False)
    assert result.returncode != 0
    assert "spec.deployWindow.blackouts[0].start" in result.stderr

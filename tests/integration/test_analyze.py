"""`canary analyze` as a process against a real Prometheus loaded with known history.

The history is test_templates.py's: app "checkout" has a good canary, "payments" a bad one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_templates import BAD, GOOD, LIBRARY, history

from canary.sandbox.prometheus import Prometheus

REPO = Path(__file__).resolve().parents[2]


def canary(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CANARY_PROMETHEUS_URL"}
    env["CANARY_TEMPLATES_DIR"] = str(LIBRARY)
    return subprocess.run(
        [sys.executable, "-m", "canary", "analyze", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("analyze-prometheus"))
    server.backfill(history(int(time.time())))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _json(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_good_canary_passes_exit_0(prom: Prometheus) -> None:
    result = canary("--template", "http-error-rate-comparison", "--prometheus", prom.url,
                    "--arg", f"service={GOOD}", "--arg", "namespace=shop", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    (line,) = _json(result)
    assert {"name", "verdict", "value", "reason", "query"} <= set(line)
    assert line["name"] == "http-error-rate-comparison" and line["verdict"] == "Pass"
    assert line["value"] == pytest.approx(1.0, abs=0.05)
    assert "ratio" in line["reason"] and "(Pass)" in line["reason"]
    assert line["query"]["requestsQuery"]["canary"] == (
        'sum(increase(http_requests_total{namespace=~"shop", canary_dev_name="checkout", '
        'canary_dev_variant="canary"}[300s]))'
    )


def test_bad_canary_fails_exit_1(prom: Prometheus) -> None:
    result = canary("-t", "istio-latency-comparison", "--prometheus", prom.url,
                    "-a", f"service={BAD}")
    assert result.returncode == 1, result.stderr + result.stdout
    assert "istio-latency-comparison: Fail" in result.stdout
    assert ('bucketsQuery (canary): sum by (le) (increase(istio_request_duration_milliseconds_'
            'bucket{reporter="source"') in result.stdout


def test_no_data_is_inconclusive_exit_3(prom: Prometheus) -> None:
    result = canary("-t", "linkerd-error-rate", "--prometheus", prom.url,
                    "-a", "service=nosuchapp", "--json")
    assert result.returncode == 3, result.stderr + result.stdout
    (line,) = _json(result)
    assert (line["verdict"], line["value"]) == ("Inconclusive", None)
    assert "no data" in line["reason"]


def test_unreachable_prometheus_is_an_error_exit_4(prom: Prometheus) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = canary("-t", "envoy-error-rate-comparison", "--prometheus", closed,
                    "-a", f"service={GOOD}", "--json")
    assert result.returncode == 4, result.stderr + result.stdout
    (line,) = _json(result)
    assert line["verdict"] == "Error"
    assert f"cannot reach Prometheus at {closed}" in line["reason"]


def test_missing_arg_is_a_usage_error_exit_2(prom: Prometheus) -> None:
    result = canary("-t", "nginx-error-rate", "--prometheus", prom.url)
    assert result.returncode == 2
    assert "needs arg 'ingress'" in result.stderr and "--arg ingress=VALUE" in result.stderr


def test_canary_selector_stable_is_an_a_a_check(prom: Prometheus) -> None:
    """The bad app's canary is left out: stable against itself must not Fail."""
    result = canary("-t", "nginx-error-rate-comparison", "--prometheus", prom.url,
                    "-a", f"ingress={BAD}", "--canary-selector", "stable", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    (line,) = _json(result)
    assert line["verdict"] == "Pass"
    assert 'label_replace(vector(1), "canary_variant", "stable"' in (
        line["query"]["requestsQuery"]["canary"]
    )


def test_duration_measures_repeatedly(prom: Prometheus) -> None:
    result = canary("-t", f"{LIBRARY / 'prometheus.yaml'}#http-latency", "--prometheus",
                    prom.url, "-a", f"service={BAD}", "--duration", "2s", "--interval", "1s",
                    "--json")
    assert result.returncode == 1, result.stderr + result.stdout
    (line,) = _json(result)
    assert line["measurements"] == 3
    assert line["value"] == pytest.approx(0.8, rel=0.05)
    progress = [x for x in result.stderr.splitlines() if "http-latency: Fail" in x]
    assert len(progress) == 3, result.stderr

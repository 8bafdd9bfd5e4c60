"""Which namespace and context the CLI works in when none is given: kubectl's choice, the
kubeconfig context's namespace (not `default`), and --context picks another context."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canary.errors import PermanentError
from canary.kube.connect import Connection

pytestmark = pytest.mark.unit


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    cluster = {"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "demo"}},
            {"name": "bare", "context": {"cluster": "c", "user": "u"}},
        ],
        "current-context": "dev",
    }))
    return path


@pytest.mark.parametrize(
    ("context", "namespace"), [(None, "demo"), ("dev", "demo"), ("bare", "default")]
)
def test_the_namespace_is_the_contexts(kubeconfig: Path, context: str | None,
                                       namespace: str) -> None:
    assert Connection(kubeconfig, context).namespace == namespace


def test_an_unknown_context_names_the_ones_there_are(kubeconfig: Path) -> None:
    with pytest.raises(PermanentError, match=r"has no context 'prod' \(it has: dev, bare\)\. "
                       r"Fix: pass one of those to --context"):
        Connection(kubeconfig, "prod")

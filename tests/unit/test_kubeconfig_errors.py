"""A kubeconfig that cannot be used is one line naming it and the fix, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.errors import PermanentError
from canary.kube.client import Kube

pytestmark = pytest.mark.unit


def test_garbage_yaml(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("garbage: [\n")
    with pytest.raises(PermanentError, match=r"is not valid YAML \(line 2\)\. Fix: "):
        Kube(path)


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"is not a file\. Fix: pass the kubeconfig file"):
        Kube(tmp_path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"does not exist\. Fix: pass --kubeconfig"):
        Kube(tmp_path / "nope")

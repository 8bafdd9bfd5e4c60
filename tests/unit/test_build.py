"""The control-plane build explains failures instead of dumping a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from canary.sandbox import build


def test_a_failed_step_shows_the_tail_of_its_log(tmp_path: Path) -> None:
    script = "for i in $(seq 1 100); do echo compiling pkg$i; done; echo 'boom: no space'; exit 3"
    with pytest.raises(build.BuildError) as err:
        build._run_logged(["sh", "-c", script], tmp_path, tmp_path / "build.log",
                          dict(os.environ), lambda m: None, "build thing")
    text = str(err.value)
    assert "build thing failed (exit 3)" in text
    assert "boom: no space" in text and "pkg100" in text
    assert "pkg1\n" not in text  # only the tail, not the whole log


def test_progress_is_reported_while_a_step_runs(tmp_path: Path) -> None:
    seen: list[str] = []
    build._run_logged(["sh", "-c", "seq 1 120"], tmp_path, tmp_path / "log", dict(os.environ),
                      seen.append, "build thing")
    assert len(seen) == 2 and all("build thing" in line for line in seen)


def test_missing_go_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(build.BuildError, match="apt-get install -y golang-go"):
        build.require_go()


def test_cached_binaries_are_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_CACHE", str(tmp_path))
    build.etcd_path().parent.mkdir(parents=True)
    build.etcd_path().write_text("cached")
    report = build.build_etcd(lambda m: None)
    assert report.built is False and report.path == build.etcd_path()

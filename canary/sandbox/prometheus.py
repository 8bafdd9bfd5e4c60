"""A real Prometheus server on a free loopback port, for tests and the demo.

Scrape targets live in a file_sd file, so callers can add targets while it runs.
History can be backfilled from OpenMetrics text with promtool before the server
starts, so analysis tests run real PromQL over known data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from canary.sandbox import procs
from canary.sandbox.build import Progress


class PrometheusError(RuntimeError):
    """Prometheus or promtool failed; the message carries the log tail and the fix."""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrometheusError(
            f"{name} is not installed. Fix: apt-get install -y prometheus (or run `make setup`)."
        )
    return path


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Write OpenMetrics text (must end with '# EOF') as TSDB blocks into `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    src = data_dir.parent / f"{data_dir.name}-backfill.om"
    src.write_text(
        openmetrics
        if openmetrics.rstrip().endswith("# EOF")
        else openmetrics.rstrip() + "\n# EOF\n"
    )
    out = subprocess.run(
        [_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(src), str(data_dir)],
        capture_output=True,
        text=True,
    )
    src.unlink(missing_ok=True)
    if out.returncode != 0:
        raise PrometheusError(
            f"promtool backfill failed:\n{out.stdout[-1500:]}{out.stderr[-1500:]}"
        )


@dataclass
class Prometheus:
    workdir: Path
    scrape_interval: str = "1s"
    tie_to_parent: bool = True
    port: int = 0
    _proc: procs.Managed | None = None
    _targets: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def backfill(self, openmetrics: str) -> None:
        """Load history; restarts a running server so it sees the new blocks at once."""
        running = self._proc is not None
        if running:
            self.stop()
        backfill(openmetrics, self.data_dir)
        if running:
            self.start()

    def set_targets(
        self, job: str, targets: Iterable[str], labels: Mapping[str, str] | None = None
    ) -> None:
        """Scrape `targets` (host:port) as `job`, each series also carrying `labels` (e.g.
        service, variant); replaces the job's earlier targets (none: the job is dropped).
        Takes effect within the refresh interval."""
        items = list(targets)
        with self._lock:  # the stand-in kubelet calls this from its own thread
            if items:
                self._targets[job] = (items, dict(labels or {}))
            else:
                self._targets.pop(job, None)
            self._write_file_sd()

    def _write_file_sd(self) -> None:
        groups = [
            {"targets": t, "labels": {**extra, "job": job}}
            for job, (t, extra) in self._targets.items()
        ]
        tmp = self.workdir / "targets.json.tmp"
        tmp.write_text(json.dumps(groups))
        tmp.rename(self.workdir / "targets.json")

    def start(self, progress: Progress = lambda m: None, *, port: int | None = None) -> Prometheus:
        """Start on `port` (a restart keeps its port and data), or on a free one."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_file_sd()
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": "sandbox",
                    "file_sd_configs": [
                        {"files": [str(self.workdir / "targets.json")], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        for _attempt in range(3):
            self.port = port or procs.free_port()
            self._proc = procs.start(
                "prometheus",
                [
                    _binary("prometheus"),
                    f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.data_dir}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=30d",
                    "--log.level=warn",
                ],
                self.workdir,
                tie_to_parent=self.tie_to_parent,
            )
            if self._wait_ready():
                progress(f"prometheus ready at {self.url}")
                return self
            tail = self._proc.log_tail()
            self.stop()
            if "address already in use" not in tail:
                raise PrometheusError(f"prometheus did not become ready; its log ends:\n{tail}")
        raise PrometheusError("prometheus could not find a free port after 3 tries")

    def _wait_ready(self, timeout: float = 60) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """Instant query, for tests and the demo's live view; returns `data.result`."""
        params = {"query": promql} | ({"time": str(at)} if at is not None else {})
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        return body["data"]["result"]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

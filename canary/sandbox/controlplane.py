"""A real etcd + kube-apiserver on loopback, the envtest pattern.

There is no kube-controller-manager, scheduler or kubelet: Deployments never get pods.
Whatever plays the kubelet (the demo, the tests) patches Deployment /status the way
envtest users do. That keeps the cold build to two binaries and the start under ~10 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from canary.sandbox import certs, procs
from canary.sandbox.build import Progress, etcd_path, kube_apiserver_path


class ControlPlaneError(RuntimeError):
    """The control plane failed to start; the message carries the component's log tail."""


@dataclass
class ControlPlane:
    """Start with `start()`; `kubeconfig` is then an admin kubeconfig for the API server."""

    state: Path
    tie_to_parent: bool = True
    audit: bool = False  # log every request's user, verb and resource to audit_log
    server: str = ""
    version: str = ""
    etcd_version: str = ""
    etcd_endpoint: str = ""
    _procs: list[procs.Managed] = field(default_factory=list)
    _etcd_ports: tuple[int, int] = (0, 0)  # client, peer
    _api_port: int = 0
    _pki: certs.PKI | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def rundir(self) -> Path:
        return self.state / "run"

    @property
    def audit_log(self) -> Path:
        """JSON lines, one per request (with `audit`): how benchmarks count API calls."""
        return self.state / "audit.log"

    def _audit_flags(self) -> list[str]:
        if not self.audit:
            return []
        policy = self.state / "audit-policy.yaml"
        policy.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
            "rules:\n  - level: Metadata\n"
        )
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
        ]

    def _require_binaries(self) -> None:
        for path in (etcd_path(), kube_apiserver_path()):
            if not path.exists():
                raise ControlPlaneError(
                    f"{path} is missing. Fix: run `make setup` (or `canary sandbox setup`)"
                    " once to build the control plane from the Go module proxy."
                )

    def start(self, progress: Progress = lambda m: None) -> ControlPlane:
        self._require_binaries()
        started = time.monotonic()
        # Reap whatever a crashed earlier run left, before wiping its data directory.
        for name in ("kube-apiserver", "etcd"):
            procs.reap_leftover(self.rundir / f"{name}.pid")
        shutil.rmtree(self.state / "etcd-data", ignore_errors=True)
        pki = self._pki = certs.generate(self.state / "pki")
        try:
            self._start_etcd(progress)
            self._start_apiserver(pki, progress)
        except BaseException:
            self.stop()
            raise
        self._write_kubeconfig(pki)
        progress(f"control plane ready at {self.server} in {time.monotonic() - started:.1f}s")
        return self

    def kill(self, component: str) -> None:
        """kill -9 "etcd" or "kube-apiserver" (for chaos runs); `restart` brings it back."""
        proc = next(p for p in self._procs if p.name == component)
        os.kill(proc.pid, signal.SIGKILL)
        proc.proc.wait(timeout=10)
        self._procs.remove(proc)

    def restart(self, component: str, progress: Progress = lambda m: None) -> None:
        """Start a killed component again on its old port, etcd on its old data."""
        if component == "etcd":
            self._start_etcd(progress, self._etcd_ports)
        else:
            assert self._pki is not None, "restart() needs a started control plane"
            self._start_apiserver(self._pki, progress, self._api_port)

    def _start_etcd(self, progress: Progress, ports: tuple[int, int] | None = None) -> None:
        for _attempt in range(3):
            client, peer = ports or (procs.free_port(), procs.free_port())
            etcd = procs.start(
                "etcd",
                [
                    str(etcd_path()),
                    "--name",
                    "sandbox",
                    "--data-dir",
                    str(self.state / "etcd-data"),
                    "--listen-client-urls",
                    f"http://127.0.0.1:{client}",
                    "--advertise-client-urls",
                    f"http://127.0.0.1:{client}",
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{peer}",
                    "--initial-cluster",
                    f"sandbox=http://127.0.0.1:{peer}",
                    "--unsafe-no-fsync",
                    "--log-level",
                    "warn",
                ],
                self.rundir,
                tie_to_parent=self.tie_to_parent,
            )
            self._procs.append(etcd)
            url = f"http://127.0.0.1:{client}/health"
            if _wait_http(url, etcd, timeout=30, ctx=None):
                self._etcd_ports = (client, peer)
                self.etcd_endpoint = f"http://127.0.0.1:{client}"
                self.etcd_version = _json(f"http://127.0.0.1:{client}/version", None).get(
                    "etcdserver", "?"
                )
                progress(f"etcd {self.etcd_version} on 127.0.0.1:{client}")
                return
            tail = etcd.log_tail()
            etcd.stop()
            self._procs.remove(etcd)
            if "address already in use" not in tail:
                raise ControlPlaneError(f"etcd did not become healthy; its log ends:\n{tail}")
        raise ControlPlaneError("etcd could not find a free port after 3 tries")

    def _start_apiserver(
        self, pki: certs.PKI, progress: Progress, same_port: int | None = None
    ) -> None:
        ctx = self._client_ssl(pki)
        for _attempt in range(3):
            port = same_port or procs.free_port()
            api = procs.start(
                "kube-apiserver",
                [
                    str(kube_apiserver_path()),
                    f"--etcd-servers={self.etcd_endpoint}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={port}",
                    f"--tls-cert-file={pki.serving_cert}",
                    f"--tls-private-key-file={pki.serving_key}",
                    f"--client-ca-file={pki.ca_cert}",
                    "--authorization-mode=RBAC",
                    f"--service-account-key-file={pki.sa_pub}",
                    f"--service-account-signing-key-file={pki.sa_key}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    # Each Canary makes two Services: a /24 ran out at 126 Canaries.
                    "--service-cluster-ip-range=10.0.0.0/16",
                    # No controller-manager creates default ServiceAccounts, so this admission
                    # plugin would reject every Pod; envtest disables it for the same reason.
                    "--disable-admission-plugins=ServiceAccount",
                    "--allow-privileged=true",
                    f"--cert-dir={self.state / 'pki'}",
                    "--v=0",
                    *self._audit_flags(),
                ],
                self.rundir,
                tie_to_parent=self.tie_to_parent,
            )
            self._procs.append(api)
            self.server = f"https://127.0.0.1:{port}"
            progress(f"kube-apiserver starting on 127.0.0.1:{port}")
            if _wait_http(f"{self.server}/readyz", api, timeout=90, ctx=ctx):
                self._api_port = port
                self.version = _json(f"{self.server}/version", ctx).get("gitVersion", "?")
                return
            tail = api.log_tail()
            api.stop()
            self._procs.remove(api)
            if "address already in use" not in tail:
                raise ControlPlaneError(
                    f"kube-apiserver did not become ready; its log ends:\n{tail}"
                )
        raise ControlPlaneError("kube-apiserver could not find a free port after 3 tries")

    @staticmethod
    def _client_ssl(pki: certs.PKI) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return ctx

    def _write_kubeconfig(self, pki: certs.PKI) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "canary-sandbox",
            "clusters": [
                {
                    "name": "canary-sandbox",
                    "cluster": {"server": self.server, "certificate-authority": str(pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "canary-admin",
                    "user": {
                        "client-certificate": str(pki.admin_cert),
                        "client-key": str(pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "canary-sandbox",
                    "context": {
                        "cluster": "canary-sandbox",
                        "user": "canary-admin",
                        "namespace": "default",
                    },
                }
            ],
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.stop()
        self._procs.clear()


def _json(url: str, ctx: ssl.SSLContext | None) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return {}


def _wait_http(
    url: str, proc: procs.Managed, *, timeout: float, ctx: ssl.SSLContext | None
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return False


def binary_versions() -> str:
    """One line naming the real components, for test and demo headers."""

    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "missing"

    api = first_line([str(kube_apiserver_path()), "--version"]).replace("Kubernetes ", "")
    etcd = first_line([str(etcd_path()), "--version"]).replace("etcd Version: ", "")
    prom = first_line(["prometheus", "--version"])
    prom = prom.split()[2] if prom.startswith("prometheus, version") else prom
    return f"control plane: kube-apiserver {api}, etcd {etcd}; prometheus {prom}"

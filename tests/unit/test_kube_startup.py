"""What a client costs to build: the client library loads an API group's module (seconds
for core and apps) only when a command first uses that group."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "x",
}


def groups_loaded(tmp_path: Path, code: str) -> list[str]:
    """The API group modules loaded, in a fresh interpreter, after `code` ran with `kube`."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    program = (
        "import sys\n"
        "from canary.kube.client import Kube\n"
        f"kube = Kube({str(path)!r})\n"
        f"{code}\n"
        "print(' '.join(sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "                      if m.startswith('kubernetes.client.api.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


@pytest.mark.parametrize(
    ("code", "loaded"),
    [
        ("", []),
        ("kube.events; kube.coordination", ["coordination_v1_api", "events_v1_api"]),
        # What `canary status` and the steering verbs read (failing here: no server).
        (
            "for call in (kube.require_crds, lambda: kube.get_deployment('s', 'd'),\n"
            "             lambda: kube.list_events('s', 'n'), kube.whoami):\n"
            "    try: call()\n"
            "    except Exception: pass",
            ["custom_objects_api"],
        ),
        # What `canary abort` writes (the server is unreachable here: the call fails).
        ("try: kube.annotate_canary('shop', 'checkout', {'a': 'b'})\nexcept Exception: pass",
         ["custom_objects_api"]),
    ],
)
def test_a_client_loads_only_the_api_groups_it_uses(
    tmp_path: Path, code: str, loaded: list[str]
) -> None:
    assert groups_loaded(tmp_path, code) == loaded


def test_the_port_does_not_load_the_client_library() -> None:
    """The controller side and its test fakes are written against the port and its errors."""
    code = "import sys, canary.kube.port, canary.kube.errors; print('kubernetes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"

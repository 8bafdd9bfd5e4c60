"""Where the sandbox keeps its cache (binaries) and state (certs, data, kubeconfig)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Built and unpacked binaries; shared by every checkout on the machine."""
    return Path(os.environ.get("CANARY_CACHE", Path.home() / ".cache" / "canary"))


def bin_dir() -> Path:
    return cache_dir() / "bin"


def state_dir() -> Path:
    """The running sandbox: certificates, etcd data, kubeconfig, pid files, logs."""
    return Path(os.environ.get("CANARY_SANDBOX_DIR", cache_dir() / "sandbox"))

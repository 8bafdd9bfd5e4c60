"""What the controller needs from the Kubernetes API: plain dicts in and out."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

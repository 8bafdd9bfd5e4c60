"""What a router recorded of the user's route before its first write, read back.

Routers that rewrite a user's object keep the parts they replace as JSON in an
annotation on that object (written in the same write), so teardown can restore them.
"""

from __future__ import annotations

import json
from typing import Any


def read_record(text: str | None) -> dict[str, list[dict[str, Any]]] | None:
    """{route key: [entry]} from the annotation; None if absent, {} if not ours to read
    (someone edited it: the router falls back to the user's Service N)."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): [e for e in v if isinstance(e, dict)]
        for k, v in data.items()
        if isinstance(v, list)
    }

"""What every check reports, and the helpers that word it.

A :class:`Finding` names the field (``spec.steps[2].setWeight``), what is wrong and what
to do: the controller joins them into the Canary's Invalid condition, ``canary lint``
prints one a line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard


@dataclass(frozen=True)
class Finding:
    field: str  # path like "spec.steps[2].setWeight"
    message: str  # what is wrong
    fix: str  # what to do

    def __str__(self) -> str:
        return f"{self.field}: {self.message} ({self.fix})"


def short_repr(value: Any, limit: int = 40) -> str:
    """repr(value), cut to `limit` characters, in time bounded by `limit`.

    Values come from users: a YAML alias bomb is a list of 10^8 strings by reference (its
    repr would take minutes), and repr() of an int of over 4,300 digits raises ValueError.
    """
    text = _repr_prefix(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _repr_prefix(value: Any, budget: int) -> str:
    """repr(value), or a prefix of it at least `budget` characters long."""
    if is_int(value) and value.bit_length() > 4 * budget:  # more than `budget` digits
        return f"<{math.floor(math.log10(abs(value))) + 1}-digit integer>"
    if isinstance(value, str | bytes):
        return repr(value[:budget])
    if not isinstance(value, list | tuple | set | dict) or not value:
        return repr(value)
    opening, closing = (
        "[]" if isinstance(value, list) else "()" if isinstance(value, tuple) else "{}"
    )
    text = opening
    for item in value.items() if isinstance(value, dict) else value:
        if len(text) >= budget:
            return text
        left = budget - len(text)
        part = (
            f"{_repr_prefix(item[0], left)}: {_repr_prefix(item[1], left)}"
            if isinstance(value, dict)
            else _repr_prefix(item, left)
        )
        text += part if text == opening else ", " + part
    return text + closing


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def unique(findings: Iterable[Finding]) -> list[Finding]:
    """Each (field, message) once, however many checks came across it."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if (f.field, f.message) not in seen:
            seen.add((f.field, f.message))
            out.append(f)
    return out


def format_path(prefix: str, parts: Sequence[int | str]) -> str:
    out = prefix
    for part in parts:
        out += (
            f"[{short_repr(part)}]" if isinstance(part, int) else f".{part}" if out else str(part)
        )
    return out

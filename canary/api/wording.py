"""How findings are worded, shared by validation and the provider plug-ins' own checks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "shown", "split_fix"]


def split_fix(text: str, default_fix: str) -> tuple[str, str]:
    """Our errors read "what is wrong; what to do": split them into message and fix."""
    if "; " in text:
        message, fix = text.split("; ", 1)
        return message, fix
    return text, default_fix


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted, cut to ``limit`` characters with a count of the rest."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r} (+{len(text) - limit} more characters)"


def closest(word: str, candidates: Iterable[str], *, casefold: bool = False) -> str | None:
    """The candidate ``word`` was probably meant to be (a typo), if any."""
    options = list(candidates)
    if casefold:
        exact = [c for c in options if c.casefold() == word.casefold()]
        if exact:
            return exact[0]
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return match[0] if match else None

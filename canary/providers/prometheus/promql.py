"""Render PromQL query templates safely. Pure: no I/O.

A template may use three kinds of placeholder (spaces inside the braces are allowed):

- ``{{args.NAME}}``: the value of the analysis arg NAME;
- ``{{variant}}``: ``canary`` or ``stable`` (comparison metrics only);
- ``{{window}}``: the time since the step started, as a PromQL duration such as ``90s``
  (rounded up to whole seconds, at least ``1s``).

Any other ``{{...}}`` is an error, so a typo such as ``{{arg.service}}`` is reported
instead of being sent to Prometheus.

**Escaping.** A value can never change the query's structure. :func:`render` lexes the
template and inserts each value according to where its placeholder stands:

- inside a ``"double-quoted"`` string: backslash, ``"``, newline, carriage return, tab,
  other control characters and U+FFFD are escaped with PromQL (Go) escapes, so the
  label value arrives at Prometheus byte for byte. The other quote character (``'``)
  is left alone: PromQL rejects ``\\'`` inside double quotes ("unknown escape
  sequence"), so escaping it would break legitimate values.
- inside a ``'single-quoted'`` string: the same, with ``'`` escaped instead of ``"``.
- inside a ```raw``` string: there are no escapes in raw strings, so a value containing
  a backtick (or U+FFFD, which Prometheus' lexer rejects) cannot be represented and is
  an error; anything else goes in verbatim.
- inside a ``# comment``: any value without a line break (a line break would end the
  comment and turn the rest of the value into query text).
- anywhere else (bare query text): only a single PromQL identifier
  (``http_requests_total``), number (``0.5``, ``-1``, ``1e3``) or duration (``5m``,
  ``1h30m``) is accepted, so ``[{{args.range}}]`` or ``> {{args.limit}}`` still work
  but ``{{args.x}}`` can never smuggle in an operator, a selector or a comment.

Note that inside a regex matcher (``=~"{{args.x}}"``) the value is still interpreted as
a regular expression by Prometheus; escaping keeps it *inside the string*, it does not
make regex metacharacters literal.

Every problem raises :class:`~canary.errors.PermanentError` with a message that names
the arg and says what to change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from canary.errors import PermanentError

__all__ = ["escape_string", "format_window", "render"]

# A placeholder we understand: {{args.NAME}}, {{variant}}, {{window}}.
_PLACEHOLDER = re.compile(
    r"\{\{\s*(?:args\.(?P<arg>[A-Za-z0-9_][A-Za-z0-9_.-]*)|(?P<word>variant|window))\s*\}\}"
)
# Used only to quote an unknown placeholder in the error message.
_ANY_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{\{.{0,40}")

# Values allowed in bare query text: one identifier, one number or one duration.
_BARE_VALUE = re.compile(
    r"""
    [A-Za-z_:][A-Za-z0-9_:]*                                  # identifier / metric name
    | [+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?           # number
    | (?:\d+(?:ms|s|m|h|d|w|y))+                              # duration
    """,
    re.VERBOSE,
)

_CODE, _DOUBLE, _SINGLE, _RAW, _COMMENT = "code", '"', "'", "`", "#"

_SIMPLE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def format_window(seconds: float) -> str:
    """A duration in seconds as a PromQL duration: whole seconds rounded up, at least 1s."""
    if not math.isfinite(seconds):
        raise PermanentError(f"{{{{window}}}} needs a finite duration, got {seconds!r}")
    # Round to microseconds first so float noise (60.000000000001) does not add a second.
    whole = math.ceil(round(seconds, 6))
    return f"{max(whole, 1)}s"


def render(
    query: str,
    args: Mapping[str, str],
    *,
    variant: str | None = None,
    window_seconds: float | None = None,
) -> str:
    """Substitute the placeholders in ``query``; see the module docstring for the rules.

    Raises PermanentError when an arg is missing, a placeholder is unknown or not
    available here ({{variant}} / {{window}} without a value), or a value cannot be
    placed safely where its placeholder stands.
    """
    out: list[str] = []
    state = _CODE
    i = 0
    n = len(query)
    while i < n:
        if query.startswith("{{", i):
            match = _PLACEHOLDER.match(query, i)
            if match is None:
                shown = _ANY_PLACEHOLDER.match(query, i)
                text = shown.group(0) if shown else "{{"
                raise PermanentError(
                    f"unknown placeholder {text!r} in query; "
                    "supported: {{args.NAME}}, {{variant}}, {{window}}"
                )
            label, value = _resolve(match, args, variant, window_seconds)
            out.append(_place(value, label, state))
            i = match.end()
            continue

        ch = query[i]
        if state == _CODE:
            if ch in (_DOUBLE, _SINGLE, _RAW, _COMMENT):
                state = ch
        elif state in (_DOUBLE, _SINGLE):
            if ch == "\\":
                if query.startswith("{{", i + 1):
                    raise PermanentError(
                        "a placeholder directly after a backslash in a string is ambiguous; "
                        "remove the backslash"
                    )
                out.append(query[i : i + 2])
                i += 2
                continue
            if ch == "\n":
                raise PermanentError(
                    f"query has a line break inside a {state}-quoted string; "
                    "PromQL strings cannot span lines (write \\n)"
                )
            if ch == state:
                state = _CODE
        elif state == _RAW:
            if ch == _RAW:
                state = _CODE
        elif ch in "\r\n":  # comment
            state = _CODE
        out.append(ch)
        i += 1

    if state in (_DOUBLE, _SINGLE, _RAW):
        raise PermanentError(f"query has an unterminated {state}-quoted string")
    return "".join(out)


def _resolve(
    match: re.Match[str],
    args: Mapping[str, str],
    variant: str | None,
    window_seconds: float | None,
) -> tuple[str, str]:
    """(label for messages, raw value) for one placeholder."""
    arg = match.group("arg")
    if arg is not None:
        value = args.get(arg)
        if value is None:
            raise PermanentError(
                f"args.{arg} is not provided (add it to the Canary's analysis args)"
            )
        return f"args.{arg}", str(value)
    if match.group("word") == "variant":
        if variant is None:
            raise PermanentError(
                "{{variant}} is only available in a comparison's queries "
                "(requestsQuery, errorsQuery, bucketsQuery)"
            )
        return "variant", variant
    if window_seconds is None:
        raise PermanentError("{{window}} is only available in a comparison's queries")
    return "window", format_window(window_seconds)


def _place(value: str, label: str, state: str) -> str:
    """The text that replaces a placeholder for ``value`` in lexer state ``state``."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise PermanentError(f"{label} contains an invalid Unicode surrogate")
    if state in (_DOUBLE, _SINGLE):
        return escape_string(value, quote=state)
    if state == _RAW:
        if "`" in value or "\ufffd" in value:
            raise PermanentError(
                f"{label} contains a backtick or U+FFFD, which a `raw string` cannot hold; "
                'put the placeholder in double quotes instead ("{{' + label + '}}")'
            )
        return value
    if state == _COMMENT:
        if "\n" in value or "\r" in value:
            raise PermanentError(f"{label} contains a line break and is used in a # comment")
        return value
    if _BARE_VALUE.fullmatch(value) is None:
        raise PermanentError(
            f"{label} is used outside a quoted string, where only a single identifier, "
            f"number or duration is allowed, but its value is {value!r}; "
            'quote the placeholder in the query (label="{{' + label + '}}") '
            "or change the value"
        )
    return value


def escape_string(value: str, *, quote: str = '"') -> str:
    """Escape ``value`` for the inside of a PromQL string opened with ``quote`` (" or ')."""
    parts: list[str] = []
    for c in value:
        if c == quote:
            parts.append("\\" + c)
        elif c in _SIMPLE_ESCAPES:
            parts.append(_SIMPLE_ESCAPES[c])
        elif c < " " or c == "\x7f":
            parts.append(f"\\x{ord(c):02x}")
        elif c == "\ufffd":  # Prometheus' lexer rejects a literal U+FFFD as invalid UTF-8
            parts.append("\\ufffd")
        else:
            parts.append(c)
    return "".join(parts)

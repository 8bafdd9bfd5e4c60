"""Where a finding is: its file and line, and how it is printed (see lint.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from canary.validation import Finding

__all__ = ["KeyIndex", "Located", "line_of"]

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
# id(mapping node) -> key -> (key node, value node); valid while the document's nodes live
KeyIndex = dict[int, dict[str, tuple[yaml.Node, yaml.Node]]]


@dataclass(frozen=True)
class Located:
    """A finding (or a problem that stopped checking) with the file and line it is about."""

    file: str
    line: int
    finding: Finding

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        return _UNPRINTABLE.sub(_escape, f"{where}: {self.finding}")


# Keys and values from the file can hold line breaks (a finding is one line), terminal
# escapes, and lone surrogates from YAML "\ud800" escapes (which no terminal can print).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def line_of(root: yaml.Node, path: str, offset: int = 0, keys: KeyIndex | None = None) -> int:
    """1-based line of the field at `path` ("spec.steps[2].setWeight") under `root`.

    Walks as far down the path as the document goes: a field that exists gives the line
    of its key; a missing one gives the line of the deepest enclosing field that exists.
    Paths that are not field paths ("(document)") give the document's first line.

    `keys` keeps each mapping's keys between calls on the same document: searching the
    mapping instead makes a document with N unknown fields (N findings) take N^2 steps.
    """
    node: yaml.Node = root
    line = root.start_mark.line
    for match in _PATH_PART.finditer(path):
        key, index = match.group(1), match.group(2)
        if index is not None and isinstance(node, yaml.SequenceNode):
            i = int(index)
            if not 0 <= i < len(node.value):
                break
            node = node.value[i]
            line = node.start_mark.line
            continue
        if key is not None and isinstance(node, yaml.MappingNode):
            pair = _keys_of(node, {} if keys is None else keys).get(key)
            if pair is None:
                break
            line = pair[0].start_mark.line
            node = pair[1]
            continue
        break
    return offset + line + 1


def _keys_of(node: yaml.MappingNode, keys: KeyIndex) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    found = keys.get(id(node))
    if found is None:
        found = keys[id(node)] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                found.setdefault(k.value, (k, v))  # a repeated key: its first line
    return found

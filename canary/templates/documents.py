"""Reading YAML files, and the fenced YAML blocks of Markdown files, into documents that
know their lines (which files and objects ``canary lint`` reads: see lint.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from canary.api.base import GROUP
from canary.templates.located import KeyIndex, Located, line_of
from canary.validation import TEMPLATE_KINDS, Finding, short_repr

__all__ = [
    "KINDS",
    "YAML_SUFFIXES",
    "Document",
    "markdown_yaml_blocks",
    "read_documents",
]

KINDS = ("Canary", *TEMPLATE_KINDS)
YAML_SUFFIXES = (".yaml", ".yml")
MARKDOWN_SUFFIXES = (".md", ".markdown")
MAX_FILE_BYTES = 4 * 2**20  # far beyond any hand-written manifest; bounds lint's time

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_MENTIONS_GROUP = re.compile(r"apiVersion:\s*[\"']?" + re.escape(GROUP) + "/")


@dataclass
class Document:
    """One YAML document that may be a canary.dev object."""

    file: str
    data: Any
    node: yaml.Node | None
    line_offset: int  # added to the node's 0-based line to get the 1-based line in `file`
    keys: KeyIndex = field(default_factory=dict, repr=False, compare=False)  # for line_of

    @property
    def first_line(self) -> int:
        return self.line_offset + (self.node.start_mark.line if self.node is not None else 0) + 1

    def line(self, path: str) -> int:
        if self.node is None:
            return self.first_line
        return line_of(self.node, path, self.line_offset, self.keys)

    @property
    def kind(self) -> Any:
        return self.data.get("kind") if isinstance(self.data, Mapping) else None

    @property
    def ours(self) -> bool:
        """Whether the document is a canary.dev object (or clearly meant to be one)."""
        if not isinstance(self.data, Mapping):
            return False
        api = self.data.get("apiVersion")
        if isinstance(api, str):
            return api.split("/", 1)[0] == GROUP
        return api is None and self.kind in KINDS

    @property
    def name(self) -> str | None:
        return self._metadata("name")

    @property
    def namespace(self) -> str | None:
        return self._metadata("namespace")

    def _metadata(self, key: str) -> str | None:
        meta = self.data.get("metadata") if isinstance(self.data, Mapping) else None
        value = meta.get(key) if isinstance(meta, Mapping) else None
        return value if isinstance(value, str) and value else None


def read_documents(file: str) -> tuple[list[Document], list[Located]]:
    """Every YAML document in `file` (fenced YAML blocks of a Markdown file), and the
    problems that kept any of it from being read (unreadable file, YAML syntax error)."""
    try:
        size = Path(file).stat().st_size
        if size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // 2**20
            finding = Finding(
                "(file)",
                f"is {size / 2**20:.1f} MiB; canary lint reads files of at most {limit} MiB",
                "split it, or lint the manifests it is generated from",
            )
            return [], [Located(file, 0, finding)]
        data = Path(file).read_bytes()
    except OSError as err:
        finding = Finding("(file)", f"cannot be read: {err.strerror or err}", "check the file")
        return [], [Located(file, 0, finding)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        # The line of the first bad byte, so an editor can jump to it.
        line = data.count(b"\n", 0, err.start) + 1
        finding = Finding("(file)", f"cannot be read: {err}", "save the file as UTF-8")
        return [], [Located(file, line, finding)]
    problems: list[Located] = []
    if Path(file).suffix.lower() in MARKDOWN_SUFFIXES:
        docs: list[Document] = []
        for offset, block in markdown_yaml_blocks(text):
            if _MENTIONS_GROUP.search(block):
                docs += _parse(file, block, offset, problems)
        return docs, problems
    return _parse(file, text, 0, problems), problems


def markdown_yaml_blocks(text: str) -> Iterator[tuple[int, str]]:
    """(0-based line of the block's first content line, content) for each fenced YAML block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE_OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        fence = match.group("fence")
        info = match.group("info").strip().split()
        language = info[0].lower() if info else ""
        close = re.compile(
            r"^[ \t]{0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$"
        )
        end = i + 1
        while end < len(lines) and close.match(lines[end]) is None:
            end += 1
        if language in ("yaml", "yml"):
            yield i + 1, "\n".join(lines[i + 1 : end]) + "\n"
        i = end + 1


def _parse(file: str, text: str, offset: int, problems: list[Located]) -> list[Document]:
    """The documents of `text`; what stops the reading is added to `problems`."""
    docs: list[Document] = []
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # rejects control characters at once
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            docs.append(Document(file, data, node, offset))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        if mark is None and isinstance(err, yaml.reader.ReaderError):
            line = offset + text.count("\n", 0, err.position) + 1
        else:
            line = offset + (mark.line + 1 if mark is not None else 1)
        problem = getattr(err, "problem", None) or getattr(err, "reason", None)
        problem = problem or str(err).splitlines()[0]
        context = getattr(err, "context", None)
        message = f"is not valid YAML: {problem}" + (f" ({context})" if context else "")
        problems.append(
            Located(file, line, Finding("(yaml)", message, "fix the YAML syntax at this line"))
        )
    except _UnreadableValue as err:
        node = err.node
        what = node.tag.replace("tag:yaml.org,2002:", "!!")
        if isinstance(node, yaml.ScalarNode):
            what += f": {short_repr(node.value)}"
        finding = Finding(
            "(yaml)",
            f"has a value that cannot be read as {what}",
            "correct the value, or quote it to make it a string",
        )
        problems.append(Located(file, offset + node.start_mark.line + 1, finding))
    except RecursionError:  # no position: reported at the document's first line
        finding = Finding("(yaml)", "nests too deeply to read", "flatten the document")
        problems.append(Located(file, offset + 1, finding))
    finally:
        if loader is not None:
            loader.dispose()
    return docs


class _UnreadableValue(Exception):
    """A value _Loader could not construct, with its node (which knows the line)."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__(node.tag)
        self.node = node


class _Loader(yaml.SafeLoader):
    """SafeLoader that says which value it could not construct.

    PyYAML's constructors fail on some scalars with bare Python errors and no position:
    ValueError (``!!int abc``, an int of over 4,300 digits, ``!!timestamp 2024-13-45``),
    IndexError (``!!int ""``), KeyError (``!!bool maybe``), AttributeError
    (``!!timestamp abc``).
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, LookupError, AttributeError) as err:
            raise _UnreadableValue(node) from err

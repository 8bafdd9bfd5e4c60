"""``canary lint``: offline checks of Canary, AnalysisTemplate and ClusterAnalysisTemplate YAML.

The rules are canary.validation's (schema, increasing weights, durations, placeholders,
required args, ...); this module finds the objects in files and points each Finding at
the line it is about.

What gets linted:

- **Paths.** Files are read as YAML (every document of a multi-document file);
  directories are searched recursively for ``*.yaml`` and ``*.yml``; Markdown files
  (``*.md``, ``*.markdown``) contribute each fenced ```` ```yaml ```` / ```` ```yml ````
  block that mentions ``apiVersion: canary.dev/``, with lines counted in the Markdown file.
- **Objects.** A document is linted when its apiVersion is in the ``canary.dev`` group,
  or when it has no apiVersion but one of our kinds. Everything else (CRDs, RBAC,
  Deployments, kustomizations) is skipped silently, so ``manifests/`` can be linted whole.
- **References.** Templates referenced by a Canary must be among the given files: an
  AnalysisTemplate is visible to a Canary when either leaves ``metadata.namespace`` out
  or both name the same namespace; a ClusterAnalysisTemplate is visible to all. A template
  defined twice (same kind, name and namespace) is a finding at the second definition.
  A referenced template that is itself invalid still satisfies the reference (its own
  findings say what is wrong); only its args are then checked.

Each finding is printed as ``FILE:LINE: field: message (fix)``, on one line: line breaks,
other control characters and lone surrogates in it are printed as escapes (``\\n``). LINE
is the line of the offending field, or of the nearest enclosing field that exists (a
missing ``spec.steps`` points at ``spec``), or of the document's first line.

A file that cannot be checked at all (missing, unreadable, or not valid YAML) is kept
apart in ``LintReport.unchecked``, because ``canary lint`` exits differently for it (codes
in canary/cli/exits.py); a YAML syntax error is still printed as a ``FILE:LINE:`` line, at
the error's position.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from canary.api.analysis_template import AnalysisTemplateSpec, TemplateArg
from canary.api.base import GROUP
from canary.api.canary import template_key
from canary.validation import (
    TEMPLATE_KINDS,
    Finding,
    short_repr,
    validate_canary,
    validate_template,
)

__all__ = [
    "Document",
    "LintReport",
    "Located",
    "line_of",
    "lint_paths",
    "read_documents",
]

KINDS = ("Canary", *TEMPLATE_KINDS)
YAML_SUFFIXES = (".yaml", ".yml")
MARKDOWN_SUFFIXES = (".md", ".markdown")
MAX_FILE_BYTES = 4 * 2**20  # far beyond any hand-written manifest; bounds lint's time

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MENTIONS_GROUP = re.compile(r"apiVersion:\s*[\"']?" + re.escape(GROUP) + "/")
# id(mapping node) -> key -> (key node, value node); valid while the document's nodes live
_KeyIndex = dict[int, dict[str, tuple[yaml.Node, yaml.Node]]]


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


@dataclass
class Document:
    """One YAML document that may be a canary.dev object."""

    file: str
    data: Any
    node: yaml.Node | None
    line_offset: int  # added to the node's 0-based line to get the 1-based line in `file`
    keys: _KeyIndex = field(default_factory=dict, repr=False, compare=False)  # for line_of

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
        meta = self.data.get("metadata") if isinstance(self.data, Mapping) else None
        name = meta.get("name") if isinstance(meta, Mapping) else None
        return name if isinstance(name, str) and name else None

    @property
    def namespace(self) -> str | None:
        meta = self.data.get("metadata") if isinstance(self.data, Mapping) else None
        ns = meta.get("namespace") if isinstance(meta, Mapping) else None
        return ns if isinstance(ns, str) and ns else None


@dataclass
class LintReport:
    findings: list[Located] = field(default_factory=list)  # problems in the objects
    unchecked: list[Located] = field(default_factory=list)  # files that could not be read
    files: int = 0
    objects: int = 0
    order: list[str] = field(default_factory=list)  # files in the order they were given

    @property
    def lines(self) -> list[str]:
        """Every problem as a FILE:LINE: line, in file order then line order."""
        everything = self.unchecked + self.findings
        files = dict.fromkeys([*self.order, *(x.file for x in everything)])
        order = {f: i for i, f in enumerate(files)}
        return [str(x) for x in sorted(everything, key=lambda x: (order[x.file], x.line))]

    def summary(self) -> str:
        files = _plural(self.files, "file")
        objects = _plural(self.objects, "canary.dev object")
        if self.unchecked:
            return (
                f"{_plural(len(self.unchecked), 'file')} could not be checked; "
                f"{_plural(len(self.findings), 'finding')} in {objects} from {files}"
            )
        if self.findings:
            return f"{_plural(len(self.findings), 'finding')} in {objects} from {files}"
        return f"ok: {objects} in {files}"


# ---------------------------------------------------------------- entry point


def lint_paths(paths: Sequence[str | Path]) -> LintReport:
    """Lint every canary.dev object in `paths` (files, directories, Markdown)."""
    report = LintReport()
    documents: list[Document] = []
    for file in _expand(paths, report):
        report.files += 1
        documents += _read(file, report)
    ours = [d for d in documents if d.ours]
    report.objects = len(ours)
    templates, duplicates = _templates(ours)
    report.findings += duplicates
    for doc in ours:
        report.findings += _lint_document(doc, templates)
    return report


def _expand(paths: Sequence[str | Path], report: LintReport) -> Iterator[str]:
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in YAML_SUFFIXES
            )
            for p in found:
                if p.resolve() not in seen:
                    seen.add(p.resolve())
                    report.order.append(str(p))
                    yield str(p)
        elif path.is_file():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                report.order.append(str(raw))
                yield str(raw)
        else:
            report.order.append(str(raw))
            report.unchecked.append(
                Located(
                    str(raw),
                    0,
                    Finding(
                        "(file)",
                        "does not exist" if not path.exists() else "is not a file or directory",
                        "check the path",
                    ),
                )
            )


def read_documents(file: str) -> tuple[list[Document], list[Located]]:
    """Every YAML document in `file` (fenced YAML blocks of a Markdown file), and the
    problems that kept any of it from being read (unreadable file, YAML syntax error)."""
    report = LintReport()
    docs = _read(file, report)
    return docs, report.unchecked


def _read(file: str, report: LintReport) -> list[Document]:
    try:
        size = Path(file).stat().st_size
        if size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // 2**20
            finding = Finding(
                "(file)",
                f"is {size / 2**20:.1f} MiB; canary lint reads files of at most {limit} MiB",
                "split it, or lint the manifests it is generated from",
            )
            report.unchecked.append(Located(file, 0, finding))
            return []
        data = Path(file).read_bytes()
    except OSError as err:
        report.unchecked.append(
            Located(
                file,
                0,
                Finding("(file)", f"cannot be read: {err.strerror or err}", "check the file"),
            )
        )
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        # The line of the first bad byte, so an editor can jump to it.
        line = data.count(b"\n", 0, err.start) + 1
        finding = Finding("(file)", f"cannot be read: {err}", "save the file as UTF-8")
        report.unchecked.append(Located(file, line, finding))
        return []
    if Path(file).suffix.lower() in MARKDOWN_SUFFIXES:
        docs: list[Document] = []
        for offset, block in markdown_yaml_blocks(text):
            if _MENTIONS_GROUP.search(block):
                docs += _parse(file, block, offset, report)
        return docs
    return _parse(file, text, 0, report)


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


def _parse(file: str, text: str, offset: int, report: LintReport) -> list[Document]:
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
        report.unchecked.append(
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
        report.unchecked.append(Located(file, offset + node.start_mark.line + 1, finding))
    except RecursionError:  # no position: reported at the document's first line
        finding = Finding("(yaml)", "nests too deeply to read", "flatten the document")
        report.unchecked.append(Located(file, offset + 1, finding))
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


# ---------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Template:
    doc: Document
    key: str  # template_key(name, cluster)
    spec: AnalysisTemplateSpec


def _templates(docs: Iterable[Document]) -> tuple[list[_Template], list[Located]]:
    found: list[_Template] = []
    duplicates: list[Located] = []
    first: dict[tuple[str, str | None], Document] = {}
    for doc in docs:
        if doc.kind not in TEMPLATE_KINDS or doc.name is None:
            continue
        cluster = doc.kind == "ClusterAnalysisTemplate"
        key = template_key(doc.name, cluster)
        scope = None if cluster else doc.namespace
        earlier = first.get((key, scope))
        if earlier is not None:
            duplicates.append(
                Located(
                    doc.file,
                    doc.line("metadata.name"),
                    Finding(
                        "metadata.name",
                        f"{doc.kind} {doc.name!r} is already defined at "
                        f"{earlier.file}:{earlier.line('metadata.name')}",
                        "rename one of them, or remove the copy",
                    ),
                )
            )
            continue
        first[(key, scope)] = doc
        found.append(_Template(doc, key, _spec_for_references(doc.data.get("spec"))))
    return found, duplicates


def _spec_for_references(spec: Any) -> AnalysisTemplateSpec:
    """The template's spec as Canary validation needs it.

    A valid spec is used as is. An invalid one still exists (its own findings say what is
    wrong), so a reference to it must not be reported as missing: it is stood in for by
    its args alone, without metrics, so only the Canary's args are checked against it.
    """
    try:
        return AnalysisTemplateSpec.model_validate(spec)
    except ValidationError:
        pass
    args: list[TemplateArg] = []
    raw = spec.get("args") if isinstance(spec, Mapping) else None
    for item in raw if isinstance(raw, list) else []:
        try:
            args.append(TemplateArg.model_validate(item))
        except ValidationError:
            continue
    return AnalysisTemplateSpec.model_construct(args=args, metrics=[])


def _visible(templates: Sequence[_Template], canary: Document) -> dict[str, AnalysisTemplateSpec]:
    out: dict[str, AnalysisTemplateSpec] = {}
    for t in templates:
        if t.key.startswith("cluster/"):
            out.setdefault(t.key, t.spec)
            continue
        ns, want = t.doc.namespace, canary.namespace
        if ns is None or want is None or ns == want:
            out.setdefault(t.key, t.spec)
    return out


# ---------------------------------------------------------------- one document


def _lint_document(doc: Document, templates: Sequence[_Template]) -> list[Located]:
    kind = doc.kind
    if kind == "Canary":
        findings = validate_canary(doc.data, _visible(templates, doc))
    elif kind in TEMPLATE_KINDS:
        findings = validate_template(doc.data)
    else:
        close = (
            difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.6) if isinstance(kind, str) else []
        )
        findings = [
            Finding(
                "kind",
                "is missing" if kind is None else f"{short_repr(kind)} is not a {GROUP} kind",
                f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(KINDS)}",
            )
        ]
    return [Located(doc.file, doc.line(f.field), f) for f in findings]


# ---------------------------------------------------------------- lines


def line_of(root: yaml.Node, path: str, offset: int = 0, keys: _KeyIndex | None = None) -> int:
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


def _keys_of(node: yaml.MappingNode, keys: _KeyIndex) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    found = keys.get(id(node))
    if found is None:
        found = keys[id(node)] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                found.setdefault(k.value, (k, v))  # a repeated key: its first line
    return found


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

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

Each finding is printed as ``FILE:LINE: field: message (fix)``. LINE is the line of the
offending field, or of the nearest enclosing field that exists (a missing ``spec.steps``
points at ``spec``), or of the document's first line.

Exit status (see :func:`exit_code`): 0 clean, 1 findings, 2 when a file could not be
checked at all (missing, unreadable, or not valid YAML; a YAML syntax error is still
printed as a ``FILE:LINE:`` line, at the error's position).
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

from canary.models import GROUP, AnalysisTemplateSpec, TemplateArg
from canary.validation import (
    TEMPLATE_KINDS,
    Finding,
    template_key,
    validate_canary,
    validate_template,
)

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FINDINGS",
    "EXIT_UNCHECKED",
    "Document",
    "LintReport",
    "Located",
    "exit_code",
    "line_of",
    "lint_paths",
    "read_documents",
]

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNCHECKED = 0, 1, 2

KINDS = ("Canary", *TEMPLATE_KINDS)
YAML_SUFFIXES = (".yaml", ".yml")
MARKDOWN_SUFFIXES = (".md", ".markdown")
MAX_FILE_BYTES = 4 * 2**20  # far beyond any hand-written manifest; bounds lint's time

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MENTIONS_GROUP = re.compile(r"apiVersion:\s*[\"']?" + re.escape(GROUP) + "/")


@dataclass(frozen=True)
class Located:
    """A finding (or a problem that stopped checking) with the file and line it is about."""

    file: str
    line: int
    finding: Finding

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        return f"{where}: {self.finding}"


@dataclass
class Document:
    """One YAML document that may be a canary.dev object."""

    file: str
    data: Any
    node: yaml.Node | None
    line_offset: int  # added to the node's 0-based line to get the 1-based line in `file`

    @property
    def first_line(self) -> int:
        return self.line_offset + (self.node.start_mark.line if self.node is not None else 0) + 1

    def line(self, path: str) -> int:
        if self.node is None:
            return self.first_line
        return line_of(self.node, path, self.line_offset)

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


def exit_code(report: LintReport) -> int:
    if report.unchecked:
        return EXIT_UNCHECKED
    return EXIT_FINDINGS if report.findings else EXIT_CLEAN


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
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        report.unchecked.append(
            Located(file, 0, Finding("(file)", f"cannot be read: {reason}", "check the file"))
        )
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
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # rejects control characters at once
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
    # Errors without a position are reported at the document's first line.
    except RecursionError:
        finding = Finding("(yaml)", "nests too deeply to read", "flatten the document")
        report.unchecked.append(Located(file, offset + 1, finding))
    except ValueError as err:  # a tag the loader cannot honour: !!int abc, a 5,000-digit int
        finding = Finding("(yaml)", f"has a value that cannot be read: {err}", "fix the value")
        report.unchecked.append(Located(file, offset + 1, finding))
    finally:
        if loader is not None:
            loader.dispose()
    return docs


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
        close = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.6)
        findings = [
            Finding(
                "kind",
                "is missing" if kind is None else f"{kind!r} is not a {GROUP} kind",
                f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(KINDS)}",
            )
        ]
    return [Located(doc.file, doc.line(f.field), f) for f in findings]


# ---------------------------------------------------------------- lines


def line_of(root: yaml.Node, path: str, offset: int = 0) -> int:
    """1-based line of the field at `path` ("spec.steps[2].setWeight") under `root`.

    Walks as far down the path as the document goes: a field that exists gives the line
    of its key; a missing one gives the line of the deepest enclosing field that exists.
    Paths that are not field paths ("(document)") give the document's first line.
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
            pair = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == key
                ),
                None,
            )
            if pair is None:
                break
            line = pair[0].start_mark.line
            node = pair[1]
            continue
        break
    return offset + line + 1


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

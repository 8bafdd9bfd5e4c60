"""``canary lint``: offline checks of Canary, AnalysisTemplate and ClusterAnalysisTemplate YAML.

The rules are canary.validation's (schema, increasing weights, durations, placeholders,
required args, ...); this module finds the objects in files (documents.py reads them) and
points each Finding at the line it is about (located.py).

What gets linted:

- **Paths.** Files are read as YAML (every document of a multi-document file);
  directories are searched recursively for ``*.yaml`` and ``*.yml``; Markdown files
  (``*.md``, ``*.markdown``) contribute each fenced ```` ```yaml ```` / ```` ```yml ````
  block that mentions ``apiVersion: canary.dev/``, with lines counted in the Markdown file.
- **Objects.** A document is linted when its apiVersion is in the ``canary.dev`` group,
  or when it has no apiVersion but one of our kinds. Everything else (CRDs, RBAC,
  Deployments, Argo Rollouts) is skipped, so ``manifests/`` can be linted whole. Kinds
  outside Kubernetes' own API groups are named in a note (:meth:`LintReport.note`), so
  an Argo Rollout that was meant to be a Canary is not mistaken for a clean one.
- **Directories without YAML.** A directory given that holds no ``*.yaml`` or ``*.yml``
  file cannot be checked: a wrong path must not read as "ok".
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from canary.api.analysis_template import AnalysisTemplateSpec, TemplateArg
from canary.api.base import GROUP
from canary.api.canary import template_key
from canary.templates.documents import KINDS, YAML_SUFFIXES, Document, read_documents
from canary.templates.located import Located
from canary.validation import (
    TEMPLATE_KINDS,
    Finding,
    short_repr,
    validate_canary,
    validate_template,
)

__all__ = ["LintReport", "lint_paths"]


@dataclass
class LintReport:
    findings: list[Located] = field(default_factory=list)  # problems in the objects
    unchecked: list[Located] = field(default_factory=list)  # files that could not be read
    files: int = 0
    objects: int = 0
    order: list[str] = field(default_factory=list)  # files in the order they were given
    skipped: dict[str, int] = field(default_factory=dict)  # "Kind (apiVersion)" -> count
    # of kinds outside Kubernetes' own groups

    @property
    def lines(self) -> list[str]:
        """Every problem as a FILE:LINE: line, in file order then line order."""
        everything = self.unchecked + self.findings
        files = dict.fromkeys([*self.order, *(x.file for x in everything)])
        order = {f: i for i, f in enumerate(files)}
        return [str(x) for x in sorted(everything, key=lambda x: (order[x.file], x.line))]

    def note(self) -> str | None:
        if not self.skipped:
            return None
        count = sum(self.skipped.values())
        return (
            f"note: skipped {_plural(count, 'object')} of kinds canary lint does not know: "
            + ", ".join(sorted(self.skipped))
        )

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
        docs, problems = read_documents(file)
        documents += docs
        report.unchecked += problems
    ours = [d for d in documents if d.ours]
    for doc in documents:
        if not doc.ours and isinstance(doc.kind, str):
            api = doc.data.get("apiVersion")
            if not (isinstance(api, str) and _kubernetes_group(api)):
                kind = f"{doc.kind} ({api})" if isinstance(api, str) else doc.kind
                report.skipped[kind] = report.skipped.get(kind, 0) + 1
    report.objects = len(ours)
    templates, duplicates = _templates(ours)
    report.findings += duplicates
    for doc in ours:
        report.findings += _lint_document(doc, templates)
    return report


def _kubernetes_group(api_version: str) -> bool:
    """Whether apiVersion is Kubernetes' own: core ("v1"), a bare group ("apps/v1") or
    one under k8s.io (RBAC, CRDs, kustomize): skipping these surprises nobody."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def _expand(paths: Sequence[str | Path], report: LintReport) -> Iterator[str]:
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in YAML_SUFFIXES
            )
            if not found:
                report.order.append(str(raw))
                report.unchecked.append(
                    Located(
                        str(raw),
                        0,
                        Finding(
                            "(directory)",
                            "has no *.yaml or *.yml files",
                            "check the path, or name the files",
                        ),
                    )
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
        findings = validate_canary(doc.data, _visible(templates, doc), from_files=True)
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


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

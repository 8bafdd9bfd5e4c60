"""Where ``canary analyze --template`` finds its template: a file, ``FILE#NAME``, or a
name in the template library; the template is validated before it is used (see analyze.py)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.templates.documents import YAML_SUFFIXES, Document, read_documents
from canary.templates.located import Located
from canary.validation import TEMPLATE_KINDS, validate_template

__all__ = ["AnalyzeError", "Template", "library_dir", "load_template"]

LIBRARY_ENV = "CANARY_TEMPLATES_DIR"


class AnalyzeError(Exception):
    """A usage or configuration problem (exit 2); the message says what to change."""


@dataclass(frozen=True)
class Template:
    name: str
    kind: str
    source: str  # the file it came from
    spec: AnalysisTemplateSpec


def library_dir() -> Path:
    """Where template names are looked up: $CANARY_TEMPLATES_DIR, else analysis_templates/
    next to the package (a source checkout), else ./analysis_templates."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2] / "analysis_templates"
    return beside if beside.is_dir() else Path("analysis_templates")


def load_template(ref: str, library: Path | None = None) -> Template:
    """The template named by ``ref``: FILE, FILE#NAME, or a name in the library."""
    path_text, _, wanted = ref.partition("#")
    path = Path(path_text)
    if path.is_file():
        docs = _template_docs(str(path))
        return _pick(docs, wanted or None, str(path))
    if wanted or path.suffix.lower() in YAML_SUFFIXES or os.sep in path_text:
        raise AnalyzeError(f"--template {ref}: no such file {path_text!r}")
    library = library or library_dir()
    files = (
        sorted(p for p in library.rglob("*") if p.suffix.lower() in YAML_SUFFIXES)
        if library.is_dir()
        else []
    )
    names: list[str] = []
    for file in files:
        try:
            docs = _template_docs(str(file))
        except AnalyzeError:
            continue  # a broken file elsewhere in the library does not hide the others
        names += [d.name for d in docs if d.name]
        matches = [d for d in docs if d.name == ref]
        if matches:
            return _pick(matches, ref, str(file))
    if not files:
        raise AnalyzeError(
            f"--template {ref}: no such file, and no template library at {library} "
            f"(pass a file, or set {LIBRARY_ENV})"
        )
    close = difflib.get_close_matches(ref, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(sorted(names))
    raise AnalyzeError(
        f"--template {ref}: no such file, and no template of that name in {library} ({hint})"
    )


def _template_docs(file: str) -> list[Document]:
    docs, problems = read_documents(file)
    if problems:
        raise AnalyzeError("\n".join(str(p) for p in problems))
    return [d for d in docs if d.kind in TEMPLATE_KINDS]


def _pick(docs: Sequence[Document], name: str | None, file: str) -> Template:
    if name is not None:
        docs = [d for d in docs if d.name == name]
        if not docs:
            raise AnalyzeError(f"--template {file}#{name}: {file} has no template {name!r}")
    if not docs:
        raise AnalyzeError(
            f"--template {file}: it holds no AnalysisTemplate or ClusterAnalysisTemplate"
        )
    if len(docs) > 1:
        names = ", ".join(d.name or "?" for d in docs)
        raise AnalyzeError(
            f"--template {file}: it holds {len(docs)} templates ({names}); "
            f"pick one with --template {file}#NAME or --template NAME"
        )
    doc = docs[0]
    findings = validate_template(doc.data)
    if findings:
        lines = [str(Located(doc.file, doc.line(f.field), f)) for f in findings]
        raise AnalyzeError(
            "the template is not valid (canary lint shows the same):\n" + "\n".join(lines)
        )
    spec = AnalysisTemplateSpec.model_validate(doc.data["spec"])
    return Template(doc.name or "?", str(doc.kind), doc.file, spec)

"""canary lint: finds canary.dev objects in files, points each finding at its line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from canary.cli.templates import lint_exit_code, register
from canary.templates.documents import markdown_yaml_blocks, read_documents
from canary.templates.lint import lint_paths
from canary.templates.located import line_of

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """\
apiVersion: canary.dev/v1alpha1
kind: AnalysisTemplate
metadata:
  name: http-error-rate
spec:
  args:
    - name: service
  metrics:
    - name: error-rate
      provider:
        prometheus:
          query: sum(rate(x{service="{{args.service}}"}[1m]))
      thresholdRange: {max: 0.01}
"""

CANARY = """\
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata:
  name: checkout
  namespace: shop
spec:
  targetRef: {name: checkout}
  service: {port: 80}
  steps:
    - setWeight: 10
    - analysis:
        templates:
          - templateName: http-error-rate
    - setWeight: 50
  analysis:
    templates: [{templateName: http-error-rate}]
    args: [{name: service, value: checkout}]
"""


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (id, files {name: content}, expected output lines (regex, in order), exit code)
CASES: list[tuple[str, dict[str, str], list[str], int]] = [
    ("clean", {"c.yaml": CANARY + "---\n" + TEMPLATE}, [], 0),
    (
        "weights-decrease",
        {"c.yaml": _edit(CANARY, "setWeight: 50", "setWeight: 5"), "t.yaml": TEMPLATE},
        [r"c\.yaml:14: spec\.steps\[2\]\.setWeight: 5 is lower than the previous weight 10 "
         r"\(weights must increase; reorder the steps\)"],
        1,
    ),
    (
        "weight-above-100",
        {"c.yaml": _edit(CANARY, "setWeight: 50", "setWeight: 150"), "t.yaml": TEMPLATE},
        [r"c\.yaml:14: spec\.steps\[2\]\.setWeight: .*100"],
        1,
    ),
    (
        "missing-template",
        {"c.yaml": CANARY},
        [r"c\.yaml:13: spec\.steps\[1\]\.analysis\.templates\[0\]\.templateName: "
         r"AnalysisTemplate 'http-error-rate' is not among the files given",
         r"c\.yaml:16: spec\.analysis\.templates\[0\]\.templateName: AnalysisTemplate "
         r"'http-error-rate' is not among the files given"],
        1,
    ),
    (
        "misspelt-template",
        {"c.yaml": _edit(CANARY, "- templateName: http-error-rate",
                         "- templateName: http-eror-rate"),
         "t.yaml": TEMPLATE},
        [r"c\.yaml:13: .*templateName: AnalysisTemplate 'http-eror-rate' is not among the "
         r"files given.*"
         r"\(did you mean 'http-error-rate'\?\)"],
        1,
    ),
    (
        "missing-required-arg",
        {"c.yaml": _edit(CANARY, "    args: [{name: service, value: checkout}]\n", ""),
         "t.yaml": TEMPLATE},
        [r"c\.yaml:11: spec\.steps\[1\]\.analysis\.args: template 'http-error-rate' needs arg "
         r"'service'.*\(add \{name: service, value: \.\.\.\}",
         r"c\.yaml:15: spec\.analysis\.args: template 'http-error-rate' needs arg 'service'"],
        1,
    ),
    (
        "bad-duration",
        {"c.yaml": _edit(CANARY, "    - setWeight: 50\n", "    - pause: {duration: 2 minutes}\n"
                         "    - setWeight: 50\n"), "t.yaml": TEMPLATE},
        [r"c\.yaml:14: spec\.steps\[2\]\.pause\.duration: '2 minutes' is not a duration "
         r"\(write a number with a unit"],
        1,
    ),
    (
        "unknown-field-in-spec",
        {"c.yaml": _edit(CANARY, "  service: {port: 80}\n", "  service: {port: 80}\n  stepz: []\n"),
         "t.yaml": TEMPLATE},
        [r"c\.yaml:9: spec\.stepz: "],
        1,
    ),
    (
        "template-undeclared-arg",
        {"t.yaml": _edit(TEMPLATE, "{{args.service}}", "{{args.svc}}")},
        [r"t\.yaml:12: spec\.metrics\[0\]\.provider\.prometheus\.query: uses \{\{args\.svc\}\} "
         r"but spec\.args does not declare 'svc'"],
        1,
    ),
    (
        "template-no-threshold-or-comparison",
        {"t.yaml": _edit(TEMPLATE, "      thresholdRange: {max: 0.01}\n", "")},
        [r"t\.yaml:9: spec\.metrics\[0\]: has both or neither of thresholdRange and comparison"],
        1,
    ),
    (
        "second-document-lines",
        {"all.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
         + _edit(TEMPLATE, "{{args.service}}", "{{args.svc}}")},
        [r"all\.yaml:16: spec\.metrics\[0\]\.provider\.prometheus\.query: "],
        1,
    ),
    (
        "other-kinds-are-skipped",
        {"m.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
         "metadata: {name: canaries.canary.dev}\nspec: {group: canary.dev}\n---\n"
         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {steps: nonsense}\n"
         "---\n- a list\n---\n"},
        [],
        0,
    ),
    (
        "unknown-kind-in-our-group",
        {"x.yaml": "apiVersion: canary.dev/v1alpha1\nkind: Canery\nmetadata: {name: x}\n"},
        [r"x\.yaml:2: kind: 'Canery' is not a canary\.dev kind \(did you mean 'Canary'\?\)"],
        1,
    ),
    (
        "no-api-version",
        {"c.yaml": CANARY.replace("apiVersion: canary.dev/v1alpha1\n", "# a comment\n")
         + "---\n" + TEMPLATE},
        [r"c\.yaml:2: apiVersion: is missing \(set apiVersion: canary\.dev/v1alpha1\)"],
        1,
    ),
    (
        "wrong-version",
        {"c.yaml": CANARY.replace("v1alpha1", "v1", 1) + "---\n" + TEMPLATE},
        [r"c\.yaml:1: apiVersion: 'canary\.dev/v1' is not canary\.dev/v1alpha1"],
        1,
    ),
    (
        "template-in-another-namespace",
        {"c.yaml": CANARY,
         "t.yaml": _edit(TEMPLATE, "  name: http-error-rate\n",
                         "  name: http-error-rate\n  namespace: billing\n")},
        [r"c\.yaml:13: .*'http-error-rate' is not among the files given",
         r"c\.yaml:16: .*'http-error-rate' is not among the files given"],
        1,
    ),
    (
        "cluster-template-needs-cluster-scope",
        {"c.yaml": CANARY,
         "t.yaml": _edit(TEMPLATE, "kind: AnalysisTemplate", "kind: ClusterAnalysisTemplate")},
        [r"c\.yaml:13: .*\(a ClusterAnalysisTemplate with that name exists; set clusterScope: "
         r"true\)",
         r"c\.yaml:16: .*set clusterScope: true"],
        1,
    ),
    (
        "cluster-template-with-cluster-scope",
        {"c.yaml": CANARY.replace("templateName: http-error-rate",
                                  "templateName: http-error-rate, clusterScope: true")
         .replace("- templateName: http-error-rate, clusterScope: true",
                  "- {templateName: http-error-rate, clusterScope: true}"),
         "t.yaml": _edit(TEMPLATE, "kind: AnalysisTemplate", "kind: ClusterAnalysisTemplate")},
        [],
        0,
    ),
    (
        "duplicate-template",
        {"c.yaml": CANARY, "t.yaml": TEMPLATE, "u.yaml": TEMPLATE},
        [r"u\.yaml:4: metadata\.name: AnalysisTemplate 'http-error-rate' is already defined at "
         r".*t\.yaml:4 \(rename one of them, or remove the copy\)"],
        1,
    ),
    (
        "invalid-referenced-template-is-not-missing",
        {"c.yaml": CANARY,
         "t.yaml": _edit(TEMPLATE, "      thresholdRange: {max: 0.01}\n", "")},
        [r"t\.yaml:9: spec\.metrics\[0\]: "],
        1,
    ),
    (
        "yaml-syntax-error",
        {"c.yaml": "apiVersion: canary.dev/v1alpha1\nkind: Canary\nspec: {steps: [1, 2}\n"},
        [r"c\.yaml:3: \(yaml\): is not valid YAML: .*\(fix the YAML syntax at this line\)"],
        2,
    ),
]


def _write(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return [str(tmp_path / name) for name in files]


@pytest.mark.parametrize(("files", "expected", "code"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_lint(tmp_path: Path, files: dict[str, str], expected: list[str], code: int) -> None:
    report = lint_paths(_write(tmp_path, files))
    lines = [line.replace(str(tmp_path) + "/", "") for line in report.lines]
    assert len(lines) == len(expected), "\n".join(lines)
    for line, pattern in zip(lines, expected, strict=True):
        assert re.match(pattern, line), f"{line!r} does not match {pattern!r}"
    assert lint_exit_code(report) == code


def test_every_finding_has_the_documented_shape(tmp_path: Path) -> None:
    bad = _edit(CANARY, "setWeight: 50", "setWeight: 5").replace("port: 80", "port: 0")
    report = lint_paths(_write(tmp_path, {"c.yaml": bad}))
    assert report.lines
    for line in report.lines:
        assert re.fullmatch(r"[^:]+:\d+: [\w.\[\]()]+: .+ \(.+\)", line), line


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    paths = _write(tmp_path, {"t.yaml": TEMPLATE})
    report = lint_paths([*paths, str(tmp_path / "nope.yaml")])
    assert [line.replace(str(tmp_path) + "/", "") for line in report.lines] == [
        "nope.yaml: (file): does not exist (check the path)"
    ]
    assert lint_exit_code(report) == 2


def test_directories_are_searched_recursively_for_yaml(tmp_path: Path) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "t.yml").write_text(TEMPLATE)
    (tmp_path / "deep" / "c.yaml").write_text(CANARY)
    (tmp_path / "deep" / "notes.txt").write_text("kind: Canary\nnot: [yaml")
    report = lint_paths([str(tmp_path / "deep")])
    assert report.lines == []
    assert (report.files, report.objects) == (2, 2)


MARKDOWN = """\
# Example

Some text.

```yaml
# not ours: skipped
apiVersion: v1
kind: Service
```

```sh
canary lint x.yaml
```

```yaml
apiVersion: canary.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: http-error-rate}
spec:
  args: [{name: service}]
  metrics:
    - name: m
      provider: {prometheus: {query: 'x{a="{{args.svc}}"}'}}
      thresholdRange: {max: 1}
```

~~~yml
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata: {name: checkout}
spec:
  targetRef: {name: checkout}
  service: {port: 80}
  steps: [{setWeight: 20}, {setWeight: 10}]
~~~
"""


def test_markdown_yaml_blocks_are_linted_with_markdown_lines(tmp_path: Path) -> None:
    report = lint_paths(_write(tmp_path, {"README.md": MARKDOWN}))
    lines = [line.replace(str(tmp_path) + "/", "") for line in report.lines]
    assert len(lines) == 2, lines
    assert lines[0].startswith("README.md:23: spec.metrics[0].provider.prometheus.query: uses")
    assert lines[1].startswith("README.md:34: spec.steps[1].setWeight: 10 is lower")
    assert report.objects == 2


def test_markdown_blocks_are_found_with_their_first_content_line() -> None:
    blocks = list(markdown_yaml_blocks(MARKDOWN))
    assert [offset for offset, _ in blocks] == [5, 15, 27]
    assert blocks[2][1].startswith("apiVersion: canary.dev/v1alpha1\nkind: Canary")


LINE_OF = [
    ("apiVersion", 1),
    ("metadata.name", 4),
    ("spec.steps", 9),
    ("spec.steps[1]", 11),
    ("spec.steps[1].analysis.templates[0].templateName", 13),
    ("spec.steps[7].setWeight", 9),  # no such step: the list
    ("spec.analysis.args[0].value", 17),
    ("spec.deployWindow.timezone", 6),  # missing: the nearest field that exists
    ("(document)", 1),
]


@pytest.mark.parametrize(("path", "line"), LINE_OF, ids=[p for p, _ in LINE_OF])
def test_line_of(path: str, line: int) -> None:
    root = yaml.compose(CANARY)
    assert root is not None
    assert line_of(root, path) == line


# ---------------------------------------------------------------- the command


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_command_prints_findings_and_exits_1(tmp_path: Path) -> None:
    paths = _write(tmp_path, {"c.yaml": _edit(CANARY, "setWeight: 50", "setWeight: 5"),
                              "t.yaml": TEMPLATE})
    result = CliRunner().invoke(_app(), ["lint", *paths])
    assert result.exit_code == 1, result.output
    assert result.stdout == (
        f"{paths[0]}:14: spec.steps[2].setWeight: 5 is lower than the previous weight 10 "
        "(weights must increase; reorder the steps)\n"
    )
    assert "1 finding in 2 canary.dev objects from 2 files" in result.stderr


def test_command_is_quiet_on_clean_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["lint", *_write(tmp_path, {"c.yaml": CANARY,
                                                                    "t.yaml": TEMPLATE})])
    assert (result.exit_code, result.stdout) == (0, "")
    assert "ok: 2 canary.dev objects in 2 files" in result.stderr


def test_command_needs_a_path() -> None:
    assert CliRunner().invoke(_app(), ["lint"]).exit_code == 2


def test_shipped_templates_manifests_and_template_readme_lint_clean() -> None:
    paths = [REPO / "analysis_templates", REPO / "manifests",
             REPO / "analysis_templates" / "README.md"]
    report = lint_paths([str(p) for p in paths])
    assert report.lines == []
    assert report.objects >= 21


def test_readme_examples_lint_clean_with_the_library() -> None:
    """What `make test` runs: `canary lint analysis_templates/ manifests/ README.md`."""
    report = lint_paths([str(REPO / "analysis_templates"), str(REPO / "manifests"),
                         str(REPO / "README.md")])
    assert report.lines == []


def test_template_readme_documents_every_template_and_arg() -> None:
    readme = (REPO / "analysis_templates" / "README.md").read_text()
    for path in sorted((REPO / "analysis_templates").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            name = doc["metadata"]["name"]
            assert f"`{name}`" in readme, name
            for arg in doc["spec"].get("args", []):
                assert f"`{arg['name']}`" in readme, f"{name}: arg {arg['name']}"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (TEMPLATE.replace("[1m]", "[1m]\x00"), 12, "special characters are not allowed"),
        (TEMPLATE.replace("[1m]", "[1m]\x07"), 12, "special characters are not allowed"),
        (TEMPLATE + "extra: " + "[" * 1000 + "]" * 1000 + "\n", 1, "nests too deeply"),
        (TEMPLATE.replace("max: 0.01", "max: !!int abc"), 13, "cannot be read as !!int"),
        (TEMPLATE.replace("max: 0.01", "max: " + "9" * 5000), 13, "cannot be read as !!int"),
        # PyYAML's constructors fail on these with IndexError, KeyError, AttributeError.
        (TEMPLATE.replace("max: 0.01", 'max: !!int ""'), 13, "cannot be read as !!int: ''"),
        (TEMPLATE.replace("max: 0.01", "max: !!bool maybe"), 13, "cannot be read as !!bool"),
        (TEMPLATE.replace("max: 0.01", "max: !!timestamp x"), 13, "as !!timestamp: 'x'"),
        (TEMPLATE.replace("max: 0.01", "max: !!timestamp 2024-13-01"), 13, "!!timestamp"),
    ],
    ids=[
        "NUL",
        "control character",
        "nested 1000 deep",
        "!!int on text",
        "5000-digit int",
        "!!int on nothing",
        "!!bool on text",
        "!!timestamp on text",
        "month 13",
    ],
)
def test_unreadable_yaml_is_a_finding_with_a_line_never_a_traceback(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    report = lint_paths(_write(tmp_path, {"t.yaml": text}))
    (finding,) = [x.replace(str(tmp_path) + "/", "") for x in report.lines]
    assert finding.startswith(f"t.yaml:{line}: (yaml): ") and message in finding
    assert lint_exit_code(report) == 2  # as for any file that cannot be read


def test_a_query_of_unclosed_braces_is_reported_not_rescanned(tmp_path: Path) -> None:
    braces = TEMPLATE.replace('{service="{{args.service}}"}', '{service="' + "{{" * 20000 + '"}')
    report = lint_paths(_write(tmp_path, {"t.yaml": braces}))
    (finding,) = report.lines
    assert "placeholder" in finding and len(finding) < 500  # the query is not echoed whole


def test_a_huge_file_is_refused_with_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * 500_000)  # 5 MB
    report = lint_paths([str(path)])
    (finding,) = [x.replace(str(tmp_path) + "/", "") for x in report.lines]
    assert finding.startswith("big.yaml: (file): is 4.8 MiB; canary lint reads files of at")


def test_a_file_that_is_not_utf8_is_reported_at_its_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_bytes(TEMPLATE.replace("[1m]", "[1m]\udcff").encode(errors="surrogateescape"))
    report = lint_paths([str(path)])
    (finding,) = [x.replace(str(tmp_path) + "/", "") for x in report.lines]
    assert finding.startswith("t.yaml:12: (file): cannot be read: 'utf-8' codec can't decode")
    assert lint_exit_code(report) == 2


HUGE = "0x" + "f" * 5000  # YAML reads hex without Python's limit of 4,300 digits for str(int)
BOMB = (  # 10^9 strings by reference in a few hundred bytes: printing them takes minutes
    "[&b0 [a, a, a, a, a, a, a, a, a, a], "
    + ", ".join(f"&b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, 9))
    + "]"
)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("setWeight: 50", f"setWeight: {HUGE}",
         "c.yaml:14: spec.steps[2].setWeight: <6021-digit integer> is above the maximum 100"),
        ("setWeight: 50", f"setWeight: {BOMB}",
         "c.yaml:14: spec.steps[2].setWeight: [['a', 'a', 'a', 'a', 'a', 'a', 'a', ... is not"),
        ("kind: Canary", f"kind: {HUGE}",
         "c.yaml:2: kind: <6021-digit integer> is not a canary.dev kind"),
        ("value: checkout", f"value: {HUGE}",
         "c.yaml:17: spec.analysis.args[0].value: <6021-digit integer> is not a string"),
        ("service: {port: 80}", f"service: {{port: 80}}\n  trafficRouting: {{? {HUGE} : 1}}",
         "c.yaml:9: spec.trafficRouting[<6021-digit integer>]: is not supported"),
    ],
    ids=["huge weight", "alias bomb weight", "huge kind", "huge arg value", "huge router"],
)
def test_values_too_big_to_print_are_shown_short(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    report = lint_paths(_write(tmp_path, {"c.yaml": _edit(CANARY, old, new), "t.yaml": TEMPLATE}))
    lines = [x.replace(str(tmp_path) + "/", "") for x in report.lines]
    assert any(line.startswith(expected) for line in lines), lines


def test_each_finding_is_one_printable_line(tmp_path: Path) -> None:
    # Keys may hold line breaks, terminal escapes and, from YAML's "\ud800", lone surrogates.
    routers = 'trafficRouting: {"a\\nb": {}, "\\e[31m": {}, "\\ud800": {}}'
    text = _edit(CANARY, "service: {port: 80}", "service: {port: 80}\n  " + routers)
    result = CliRunner().invoke(_app(), ["lint", *_write(tmp_path, {"c.yaml": text})])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert [line.split(": ")[1] for line in result.stdout.splitlines()] == [
        "spec.trafficRouting",  # pydantic: a key that is not Unicode
        "spec.trafficRouting.a\\nb",
        "spec.trafficRouting.\\x1b[31m",
        "spec.trafficRouting.\\ud800",
        "spec.steps[1].analysis.templates[0].templateName",
        "spec.analysis.templates[0].templateName",
    ]


class _CountingList(list[Any]):
    iterations = 0

    def __iter__(self) -> Iterator[Any]:
        self.iterations += 1
        return super().__iter__()


def test_a_document_with_many_findings_reads_each_mapping_once(tmp_path: Path) -> None:
    # Searching a mapping's keys for every finding made 20,000 unknown fields take 30 s.
    extra = "".join(f"  k{i}: 1\n" for i in range(1000))
    (path,) = _write(tmp_path, {"c.yaml": CANARY + extra})
    (doc,), _ = read_documents(path)
    assert isinstance(doc.node, yaml.MappingNode)
    spec = next(v for k, v in doc.node.value if k.value == "spec")
    spec.value = counting = _CountingList(spec.value)
    assert [doc.line(f"spec.k{i}") for i in range(1000)] == list(range(18, 1018))
    assert counting.iterations == 1


def test_a_query_that_is_not_promql_is_a_finding_at_its_line(tmp_path: Path) -> None:
    unclosed = TEMPLATE.replace("[1m]))", "[1m]")
    result = CliRunner().invoke(_app(), ["lint", *_write(tmp_path, {"t.yaml": unclosed})])
    assert result.exit_code == 1
    assert result.stdout == (
        f"{tmp_path}/t.yaml:12: spec.metrics[0].provider.prometheus.query: is not valid "
        "PromQL: unclosed left parenthesis (fix the query; try it in the Prometheus UI's "
        "expression browser)\n"
    )


@pytest.mark.parametrize(
    "query",
    [
        # an arg stands for a duration, an identifier and a number in one query
        'sum(rate(x{ {{args.label}}="{{args.service}}"}[{{args.lookback}}])) > {{args.limit}}',
        "histogram_quantile({{args.q}}, sum by (le) (rate(x_bucket[5m])))",
    ],
)
def test_args_outside_quotes_parse_wherever_they_stand(tmp_path: Path, query: str) -> None:
    template = TEMPLATE.replace(
        "    - name: service\n",
        "".join(f"    - name: {a}\n" for a in ("service", "label", "lookback", "limit", "q")),
    ).replace('sum(rate(x{service="{{args.service}}"}[1m]))', query)
    assert lint_paths(_write(tmp_path, {"t.yaml": template})).lines == []


def test_a_query_nested_too_deep_to_parse_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    deep = TEMPLATE.replace('x{service="{{args.service}}"}', "(" * 20_000 + "x" + ")" * 20_000)
    (finding,) = lint_paths(_write(tmp_path, {"t.yaml": deep})).lines
    assert finding.endswith("query: nests brackets more than 200 deep (simplify the query)")


def test_a_directory_without_yaml_cannot_be_checked(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(_app(), ["lint", str(tmp_path / "empty")])
    assert result.exit_code == 2  # not "ok": a wrong path must not pass
    assert result.stdout == (
        f"{tmp_path}/empty: (directory): has no *.yaml or *.yml files "
        "(check the path, or name the files)\n"
    )


def test_skipped_kinds_outside_kubernetes_are_named_in_a_note(tmp_path: Path) -> None:
    rollout = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: checkout}\n"
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: checkout}\n"
    paths = _write(tmp_path, {"r.yaml": rollout + "---\n" + service, "t.yaml": TEMPLATE})
    result = CliRunner().invoke(_app(), ["lint", *paths])
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        "note: skipped 1 object of kinds canary lint does not know: "
        "Rollout (argoproj.io/v1alpha1)\n"
        "ok: 1 canary.dev object in 2 files\n"
    )

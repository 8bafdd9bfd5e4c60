"""Fuzz of user input: Canary and AnalysisTemplate YAML through ``canary lint``, Canary
objects through the controller's validation, and the canary.dev/request annotation.

An earlier one-off fuzz of ``canary lint`` found 110 tracebacks; this one keeps them
fixed. The properties: nothing raises (or hangs), every lint finding prints as
``FILE:LINE: field: message (fix)`` on one line with a field, and exit codes are the
documented ones.

Generated inputs per default run, 11,820 in all (about 50 s of CPU):

    test_lint_never_raises_on_mutated_manifests        1,500
    test_lint_never_raises_on_yaml_like_text           1,500
    test_lint_never_raises_on_bytes                      800
    test_lint_command_exit_codes                          20
    test_validation_never_raises_on_mutated_objects    3,000
    test_validation_never_raises_on_any_json           1,000
    test_request_parsing_never_raises_on_near_valid    2,000
    test_request_parsing_never_raises_on_any_text      1,000
    test_request_parsing_never_raises_on_any_json      1,000

derandomize=True: every run tries the same inputs, so a failure in CI reproduces
anywhere (and a new Hypothesis version or an edited test draws new ones).
deadline=None: times vary with the machine's load; a hang still fails, by pytest-timeout.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from canary.api.analysis_template import AnalysisTemplate, AnalysisTemplateSpec
from canary.api.canary import Canary, template_key
from canary.api.request_codec import RequestAnnotation
from canary.cli.app import app
from canary.cli.exits import LINT_CLEAN, LINT_FINDINGS, LINT_UNCHECKED
from canary.cli.templates import lint_exit_code
from canary.controller.observe import parse_request
from canary.engine.actions import ManualRequest, RejectedRequest
from canary.templates.documents import markdown_yaml_blocks
from canary.templates.lint import lint_paths
from canary.validation import validate_canary, validate_template

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def fuzz(examples: int) -> Callable[[Any], Any]:
    return settings(max_examples=examples, deadline=None, derandomize=True)


# ---------------------------------------------------------------- valid starting points

RICH_CANARY = yaml.safe_load(
    """
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata: {name: checkout, namespace: shop}
spec:
  targetRef: {kind: Deployment, name: checkout}
  service: {port: 80, targetPort: http}
  trafficRouting: {gatewayAPI: {httpRoute: checkout}}
  steps:
    - setWeight: 5
    - analysis:
        templates: [{templateName: http-latency}, {templateName: global, clusterScope: true}]
        args: [{name: lookback, value: 5m}]
    - setWeight: 25
    - pause: {duration: 1h30m}
    - setWeight: 50
    - pause: {}
  analysis:
    interval: 1m
    templates: [{templateName: http-error-rate-comparison}]
    args: [{name: service, value: checkout}, {name: namespace, value: shop}]
  deployWindow: {timezone: Europe/Berlin, days: [Mon, Tue], start: "22:00", end: "06:00"}
  progressDeadlineSeconds: 900
  maxMetricsUnavailableIntervals: 2
"""
)

CLUSTER_TEMPLATE = yaml.safe_load(
    """
apiVersion: canary.dev/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: global}
spec:
  args: [{name: service}, {name: threshold, value: "0.5"}]
  metrics:
    - name: up
      count: 3
      provider:
        prometheus: {address: "http://[::1]:9090", query: 'min(up{job="{{args.service}}"})'}
      thresholdRange: {min: 1, max: 1}
    - name: slow
      provider: {prometheus: {address: "https://prometheus.monitoring/"}}
      comparison:
        type: latency
        bucketsQuery: >-
          sum by (le) (rate(h_bucket{v=`{{variant}}`, s="{{ args.service }}"}[{{window}}]))
        slowerThan: 250ms
        unit: ms
        tolerance: 1.2
        acceptedRegression: {ratio: 1.1}
"""
)


def _shipped() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Canaries, templates): the README's Canary and every shipped template."""
    canaries, templates = [RICH_CANARY], [CLUSTER_TEMPLATE]
    for path in sorted((REPO / "analysis_templates").glob("*.yaml")):
        templates += yaml.safe_load_all(path.read_text())
    for _, block in markdown_yaml_blocks((REPO / "README.md").read_text()):
        if "kind: Canary" in block:
            canaries += yaml.safe_load_all(block)
    return canaries, templates


CANARIES, TEMPLATES = _shipped()
SPECS = {
    template_key(t["metadata"]["name"], t["kind"] == "ClusterAnalysisTemplate"):
    AnalysisTemplateSpec.model_validate(t["spec"])
    for t in TEMPLATES
}


# ---------------------------------------------------------------- hostile values

FIELD_NAMES = sorted(
    {name for doc in CANARIES + TEMPLATES for name in re.findall(r"'(\w+)':", repr(doc))}
)

TEXTS = [
    # durations
    "30s", "1h30m", "0s", "", " ", "1x", "-5s", "5", "1.5.5m", "9" * 400 + "s", "1e3s",
    "\u0663s",  # an Arabic-Indic 3, which \d matches and float() reads
    "99999999999d",
    # deploy-window times and zones
    "09:00", "24:00", "24:01", "25:00", "9:00", "12:00\n", "\u0661\u0662:\u0660\u0660",
    "Europe/Berlin", "europe/berlin", "Mars/Olympus", "../../etc/passwd", "/etc/localtime",
    "UTC\x00", "a" * 300,
    # PromQL and placeholders
    'sum(x{a="{{args.service}}"})', "{{", "{{" * 500, "}}{{", "{{args.}}", "{{args.nope}}",
    "{{ variant }}", "{{window}}", '"{{variant}}', "`{{args.service}}`", "# {{args.service}}\n",
    '"\\{{args.service}}"', 'x{a="\n"}', "{{args.service}} > 1", "{{args.service}}",
    # addresses
    "http://prometheus:9090", "http://[::1", "http://[::1]:99999", "http://h:-1", "https://",
    "ftp://x", "http://x/?q=1", "http://x#f", "{{args.url}}", " http://x ", "http://\x00",
    # names, kinds and arg values
    "Canary", "AnalysisTemplate", "ClusterAnalysisTemplate", "Canry", "Deployment",
    "canary.dev/v1alpha1", "canary.dev/v2", "v1", "errorRate", "latency", "ms", "promote",
    'a"b', "a`b", "\ufffd", "x\ny", "sum(x)", "1e3", "-1", "5m", "http_requests_total",
    "\u2028", "\x85", "\t", "😀" * 50, "x" * 10_000,
]
INTS = [0, -1, 1, 100, 101, 65535, 65536, 2**63, -(2**63) - 1, 10**100, 10**4000]
DEEP: list[Any] = []
for _ in range(100):
    DEEP = [DEEP]
HOSTILE: list[Any] = [
    None, True, False, *INTS, 0.5, -0.0, 1e308, 5e-324, *TEXTS, [], {}, [None], [[]],
    {"": None}, {"name": None}, ["x", "x"], [{"templateName": "x"}], [{"name": 1, "value": 1}],
    {"min": 2, "max": 1}, DEEP,
]

json_keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_keys, inner, max_size=3),
    max_leaves=5,
)
# A third each: known troublemakers, any text (control characters, any script), any JSON.
values = st.sampled_from(HOSTILE) | st.text(max_size=10) | json_values

# YAML only lint sees: tags, anchors and aliases, numbers Python cannot print, duplicate
# keys, nesting. Each stands in for a value as a one-line flow node.
RAW_YAML = [
    "!!int abc", "!!int 0x" + "f" * 5000, "0x" + "f" * 5000, "9" * 5000, "0b" + "1" * 20000,
    ":".join(["59"] * 2500), "!!float abc", "1e400", ".nan", "-.inf", "!!binary aGVsbG8=",
    "!!binary '!!!'", "!!timestamp 2024-13-45", "2001-12-14t21:59:43.10-05:00",
    "!!set {a, b}", "!!omap [a: 1, b: 2]", "!!omap [1]", "!!pairs [a: 1]",
    "!!python/object/apply:os.system [echo]", "!custom x", "!<tag:yaml.org,2002:str> 1",
    "!!bool maybe", "!!null x", "&r [*r]", "&m {a: *m}", "{<<: {a: 1}, b: 2}", "{<<: 1}",
    "{? [a, b] : c}", "{a: 1, a: 2}", "[" * 300 + "]" * 300, "[" * 2000 + "]" * 2000,
    "{a: " * 200 + "1" + "}" * 200, "*undefined", "'unterminated", '"\\xZZ"', '"\\ud800"',
    '"\\udfff\\x00"', '"a\\u2028b"', "{? 0x" + "f" * 5000 + " : 1}", '{"\\ud800": 1}',
    '{"a\\nb": 1}', "{1: 2}",
    # an alias bomb: 10^9 strings by reference, a few hundred bytes of text
    "[&b0 [a, a, a, a, a, a, a, a, a, a], "
    + ", ".join(f"&b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, 9))
    + "]",
]
_RAW = re.compile(r"RAWYAML(\d+)Z")


def _raw(i: int) -> str:
    return f"RAWYAML{i}Z"  # dumped as a plain scalar, then replaced by RAW_YAML[i]


yaml_values = st.sampled_from(HOSTILE + [_raw(i) for i in range(len(RAW_YAML))]) | values

OPS = st.sampled_from(["replace", "replace", "drop", "add", "repeat"])


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any], new: st.SearchStrategy[Any]) -> Any:
    """`doc` with a few fields replaced, dropped, added or repeated."""
    holder = [copy.deepcopy(doc)]
    for _ in range(draw(st.integers(0, 4))):
        slots: list[tuple[Any, Any]] = []
        _slots(holder, slots)
        container, key = draw(st.sampled_from(slots))
        target = container[key]
        op = draw(OPS)
        # Drawn values are copied: HOSTILE's own lists must stay as they are.
        if op == "drop" and container is not holder:
            del container[key]
        elif op == "repeat" and isinstance(target, list) and target:
            target.append(copy.deepcopy(target[-1]))  # a step, a metric, an arg twice
        elif op == "add" and isinstance(target, dict):
            target[draw(json_keys)] = copy.deepcopy(draw(new))
        elif op == "add" and isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), copy.deepcopy(draw(new)))
        else:
            container[key] = copy.deepcopy(draw(new))
    return holder[0]


def _slots(node: Any, out: list[tuple[Any, Any]]) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        out.append((node, key))
        if isinstance(value, dict | list):
            _slots(value, out)


# ---------------------------------------------------------------- lint

NOISE = [
    "\x00", "\x07", "\x1b", "\ufeff", "\x85", "\u2028", "\t", "\r", "\r\n", " ", "  ", ": ",
    "- ", "{", "}", "[", "]", ",", "&a ", "*a", "!!int ", "!!binary ", "#", "---\n", "...\n",
    "'", '"', "\\", "? ", "|", ">", "%YAML 1.1\n", "\n", "{{", "<<: ",
]
# Half the files keep their YAML intact, so that most objects get as far as validation.
NOISE_OPS = st.sampled_from([0, 0, 0, 1, 2, 3])
_dump = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: the fuzz's time goes to lint


@st.composite
def manifests(draw: st.DrawFn) -> tuple[str, str]:
    """(suffix, text): one or two mutated objects, as YAML or in a Markdown file."""
    bundle = draw(
        st.one_of(
            st.lists(st.sampled_from(CANARIES + TEMPLATES), min_size=1, max_size=2),
            st.tuples(st.sampled_from(CANARIES), st.sampled_from(TEMPLATES)).map(list),
        )
    )
    texts = []
    for doc in bundle:
        data = draw(mutated(doc, yaml_values))
        text = yaml.dump(
            data,
            Dumper=_dump,
            sort_keys=False,
            allow_unicode=draw(st.booleans()),
            default_flow_style=draw(st.sampled_from([False, None, True])),
        )
        texts.append(_RAW.sub(lambda m: RAW_YAML[int(m.group(1))], text))
    text = draw(st.sampled_from(["", "%YAML 1.1\n---\n", "---\n"])) + "---\n".join(texts)
    for _ in range(draw(NOISE_OPS)):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "cut", "repeat line"]))
        if op == "insert":
            text = text[:at] + draw(st.sampled_from(NOISE) | st.text(max_size=4)) + text[at:]
        elif op == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        else:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at) + 1 or len(text)
            text = text[:end] + text[start:end] + text[end:]
    if draw(st.integers(0, 4)) == 0:
        fence = draw(st.sampled_from(["```yaml", "~~~yml", "````yaml", "   ```YAML x", "```"]))
        close = draw(st.sampled_from(["```", "~~~", "````", ""]))
        return ".md", f"# Example\n\nText.\n\n{fence}\n{text}\n{close}\nMore text.\n"
    return ".yaml", text


YAML_TOKENS = [
    "apiVersion: canary.dev/v1alpha1\n", "kind: Canary\n", "kind: AnalysisTemplate\n",
    "metadata: {name: a}\n", "spec:\n", "  steps:\n", "  - setWeight: 10\n", "  metrics:\n",
    "    - name: m\n", "      provider: {prometheus: {query: '{{args.x}}'}}\n", "  ", "- ",
    ": ", "{", "}", "[", "]", ", ", "&a ", "*a", "!!int ", "!!str ", "!!binary ", "\n", "---\n",
    "'", '"', "#", "? ", "|\n", ">-\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "<<: ", "\x00",
    "\t", "\\u", "0x", "9" * 50, ":59", "~", "=",
]


@pytest.fixture(scope="session")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _lines_in(text: str) -> int:
    """Lines as YAML counts them (a CR, NEL or LINE SEPARATOR ends a line too)."""
    return len(re.findall(r"\r\n|[\r\n\x85\u2028\u2029]", text)) + 1


def check_lint(path: Path, lines_in_file: int) -> int:
    """Lint `path` as `canary lint` does and check every finding's shape; the exit code."""
    report = lint_paths([str(path)])
    code = lint_exit_code(report)
    assert code == (
        LINT_UNCHECKED if report.unchecked else LINT_FINDINGS if report.findings else LINT_CLEAN
    )
    for located in report.unchecked + report.findings:
        finding = located.finding
        assert located.file == str(path)
        assert 1 <= located.line <= lines_in_file, located
        assert finding.field.strip() and finding.message.strip() and finding.fix.strip()
    for line in report.lines:
        assert re.fullmatch(rf"{re.escape(str(path))}:\d+: \S[^\n]*: [^\n]+ \([^\n]+\)", line)
        assert len(line.splitlines()) == 1, line  # one finding, one line
        line.encode("utf-8")  # printable on a UTF-8 terminal
    return code


@fuzz(1500)
@given(manifests())
def test_lint_never_raises_on_mutated_manifests(fuzz_dir: Path, manifest: tuple[str, str]) -> None:
    suffix, text = manifest
    path = fuzz_dir / f"manifest{suffix}"
    path.write_text(text, encoding="utf-8")
    check_lint(path, _lines_in(text))


@fuzz(1500)
@given(st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=3), max_size=60).map("".join))
def test_lint_never_raises_on_yaml_like_text(fuzz_dir: Path, text: str) -> None:
    path = fuzz_dir / "text.yaml"
    path.write_text(text, encoding="utf-8")
    check_lint(path, _lines_in(text))


@fuzz(800)
@given(
    st.sampled_from([b""] + [yaml.safe_dump(d).encode() for d in CANARIES + TEMPLATES]),
    st.binary(max_size=200) | st.sampled_from([b"\xff", b"\xfe\xff\x00a", b"\xed\xa0\x80"]),
    st.floats(0, 1),
)
def test_lint_never_raises_on_bytes(
    fuzz_dir: Path, valid: bytes, junk: bytes, where: float
) -> None:
    at = int(len(valid) * where)
    data = valid[:at] + junk + valid[at:]
    path = fuzz_dir / "bytes.yaml"
    path.write_bytes(data)
    text = data.decode("utf-8", errors="replace")
    check_lint(path, _lines_in(text))


@fuzz(20)
@given(manifests())
def test_lint_command_exit_codes(fuzz_dir: Path, manifest: tuple[str, str]) -> None:
    suffix, text = manifest
    path = fuzz_dir / f"command{suffix}"
    path.write_text(text, encoding="utf-8")
    expected = check_lint(path, _lines_in(text))
    result = CliRunner().invoke(app, ["lint", str(path)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == expected
    assert result.stdout.splitlines() == lint_paths([str(path)]).lines


# ---------------------------------------------------------------- controller validation


def check_validation(obj: Any) -> None:
    """As the controller validates what the API server hands over: no exception but
    pydantic's, and every finding names its field."""
    findings = validate_canary(obj, SPECS) + validate_canary(obj, None) + validate_template(obj)
    for finding in findings:
        assert finding.field.strip() and finding.message.strip() and finding.fix.strip()
    for model in (Canary, AnalysisTemplate):
        with contextlib.suppress(ValidationError):
            model.model_validate(obj)


@fuzz(3000)
@given(st.sampled_from(CANARIES + TEMPLATES).flatmap(lambda doc: mutated(doc, values)))
def test_validation_never_raises_on_mutated_objects(obj: Any) -> None:
    check_validation(obj)


@fuzz(1000)
@given(values)
def test_validation_never_raises_on_any_json(obj: Any) -> None:
    check_validation(obj)


# ---------------------------------------------------------------- request annotations

ANNOTATION = "canary.dev/request"
NOW = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC)
_TAKES = inspect.signature(parse_request).parameters


def parse(annotations: dict[str, str], last_id: str | None) -> Any:
    # The controller may hand parse_request its clock; the fuzz's clock is fixed.
    return parse_request(annotations, last_id, **({"now": NOW} if "now" in _TAKES else {}))


def check_request(raw: str, last_id: str | None) -> None:
    with contextlib.suppress(ValidationError):
        RequestAnnotation.model_validate_json(raw)
    request = parse({ANNOTATION: raw, "other": raw}, last_id)
    if request is None:
        return
    assert request.id and request.id != last_id
    if isinstance(request, RejectedRequest):
        assert request.why.strip()
    else:
        assert isinstance(request, ManualRequest)
        assert request.action in ("promote", "abort", "pause", "resume", "retry")
        assert request.at is None or isinstance(request.at, dt.datetime)


TIMES = [
    "2024-05-06T09:59:55+00:00", "2024-05-06T09:59:55Z", "2024-05-06T09:59:55",
    "2024-05-06", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-02-30T00:00",
    "yesterday", "", "2024-05-06T09:59:55+24:00", "2024-05-06T25:00:00",
    "\u0662\u0660\u0662\u0664-05-06",
]


REQUEST_FIELDS = {
    "id": st.text(min_size=1, max_size=70) | st.sampled_from(["r1", "x" * 65]),
    "action": st.sampled_from(["promote", "abort", "pause", "resume", "retry"]),
    "full": st.booleans(),
    "user": st.text(max_size=10) | st.sampled_from(["alice", "u" * 300]),
    "at": st.sampled_from(TIMES)
    | st.integers(-7200, 7200).map(lambda s: (NOW + dt.timedelta(seconds=s)).isoformat())
    | st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat),
}
REQUEST_KEYS = st.sampled_from([*REQUEST_FIELDS, "extra", "Action"])
WRONG = values | st.sampled_from(["no", "true", "ABORT"])


@st.composite
def near_valid_requests(draw: st.DrawFn) -> str:
    request = {key: draw(strategy) for key, strategy in REQUEST_FIELDS.items()}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(REQUEST_KEYS)
        if draw(st.booleans()):
            request.pop(key, None)
        else:
            request[key] = draw(WRONG)
    return json.dumps(request, ensure_ascii=draw(st.booleans()))


@fuzz(2000)
@given(near_valid_requests(), st.sampled_from([None, "r1", ""]))
def test_request_parsing_never_raises_on_near_valid(raw: str, last_id: str | None) -> None:
    check_request(raw, last_id)


# No surrogates: the API server's JSON decoding turns them into U+FFFD, so an annotation
# never holds one.
@fuzz(1000)
@given(st.text(), st.sampled_from([None, "r1"]))
def test_request_parsing_never_raises_on_any_text(raw: str, last_id: str | None) -> None:
    check_request(raw, last_id)


@fuzz(1000)
@given(values)
def test_request_parsing_never_raises_on_any_json(value: Any) -> None:
    check_request(json.dumps(value), None)

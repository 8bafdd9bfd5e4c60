"""PromQL template rendering: placeholders, windows, and escaping that injection cannot beat."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from canary.errors import PermanentError
from canary.providers.prometheus.promql import escape_string, format_window, render

pytestmark = pytest.mark.unit

INJECTIONS = [
    'checkout"} or vector(1) #',
    'x\\"',
    "x\\",
    "\\",
    '"',
    "'",
    "`",
    "a\nb",
    "a\rb",
    "x'} or vector(1) #",
    '"}) or on() vector(1) or up{a="',
    "\ufffd",
    "\x00\x07\x1b\x7f",
    "tab\there",
    "{{args.other}}",
    "\\u0022",
    "\u2028\u2029 ünïcødé 😀",
]


# ---------------------------------------------------------------- a tiny PromQL string lexer


def parse_string(text: str, start: int) -> tuple[str, int]:
    """Read the PromQL string literal at ``text[start]`` as Prometheus' lexer would.

    Returns (value, index just after the closing quote). Raises ValueError where
    Prometheus reports a parse error: unknown escapes (including \\' inside double
    quotes and \\" inside single quotes), raw newlines, literal U+FFFD, surrogates.
    """
    quote = text[start]
    i = start + 1
    if quote == "`":
        end = text.index("`", i)  # ValueError if unterminated
        value = text[i:end]
        if "\ufffd" in value:
            raise ValueError("invalid UTF-8 rune")
        return value, end + 1
    if quote not in "\"'":
        raise ValueError(f"not a string literal: {text[start:]!r}")
    simple = {
        "a": "\a",
        "b": "\b",
        "f": "\f",
        "n": "\n",
        "r": "\r",
        "t": "\t",
        "v": "\v",
        "\\": "\\",
        quote: quote,
    }
    out: list[str] = []
    while True:
        if i >= len(text):
            raise ValueError("unterminated quoted string")
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\n":
            raise ValueError("unterminated quoted string")
        if c == "\ufffd":
            raise ValueError("invalid UTF-8 rune")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = text[i + 1 : i + 2]
        if e in simple:
            out.append(simple[e])
            i += 2
            continue
        digits = {"x": (2, 16), "u": (4, 16), "U": (8, 16)}.get(e)
        if digits is None and e in "01234567" and e:
            n, base, skip = 3, 8, 1
        elif digits is not None:
            (n, base), skip = digits, 2
        else:
            raise ValueError(f"unknown escape sequence {e!r}")
        raw = text[i + skip : i + skip + n]
        if len(raw) != n:
            raise ValueError("short escape sequence")
        code = int(raw, base)
        if (e in "x01234567" and code > 0x7F) or 0xD800 <= code < 0xE000 or code > 0x10FFFF:
            raise ValueError("escape sequence is not a valid code point here")
        out.append(chr(code))
        i += skip + n


def test_the_test_lexer_follows_prometheus() -> None:
    assert parse_string('"a\\"b" rest', 0) == ('a"b', 6)
    assert parse_string("'a\\'b'", 0) == ("a'b", 6)
    assert parse_string('"\\x41\\101\\u00e9\\U0001F600"', 0)[0] == "AAé😀"
    for bad in ['"a\\\'b"', "'a\\\"b'", '"a\nb"', '"a\ufffd"', '"a', '"\\q"']:
        with pytest.raises(ValueError):
            parse_string(bad, 0)


# ---------------------------------------------------------------- placeholders


def test_args_variant_and_window() -> None:
    query = (
        'sum(increase(http_requests_total{service="{{args.service}}", '
        'variant="{{variant}}"}[{{window}}]))'
    )
    assert render(query, {"service": "checkout"}, variant="canary", window_seconds=90) == (
        'sum(increase(http_requests_total{service="checkout", variant="canary"}[90s]))'
    )


def test_spaces_inside_braces_and_repeated_placeholders() -> None:
    query = 'a{s="{{ args.s }}"} / b{s="{{args.s}}"}'
    assert render(query, {"s": "x"}) == 'a{s="x"} / b{s="x"}'


def test_arg_names_with_dashes_and_dots() -> None:
    assert render('up{a="{{args.service-name}}"}', {"service-name": "x"}) == 'up{a="x"}'


def test_a_query_without_placeholders_is_unchanged() -> None:
    query = 'sum(rate(x{a="b\\"c", d=\'e\'}[5m])) # a comment with "quotes'
    assert render(query, {}) == query


def test_missing_arg_names_it_and_says_where_to_add_it() -> None:
    with pytest.raises(PermanentError) as caught:
        render('up{service="{{args.service}}"}', {"other": "x"})
    assert str(caught.value) == (
        "args.service is not provided (add it to the Canary's analysis args)"
    )


@pytest.mark.parametrize(
    "query",
    ['up{a="{{arg.x}}"}', "{{ foo }}", "up{{args.}}", 'up{a="{{args.x}"}', "{{"],
)
def test_unknown_placeholders_are_errors(query: str) -> None:
    with pytest.raises(PermanentError, match="unknown placeholder"):
        render(query, {"x": "1"})


def test_variant_and_window_need_values() -> None:
    with pytest.raises(PermanentError, match=r"\{\{variant\}\}"):
        render('up{v="{{variant}}"}', {})
    with pytest.raises(PermanentError, match=r"\{\{window\}\}"):
        render("rate(up[{{window}}])", {})


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "1s"),
        (0.001, "1s"),
        (1, "1s"),
        (1.2, "2s"),
        (59.999, "60s"),
        (60, "60s"),
        (60.0000000001, "60s"),
        (89.2, "90s"),
        (3600, "3600s"),
        (-5, "1s"),
    ],
)
def test_window_is_whole_seconds_rounded_up_at_least_one(seconds: float, expected: str) -> None:
    assert format_window(seconds) == expected
    assert render("rate(x[{{window}}])", {}, window_seconds=seconds) == f"rate(x[{expected}])"


@pytest.mark.parametrize("seconds", [float("nan"), float("inf")])
def test_window_must_be_finite(seconds: float) -> None:
    with pytest.raises(PermanentError):
        format_window(seconds)


# ---------------------------------------------------------------- escaping inside strings


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("quote", ['"', "'"])
def test_injection_attempts_stay_inside_the_string(value: str, quote: str) -> None:
    prefix = f"sum(up{{service={quote}"
    suffix = f"{quote}, job={quote}api{quote}}})"
    rendered = render(f"{prefix}{{{{args.service}}}}{suffix}", {"service": value})
    assert rendered.startswith(prefix)
    parsed, end = parse_string(rendered, len(prefix) - 1)
    assert parsed == value
    assert rendered[end - 1 :] == suffix


def test_the_classic_injection_renders_exactly() -> None:
    rendered = render('up{service="{{args.s}}"}', {"s": 'checkout"} or vector(1) #'})
    assert rendered == 'up{service="checkout\\"} or vector(1) #"}'
    rendered = render('up{service="{{args.s}}"}', {"s": 'x\\"'})
    assert rendered == 'up{service="x\\\\\\""}'


def test_only_the_enclosing_quote_is_escaped() -> None:
    # PromQL rejects \' inside "..." and \" inside '...' ("unknown escape sequence").
    assert escape_string('it\'s "q"', quote='"') == 'it\'s \\"q\\"'
    assert escape_string('it\'s "q"', quote="'") == 'it\\\'s "q"'


def test_control_characters_and_replacement_char_are_escaped() -> None:
    assert escape_string("a\nb\rc\td\x00e\x7f\ufffd") == "a\\nb\\rc\\td\\x00e\\x7f\\ufffd"


def test_template_escapes_before_the_placeholder_are_respected() -> None:
    # The \" in the template does not end the string, so the value is still inside it.
    rendered = render('up{a="x\\"{{args.v}}"}', {"v": '"} or vector(1)'})
    value, end = parse_string(rendered, len("up{a="))
    assert value == 'x""} or vector(1)'
    assert rendered[end:] == "}"


def test_a_backslash_right_before_a_placeholder_is_rejected() -> None:
    with pytest.raises(PermanentError, match="backslash"):
        render('up{a="\\{{args.v}}"}', {"v": "x"})


def test_quotes_in_comments_do_not_open_strings() -> None:
    query = 'up # it\'s a comment\n * on() group_left up{a="{{args.v}}"}'
    rendered = render(query, {"v": '"x'})
    assert rendered.endswith('up{a="\\"x"}')


def test_hash_inside_a_string_is_not_a_comment() -> None:
    assert render('up{a="#{{args.v}}"}', {"v": '"'}) == 'up{a="#\\""}'


@pytest.mark.parametrize("query", ['up{a="x}', "up{a='x}", "up{a=`x}", 'up{a="x\ny"}'])
def test_broken_string_literals_in_templates_are_errors(query: str) -> None:
    with pytest.raises(PermanentError, match="string"):
        render(query, {})


# ---------------------------------------------------------------- raw strings and comments


def test_raw_strings_take_values_verbatim_unless_they_cannot_hold_them() -> None:
    assert render("up{a=`{{args.v}}`}", {"v": 'x\\"y\nz'}) == 'up{a=`x\\"y\nz`}'
    for bad in ["a`b", "\ufffd"]:
        with pytest.raises(PermanentError, match=r"args\.v .*raw string"):
            render("up{a=`{{args.v}}`}", {"v": bad})


def test_comments_take_values_without_line_breaks() -> None:
    assert render("up # for {{args.v}}", {"v": 'a "b" c'}) == 'up # for a "b" c'
    for bad in ["a\nvector(1)", "a\rvector(1)"]:
        with pytest.raises(PermanentError, match=r"args\.v .*line break"):
            render("up # for {{args.v}}\n", {"v": bad})


# ---------------------------------------------------------------- outside strings


@pytest.mark.parametrize(
    ("query", "value", "expected"),
    [
        ("sum({{args.m}})", "http_requests_total", "sum(http_requests_total)"),
        ('sum(x:rate5m{a="b"}) > {{args.n}}', "0.5", 'sum(x:rate5m{a="b"}) > 0.5'),
        ("x > {{args.n}}", "-1", "x > -1"),
        ("x > {{args.n}}", "1e-3", "x > 1e-3"),
        ("rate(x[{{args.r}}])", "5m", "rate(x[5m])"),
        ("rate(x[{{args.r}}])", "1h30m", "rate(x[1h30m])"),
        ("sum by ({{args.l}}) (x)", "pod", "sum by (pod) (x)"),
    ],
)
def test_safe_values_outside_strings(query: str, value: str, expected: str) -> None:
    assert render(query, {"a": "1", "m": value, "n": value, "r": value, "l": value}) == expected


@pytest.mark.parametrize(
    "value",
    [
        "1 or vector(1)",
        "up{}",
        "1)",
        "",
        "#",
        "0-up",
        "a b",
        '"x"',
        "5m]) or vector(1",
        "x\n",
    ],
)
def test_unsafe_values_outside_strings_are_rejected_naming_the_arg(value: str) -> None:
    with pytest.raises(PermanentError) as caught:
        render("sum(x) > {{args.limit}}", {"limit": value})
    message = str(caught.value)
    assert message.startswith("args.limit is used outside a quoted string")
    assert 'label="{{args.limit}}"' in message


def test_variant_and_window_are_safe_outside_strings() -> None:
    assert render("x_{{variant}}[{{window}}]", {}, variant="canary", window_seconds=30) == (
        "x_canary[30s]"
    )


# ---------------------------------------------------------------- properties


@given(value=st.text())
@example(value='checkout"} or vector(1) #')
@example(value='x\\"')
@example(value="\\")
@example(value="\ufffd\n\r\x00")
@pytest.mark.parametrize("quote", ['"', "'"])
def test_any_value_parses_back_unchanged(quote: str, value: str) -> None:
    template = f"sum(rate(x{{service={quote}{{{{args.s}}}}{quote}, code=~{quote}5..{quote}}}[1m]))"
    rendered = render(template, {"s": value})
    start = len("sum(rate(x{service=")
    assert rendered[:start] == template[:start]
    parsed, end = parse_string(rendered, start)
    assert parsed == value
    assert rendered[end:] == f", code=~{quote}5..{quote}}}[1m]))"


_STRICT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|[+-]?[0-9.]+([eE][+-]?[0-9]+)?|([0-9]+[a-z]+)+")


@given(value=st.text())
@example(value="1 or vector(1)")
def test_bare_values_are_single_tokens_or_rejected(value: str) -> None:
    try:
        rendered = render("x > {{args.v}}", {"v": value})
    except PermanentError as error:
        assert "args.v" in str(error)
    else:
        assert rendered == f"x > {value}"
        assert _STRICT.fullmatch(value)


@given(value=st.text())
def test_raw_string_values_round_trip_or_are_rejected(value: str) -> None:
    try:
        rendered = render("up{a=`{{args.v}}`}", {"v": value})
    except PermanentError as error:
        assert "`" in value or "\ufffd" in value
        assert "args.v" in str(error)
    else:
        assert parse_string(rendered, len("up{a=")) == (value, len(rendered) - 1)

"""The ``web`` provider: one number from an HTTP JSON endpoint, picked by a JSONPath.

For health endpoints, SLO services and anything else that already computes a number::

    provider:
      web:
        url: "https://slo.example.com/api/v1/error-ratio?service={{args.service}}"
        jsonPath: "$.data.ratio"
        headers: [{name: Authorization, value: "Bearer ..."}]
    thresholdRange: {max: 0.01}

It serves ``thresholdRange`` metrics only: a comparison needs both variants' request
counts, which a single number cannot give.

Placeholders are ``{{args.NAME}}`` only. A value is percent-encoded in the URL, JSON-string
escaped in the body, and refused in a header if it holds a line break, so an arg can never
change where the request goes or what it says beyond its own slot.

What comes back: the JSONPath's one match as a number (a numeric string is read as one;
``true``/``false`` as 1/0). No match or ``null`` is "no data" (``ScalarSample(None)``).
Several matches, an object, or a body that is not JSON is a permanent failure naming
the URL. Refused connections, timeouts and HTTP 408/429/5xx are transient; other HTTP
errors are permanent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Set
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from canary.api.base import Model
from canary.engine.samples import MetricTask, ProviderFailure, Sample, ScalarSample
from canary.errors import PermanentError
from canary.providers.base import (
    ConfigProblem,
    MetricProvider,
    ProviderPlugin,
    Settings,
    validate_address,
)

__all__ = ["PLUGIN", "WebConfig", "WebMetricProvider"]

_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}\}")
_ANY = re.compile(r"\{\{.*?\}\}")
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MAX_QUOTE = 200


class Header(Model):
    name: str = Field(min_length=1)
    value: str


class WebConfig(Model):
    """``provider: {web: {...}}``."""

    url: str = Field(min_length=1, description="http(s) URL; may use {{args.NAME}}.")
    json_path: str = Field(
        min_length=1, description="JSONPath to the one number, e.g. $.data.ratio."
    )
    method: Literal["GET", "POST"] = "GET"
    headers: list[Header] = Field(default_factory=list)
    body: str | None = Field(default=None, description="POST body; may use {{args.NAME}}.")


def _render(template: str, args: Mapping[str, str], encode: Any, where: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in args:
            raise PermanentError(f"{where}: no value for {{{{args.{name}}}}}; add the arg")
        return str(encode(args[name]))

    rendered = _ARG.sub(one, template)
    unknown = _ANY.search(rendered)
    if unknown:
        raise PermanentError(
            f"{where}: unknown placeholder {unknown.group(0)}; use {{{{args.NAME}}}}"
        )
    return rendered


def _header_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise PermanentError("a header value from an arg may not contain a line break")
    return value


def _json_escaped(value: str) -> str:
    return json.dumps(value)[1:-1]


class WebMetricProvider:
    """Measures threshold metrics against one web endpoint configuration."""

    name = "web"

    def __init__(self, config: WebConfig, *, timeout: float) -> None:
        import httpx  # here, so that linting templates never loads an HTTP client
        from jsonpath_ng.exceptions import JSONPathError
        from jsonpath_ng.ext import parse

        self.config = config
        try:
            self._path = parse(config.json_path)
        except JSONPathError as error:
            raise PermanentError(
                f"jsonPath {config.json_path!r} is not a JSONPath: {error}"
            ) from None
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._httpx = httpx

    def __repr__(self) -> str:
        return f"WebMetricProvider({self.config.url!r})"

    def close(self) -> None:
        self._client.close()

    def measure(self, task: MetricTask) -> Sample:
        """One request; never raises for network, HTTP or body problems."""
        if task.metric.comparison is not None:
            return ProviderFailure(
                "the web provider serves thresholdRange metrics only", transient=False
            )
        try:
            return self._measure(task.args)
        except PermanentError as error:
            return ProviderFailure(str(error), transient=False)

    def _measure(self, args: Mapping[str, str]) -> Sample:
        config = self.config
        url = validate_address(
            _render(config.url, args, lambda v: quote(v, safe=""), "url"),
            field="url",
            whole_url=True,
        )
        headers = {h.name: _render(h.value, args, _header_value, "headers") for h in config.headers}
        body = _render(config.body, args, _json_escaped, "body") if config.body else None
        try:
            response = self._client.request(config.method, url, headers=headers, content=body)
        except self._httpx.TimeoutException:
            return ProviderFailure(f"{url} did not answer in time", transient=True)
        except self._httpx.HTTPError as error:
            return ProviderFailure(f"cannot reach {url}: {error}", transient=True)
        if response.status_code >= 400:
            return ProviderFailure(
                f"{url} answered HTTP {response.status_code}: {response.text[:_MAX_QUOTE]}",
                transient=response.status_code in _TRANSIENT_STATUS,
            )
        try:
            document = response.json()
        except ValueError:
            return ProviderFailure(
                f"{url} did not answer with JSON: {response.text[:_MAX_QUOTE]!r}", transient=False
            )
        return self._value(url, document)

    def _value(self, url: str, document: Any) -> Sample:
        matches = [m.value for m in self._path.find(document)]
        if len(matches) > 1:
            return ProviderFailure(
                f"jsonPath {self.config.json_path} matched {len(matches)} values at {url}; "
                "make it select one",
                transient=False,
            )
        value = matches[0] if matches else None
        if value is None:
            return ScalarSample(None)
        if isinstance(value, bool):
            return ScalarSample(1.0 if value else 0.0)
        try:
            return ScalarSample(float(value))
        except (TypeError, ValueError):
            return ProviderFailure(
                f"jsonPath {self.config.json_path} at {url} gave {str(value)[:_MAX_QUOTE]!r}, "
                "not a number",
                transient=False,
            )


def _build(config: WebConfig, settings: Settings) -> MetricProvider:
    return WebMetricProvider(config, timeout=settings.timeout)


def _check(metric: Mapping[str, Any], where: str, args: Set[str]) -> list[ConfigProblem]:
    from jsonpath_ng.exceptions import JSONPathError
    from jsonpath_ng.ext import parse

    block = metric.get("provider", {}).get("web", {})
    here = f"{where}.provider.web"
    problems = []
    path = block.get("jsonPath")
    if isinstance(path, str):
        try:
            parse(path)
        except JSONPathError as error:
            problems.append(
                ConfigProblem(
                    f"{here}.jsonPath", f"is not a JSONPath ({error})", "write e.g. $.data.ratio"
                )
            )
    slots = [("url", block.get("url")), ("body", block.get("body"))]
    slots += [
        (f"headers[{i}].value", h.get("value"))
        for i, h in enumerate(block.get("headers") or [])
        if isinstance(h, dict)
    ]
    for name, text in slots:
        if not isinstance(text, str):
            continue
        for arg in _ARG.findall(text):
            if arg not in args:
                problems.append(
                    ConfigProblem(
                        f"{here}.{name}",
                        f"uses {{{{args.{arg}}}}}, which is not declared",
                        f"add {arg} to the template's args",
                    )
                )
        leftover = _ANY.search(_ARG.sub("", text))
        if leftover:
            problems.append(
                ConfigProblem(
                    f"{here}.{name}",
                    f"unknown placeholder {leftover.group(0)}",
                    "use {{args.NAME}}",
                )
            )
    return problems


PLUGIN = ProviderPlugin(name="web", config=WebConfig, build=_build, comparisons=False, check=_check)

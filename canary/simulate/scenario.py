"""The simulator's scenario file: the traffic, the two variants, and what goes wrong when.

```yaml
duration: 30m                # simulated time; a run still undecided by then is "still running"
rps: 20                      # total requests per second reaching the service (Poisson)
stable: {error_rate: 0.005, latency_ms: {p50: 40, p99: 180}}
canary: {error_rate: 0.05,  latency_ms: {p50: 40, p99: 180}}
regression_starts_at: 0s     # optional: the canary behaves like stable before this
metrics_outage: [{start: 2m, end: 5m}]   # optional: the provider errors in [start, end)
canary_ready_after: 0s       # optional: the canary Deployment becomes ready this late
scrape_interval: 0s          # optional: metrics are only visible as of the last scrape
harm_until_end: false        # optional: after a promotion, harm counts to the end of the run
harm_until_end: false        # optional: after a promotion, harm counts to the end of the run
seed: 1                      # run i of --runs N uses seed + i
```

Times are measured from the moment the new revision appears (t = 0, the rollout starts).
Durations are Go-style strings (``90s``, ``2m``) or plain numbers of seconds. The latency
model (a log-normal fitted to p50 and p99) is described in :mod:`canary.simulate.traffic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from canary.api.durations import parse_duration

# Histogram bounds (ms) the simulated services export: Prometheus' defaults with extra
# bounds between 50 ms and 1 s, where a p99 regression is read off.
DEFAULT_BUCKETS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2500, 5000, 10000,
)  # fmt: skip


def _seconds(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a duration must be a string such as 90s or a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_duration(value)
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Model):
    p50: float = Field(gt=0, description="Median latency in milliseconds.")
    p99: float = Field(gt=0, description="99th percentile latency in milliseconds.")

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.p99 <= self.p50:
            raise ValueError("latency_ms.p99 must be larger than latency_ms.p50")
        return self


class Variant(_Model):
    error_rate: float = Field(ge=0, le=1, description="Share of requests that fail (5xx).")
    latency_ms: Latency


class Outage(_Model):
    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end <= self.start:
            raise ValueError("a metrics_outage window must end after it starts")
        return self

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


class Scenario(_Model):
    name: str = ""
    description: str = ""
    duration: Seconds = 1800.0
    rps: float = Field(gt=0)
    stable: Variant
    canary: Variant
    regression_starts_at: Seconds = 0.0
    metrics_outage: list[Outage] = Field(default_factory=list)
    canary_ready_after: Seconds = 0.0
    scrape_interval: Seconds = Field(
        default=0.0,
        description="Counters are visible to queries as of the last scrape (a multiple of "
        "this); 0 makes them visible at once.",
    )
    harm_until_end: bool = Field(
        default=False,
        description="Count harmed requests to the end of the run: a promoted revision then "
        "serves all traffic (for regressions that start after promotion).",
    )
    seed: int = 1
    tick: Seconds = Field(
        default=1.0, description="Resolution of the traffic counters (simulated seconds)."
    )
    latency_buckets_ms: tuple[float, ...] = DEFAULT_BUCKETS_MS

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.tick <= 0:
            raise ValueError("tick must be positive")
        bounds = self.latency_buckets_ms
        if not bounds or any(b <= 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError("latency_buckets_ms must be positive and strictly ascending")
        return self

    def outage_at(self, t: float) -> Outage | None:
        return next((o for o in self.metrics_outage if o.covers(t)), None)

    def summary(self) -> str:
        def variant(v: Variant) -> str:
            return (
                f"{100 * v.error_rate:.3g}% errors, p50 {v.latency_ms.p50:g}ms "
                f"p99 {v.latency_ms.p99:g}ms"
            )

        text = f"{self.rps:g} rps; stable {variant(self.stable)}; canary {variant(self.canary)}"
        if self.regression_starts_at > 0:
            text += f" from {self.regression_starts_at:g}s (like stable before)"
        for o in self.metrics_outage:
            text += f"; metrics outage {o.start:g}s-{o.end:g}s"
        return text


class ScenarioError(ValueError):
    """A scenario or canary file that cannot be used; the message says what to change."""


def parse_scenario(data: Mapping[str, Any], *, name: str = "") -> Scenario:
    if not isinstance(data, Mapping):
        raise ScenarioError("a scenario must be a YAML mapping (duration, rps, stable, canary)")
    try:
        scenario = Scenario.model_validate(dict(data))
    except ValueError as exc:
        raise ScenarioError(f"invalid scenario {name or ''}: {exc}".replace("  ", " ")) from None
    if name and not scenario.name:
        scenario = scenario.model_copy(update={"name": name})
    return scenario


BUILTIN_SCENARIOS = (
    "good", "bad", "bad-6x", "moderate", "slightly-bad", "latency-2x", "latency",
    "low-traffic", "noisy", "slow-burn", "outage", "late-regression",
)  # fmt: skip


def builtin_path(name: str) -> Path:
    """The packaged file canary/simulate/scenarios/NAME.yaml."""
    return Path(str(resources.files("canary.simulate").joinpath("scenarios", f"{name}.yaml")))


def load_scenario(where: str | Path) -> Scenario:
    """A scenario from a file, or a built-in one by name (good, bad, ..., outage)."""
    path = Path(where)
    if not path.exists() and str(where) in BUILTIN_SCENARIOS:
        path = builtin_path(str(where))
    try:
        text = path.read_text()
    except OSError as exc:
        known = ", ".join(BUILTIN_SCENARIOS)
        raise ScenarioError(
            f"cannot read scenario {where}: {exc.strerror or exc} (give a file or one of {known})"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path} is not valid YAML: {exc}") from None
    return parse_scenario(data or {}, name=path.stem)

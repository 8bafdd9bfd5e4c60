"""Drive the real engine (``canary.engine.machine.step``) against a simulated world.

One run:

1. Before t = 0 the engine sees the stable revision and initialises it (weight 0),
   with N-primary ready at once.
2. At t = 0 the target's revision changes to the canary's: the rollout starts.
3. On every call the runner generates the traffic up to ``now``, measures each metric
   that :func:`canary.engine.tasks.due_tasks` says is due with the simulated provider,
   and calls ``step()`` with those samples; the canary is ready once
   ``canary_ready_after`` has passed, stable is always ready. ``SetWeight`` changes the
   traffic split from that moment on.
4. The clock jumps straight to the next call the engine asked for
   (``decision.requeue_after``, rounded up to the scenario's tick), so a run costs a few
   dozen engine calls, not one per simulated second.
5. The run ends with the decision: the phase Promoting (promoted; the engine records the
   decision, then N-primary takes the canary's template), or RolledBack or Failed; or at
   ``duration`` ("still running"). A Canary with ``spec.bake`` passes its promotion gate
   into phase Baking first: the run goes on through the bake (the canary at 100 minus
   the holdback, by the engine's SetWeight) until it is promoted or rolled back. Its
   decision time is the gate's (``released_s``, comparable with a policy that promotes
   at once); ``done_s`` is the promotion after the bake, or the rollback.

The Canary's deployWindow is ignored (removed): the simulator is about decisions, not
calendars. Manual requests are never sent, so a ``pause: {}`` step, or an Inconclusive
pause, waits until the end of the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from canary.api.analysis_template import AnalysisTemplate, AnalysisTemplateSpec
from canary.api.canary import Canary, template_key
from canary.api.status import CanaryStatus, Phase
from canary.engine import machine
from canary.engine.actions import Observations, PromoteStable, SetWeight
from canary.engine.bake import BAKE_FAILED
from canary.engine.samples import ProviderFailure, Sample
from canary.engine.tasks import due_tasks
from canary.engine.transitions import ANALYSIS_FAILED, INITIALIZING
from canary.simulate.provider import SimulatedProvider
from canary.simulate.scenario import Scenario, ScenarioError
from canary.simulate.traffic import World
from canary.validation import validate_canary, validate_template

PROMOTED, ROLLED_BACK, FAILED, RUNNING = "promoted", "rolled back", "failed", "still running"
EPOCH = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)  # t = 0: a Tuesday morning
STABLE_REVISION, CANARY_REVISION = "stable-0001", "canary-0002"
_MAX_CALLS_AT_ONCE = 50  # requeue 0 means "right away"; more than this is an engine loop


@dataclass(frozen=True)
class Point:
    """One line of the timeline: the state after a decision at time t."""

    t: float
    weight: float
    phase: str
    verdicts: tuple[tuple[str, str, str], ...]  # (metric, verdict, value)
    note: str = ""


@dataclass
class RunResult:
    policy: str
    scenario: str
    seed: int
    outcome: str
    decision_s: float | None
    canary_requests: int
    harmed_requests: float
    reason: str = ""
    # When the new revision took all traffic, or all but a bake's holdback (promoted, or
    # rolled back in the bake); and when the run was fully done (promoted after its bake,
    # or rolled back). Without a bake both are the decision's time.
    released_s: float | None = None
    done_s: float | None = None
    in_bake: bool = False  # rolled back during the bake
    blind: bool = False  # promoted although the latest measurement was a provider error
    # rolled back, and would not have been without provider errors (an outage)
    by_errors: bool = False
    timeline: list[Point] = field(default_factory=list)
    world: World | None = None  # kept only for plotting

    def summary(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "scenario": self.scenario,
            "seed": self.seed,
            "outcome": self.outcome,
            "decision_s": self.decision_s,
            "canary_requests": self.canary_requests,
            "harmed_requests": round(self.harmed_requests, 3),
            "reason": self.reason,
            "released_s": self.released_s,
            "done_s": self.done_s,
            "rolled_back_in_bake": self.in_bake,
            "promoted_blind": self.blind,
            "rolled_back_by_provider_errors": self.by_errors,
        }


class Recorder:
    """Collects the timeline, keeping a point only when something visible changed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.points: list[Point] = []

    def add(self, point: Point) -> None:
        if not self.enabled:
            return
        last = self.points[-1] if self.points else None
        if last and (last.weight, last.phase, last.verdicts, last.note) == (
            point.weight,
            point.phase,
            point.verdicts,
            point.note,
        ):
            return
        self.points.append(point)


class WatchedProvider(SimulatedProvider):
    """The simulated provider, remembering whether its latest answer was a failure."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.last_failed: bool | None = None  # None: never measured

    def measure(self, task: Any) -> Sample:
        sample = super().measure(task)
        self.last_failed = isinstance(sample, ProviderFailure)
        return sample


def finish(
    policy: str,
    scenario: Scenario,
    seed: int,
    world: World,
    outcome: str,
    decision_s: float | None,
    reason: str,
    *,
    blind: bool = False,
    by_errors: bool = False,
    recorder: Recorder | None = None,
    keep_world: bool = False,
    released_s: float | None = None,
    done_s: float | None = None,
    in_bake: bool = False,
) -> RunResult:
    world.advance(decision_s if decision_s is not None else world.end)
    if outcome == PROMOTED and scenario.harm_until_end:
        # The promoted revision serves everyone to the end of the run; its harm counts.
        world.set_weight(100)
        world.advance(world.end)
    if released_s is None and outcome == PROMOTED:
        released_s = decision_s
    return RunResult(
        policy=policy,
        scenario=scenario.name,
        seed=seed,
        outcome=outcome,
        decision_s=decision_s,
        canary_requests=world.canary_requests(),
        harmed_requests=world.harmed_requests(),
        reason=reason,
        released_s=released_s,
        done_s=decision_s if done_s is None else done_s,
        in_bake=in_bake,
        blind=blind and outcome == PROMOTED,
        by_errors=by_errors and outcome == ROLLED_BACK,
        timeline=recorder.points if recorder else [],
        world=world if keep_world else None,
    )


# ---------------------------------------------------------------- the Canary under test


@dataclass(frozen=True)
class Bundle:
    """A Canary and the templates it may reference (keyed like the engine expects)."""

    canary: Canary
    templates: Mapping[str, AnalysisTemplateSpec]
    source: str = ""


def parse_bundle(docs: list[Any], *, source: str = "") -> Bundle:
    canaries = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Canary"]
    others = [d for d in docs if isinstance(d, dict) and d.get("kind") != "Canary"]
    if len(canaries) != 1:
        raise ScenarioError(
            f"{source or 'the canary file'} must hold exactly one Canary "
            f"(found {len(canaries)}), plus its AnalysisTemplates as further YAML documents"
        )
    templates: dict[str, AnalysisTemplateSpec] = {}
    for doc in others:
        kind = doc.get("kind")
        if kind not in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
            raise ScenarioError(f"{source}: unexpected document of kind {kind!r}")
        problems = validate_template(doc)
        if problems:
            raise ScenarioError(f"{source}: " + "; ".join(str(p) for p in problems))
        template = AnalysisTemplate.model_validate(doc)
        key = template_key(template.metadata.name, kind == "ClusterAnalysisTemplate")
        templates[key] = template.spec
    problems = validate_canary(canaries[0], templates)
    if problems:
        raise ScenarioError(f"{source}: " + "; ".join(str(p) for p in problems))
    try:
        canary = Canary.model_validate(canaries[0])
    except ValidationError as exc:  # validate_canary should have said it already
        raise ScenarioError(f"{source}: {exc}") from None
    # Neither a calendar nor an outside system is simulated: every rollout starts at once,
    # and no webhook holds it (it would wait for an answer that never comes).
    spec = canary.spec.model_copy(update={"deploy_window": None, "webhooks": []})
    canary = canary.model_copy(update={"spec": spec, "status": CanaryStatus()})
    return Bundle(canary, templates, source)


def load_bundle(path: str | Path) -> Bundle:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path} is not valid YAML: {exc}") from None
    return parse_bundle(docs, source=str(path))


# ---------------------------------------------------------------- one engine run


def _verdicts(status: CanaryStatus) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (m.name, m.verdict.value if m.verdict else "-", m.value or "") for m in status.analysis
    )


def run_engine(
    bundle: Bundle,
    scenario: Scenario,
    seed: int,
    *,
    record: bool = False,
    keep_world: bool = False,
    policy: str = "canary",
) -> RunResult:
    """One rollout of the bundle's Canary through the real engine; see the module doc."""
    world = World(scenario, seed)
    provider = WatchedProvider(world)
    recorder = Recorder(record)
    templates = bundle.templates
    canary = bundle.canary
    # Before the rollout: stable is initialised (N-primary ready) and serves everything.
    for call in range(_MAX_CALLS_AT_ONCE):
        ready = Observations(STABLE_REVISION, stable_ready=True, canary_ready=True)
        early = machine.step(canary, templates, ready, EPOCH - timedelta(minutes=5 - call / 60))
        canary = canary.model_copy(update={"status": early.status})
        if early.status.stable_revision and early.status.reason != INITIALIZING:
            break
    else:
        raise RuntimeError(f"the engine did not initialize stable: {canary.status.message}")
    now, same_time = 0.0, 0
    released: float | None = None  # when the bake began
    while True:
        world.advance(now)
        at = EPOCH + timedelta(seconds=now)
        samples = {t.key: provider.measure(t) for t in due_tasks(canary, templates, at)}
        obs = Observations(
            CANARY_REVISION,
            stable_ready=True,
            canary_ready=now >= scenario.canary_ready_after,
            samples=samples,
        )
        decision = machine.step(canary, templates, obs, at)
        for action in decision.actions:
            if isinstance(action, SetWeight):
                world.set_weight(action.weight)
        status = decision.status
        # The decision to promote is the move to Promoting (N-primary then takes the
        # canary's template; traffic is stable's either way once that is done).
        promoted = status.phase in (Phase.PROMOTING, Phase.SUCCEEDED) or any(
            isinstance(a, PromoteStable) for a in decision.actions
        )
        baked = canary.status.phase is Phase.BAKING
        if status.phase is Phase.BAKING and released is None:
            released = now
        canary = canary.model_copy(update={"status": status})
        if record:
            recorder.add(
                Point(
                    now, status.canary_weight, status.phase.value, _verdicts(status), status.reason
                )
            )
        if promoted:
            blind = provider.last_failed is not False
            return finish(
                policy, scenario, seed, world, PROMOTED, now if released is None else released,
                status.message, blind=blind, recorder=recorder, keep_world=keep_world,
                released_s=released, done_s=now,
            )  # fmt: skip
        if status.phase in (Phase.ROLLED_BACK, Phase.FAILED):
            outcome = ROLLED_BACK if status.phase is Phase.ROLLED_BACK else FAILED
            # Only a Fail verdict is evidence against the canary; anything else here (the
            # progress deadline passing while metrics were unavailable) is the outage's doing.
            return finish(
                policy, scenario, seed, world, outcome, now, f"{status.reason}: {status.message}",
                by_errors=status.reason not in (ANALYSIS_FAILED, BAKE_FAILED), recorder=recorder,
                keep_world=keep_world, released_s=released, in_bake=baked,
            )  # fmt: skip
        wait = decision.requeue_after
        following = world.end + 1 if wait is None else now + _on_grid(wait, world.dt)
        if following == now:
            same_time += 1
            if same_time > _MAX_CALLS_AT_ONCE:
                raise RuntimeError(f"the engine asked to be called again at once {same_time}x")
        else:
            same_time = 0
        if following > world.end:
            reason = f"{status.phase.value} ({status.reason}): {status.message}"
            return finish(
                policy, scenario, seed, world, RUNNING, None, reason,
                recorder=recorder, keep_world=keep_world,
            )  # fmt: skip
        now = following


def _on_grid(seconds: float, dt: float) -> float:
    """`seconds` rounded up to the tick grid (0 stays 0: "call again right away")."""
    if seconds <= 0:
        return 0.0
    return math.ceil(seconds / dt - 1e-9) * dt

"""The bake's comparison (engine/bake.py): validity and power by seeded simulation.

During a bake a comparison is judged on the bake's traffic alone: one Segment at the
bake's share (95%, holdback 5%), counts since the bake began, judged after every look
(every 10 s for 15 minutes, 20 requests/s), exactly as verdicts.py hands it over.

- Fail: P(ever Fail in the bake | canary rate <= tolerance x stable rate) <= alpha, A/A
  and at the tolerance; with the rollout's own test before it (test_judge.py's plan), a
  good release is rolled back in at most 2 alpha of releases over rollout and bake.
- Power: errors x10 from 2 minutes into the bake (the late-regression scenario) are
  rolled back within the bake, a median 150 s after they began (seed 35, 100 runs);
  judged pooled with the rollout's minutes of good evidence instead, 430 s: the good
  evidence has to be outweighed first (why the bake runs a test of its own).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_judge import ALPHA, MARGIN, NEVER, TOLERANCE, rollout_traffic, segments_per_look

from canary.api.status import Verdict
from canary.engine.judge.core import Accepted, judge_rates
from canary.engine.judge.ratio import Segment

pytestmark = pytest.mark.unit

RPS, INTERVAL = 20, 10
BAKE_LOOKS = 90  # 15 minutes
SHARE = 0.95
ROLLOUT_LOOKS = 30  # 10% for 30 s, 25% for 30 s, 50% for 4 minutes: a typical gate


def bake_traffic(
    rng: np.random.Generator, runs: int, p_stable: float, p_canary: np.ndarray
) -> np.ndarray:
    """Counts since the bake began after every look, shape (runs, looks, 4); p_canary is
    the canary's error rate per look (a regression can start mid-bake)."""
    total = rng.poisson(RPS * INTERVAL, size=(runs, BAKE_LOOKS))
    canary = rng.binomial(total, SHARE)
    stable = total - canary
    per_look = np.stack(
        [canary, rng.binomial(canary, p_canary), stable, rng.binomial(stable, p_stable)], axis=-1
    )
    return per_look.cumsum(axis=1).astype(float)


def first_fail(segments: list[list[Segment]]) -> int | None:
    """The first look (1-based) whose segments Fail, None if none does."""
    for look, judged in enumerate(segments, start=1):
        verdict = judge_rates(
            judged,
            what="error-rate",
            tolerance=TOLERANCE,
            accepted=Accepted(added=0.0075),
            alpha=ALPHA,
            alpha_pass=ALPHA,
            min_requests=NEVER,  # only Fail is decided: after a Pass the bake still judges
        ).verdict
        if verdict is Verdict.FAIL:
            return look
    return None


@pytest.mark.parametrize(
    ("p_stable", "ratio", "seed"),
    [(0.005, 1.0, 31), (0.02, 1.0, 32), (0.005, TOLERANCE, 33)],
    ids=["A/A-0.5%", "A/A-2%", "at-tolerance-0.5%"],
)
def test_false_rollbacks_in_the_bake_stay_below_alpha(
    p_stable: float, ratio: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    runs = 250
    traffic = bake_traffic(rng, runs, p_stable, np.full(BAKE_LOOKS, ratio * p_stable))
    fails = [first_fail([[Segment(*row)] for row in run.tolist()]) for run in traffic]
    rate = sum(f is not None for f in fails) / runs
    assert rate <= ALPHA + MARGIN, f"false rollbacks in the bake: {rate:.1%} of {runs}"


def test_a_good_release_is_rolled_back_in_at_most_two_alpha_over_rollout_and_bake() -> None:
    rng = np.random.default_rng(34)
    runs = 250
    rollout = rollout_traffic(rng, runs, 0.005, 0.005, ROLLOUT_LOOKS)
    bake = bake_traffic(rng, runs, 0.005, np.full(BAKE_LOOKS, 0.005))
    falsely = 0
    for before, during in zip(rollout, bake, strict=True):
        in_rollout = first_fail(list(segments_per_look(before)))
        in_bake = first_fail([[Segment(*row)] for row in during.tolist()])
        falsely += in_rollout is not None or in_bake is not None
    assert falsely / runs <= 2 * ALPHA + MARGIN, f"{falsely} of {runs} releases"


def test_a_late_regression_is_rolled_back_in_the_bake_and_pooling_would_miss_it() -> None:
    """Errors x10 (0.5% -> 5%) from 2 minutes into the bake. The bake's own test rolls
    back nearly every run within the bake; pooled with the rollout's 5 minutes of good
    evidence, the same traffic is rolled back much later (figures in the README)."""
    rng = np.random.default_rng(35)
    runs = 100
    p_canary = np.where(np.arange(BAKE_LOOKS) < 12, 0.005, 0.05)
    rollout = rollout_traffic(rng, runs, 0.005, 0.005, ROLLOUT_LOOKS)
    bake = bake_traffic(rng, runs, 0.005, p_canary)
    own, pooled = [], []
    for before, during in zip(rollout, bake, strict=True):
        gate = [*segments_per_look(before)][-1]
        bake_segments = [Segment(*row) for row in during.tolist()]
        own.append(first_fail([[s] for s in bake_segments]))
        pooled.append(first_fail([[*gate, s] for s in bake_segments]))
    caught = [f for f in own if f is not None]
    assert len(caught) / runs >= 0.95, f"own test: {len(caught)} of {runs}"
    seconds_after_start = float(np.median(caught)) * INTERVAL - 120
    assert seconds_after_start <= 300, f"median {seconds_after_start:g} s after it began"
    late = [f if f is not None else BAKE_LOOKS + 1 for f in pooled]
    assert float(np.median(late)) * INTERVAL - 120 >= 2 * seconds_after_start

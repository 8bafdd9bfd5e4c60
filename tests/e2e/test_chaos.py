"""A short `make chaos`: one sandbox, a few faulted rollouts, the verdicts users need."""

from __future__ import annotations

from pathlib import Path

from canary.sandbox import chaos

RUNS = [
    ("bad", "kube-apiserver kill -9"),
    ("good", "canary deleted"),
    ("slow-burn", "leader change"),
    ("bad", "prometheus down 10s"),
]


def test_faulted_rollouts_give_right_verdicts_and_leave_traffic_working(tmp_path: Path) -> None:
    runs = chaos.chaos(print, RUNS, seed=7, workdir=tmp_path)
    print(chaos.table(runs))
    for run in runs:
        where = f"{run.scenario} + {run.fault}"
        assert run.got == run.expected, where
        assert not run.blind, where
        assert not run.broken, where
        assert run.fault_failed == 0, where

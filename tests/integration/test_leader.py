"""Leader election on a real Lease: one leader at a time, takeover after silence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from canary.controller.leader import LeaderElector
from canary.kube.client import Kube


def test_one_leader_then_takeover_after_the_lease_goes_quiet(kubeconfig: Path,
                                                               namespace: str) -> None:
    kube = Kube(kubeconfig)
    a = LeaderElector(kube, namespace, "a", duration=15)
    b = LeaderElector(kube, namespace, "b", duration=15)
    start = dt.datetime.now(dt.UTC)

    def at(clock: float) -> dt.datetime:  # wall clock and monotonic clock move together
        return start + dt.timedelta(seconds=clock)

    assert a.try_acquire(at(100.0), 100.0)
    assert not b.try_acquire(at(100.0), 100.0)
    assert a.try_acquire(at(105.0), 105.0)  # the holder renews
    assert not b.try_acquire(at(110.0), 110.0)  # b saw a renewal at 110: not expired
    # a stops renewing; b waits out the lease duration on its own clock, then wins.
    assert not b.try_acquire(at(124.0), 124.0)
    assert b.try_acquire(at(126.0), 126.0)
    lease = kube.get_lease(namespace, "canary-controller")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire(at(127.0), 127.0)

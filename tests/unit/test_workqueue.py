"""The work queue: per-key timers, and one key never handed out twice at once."""

from __future__ import annotations

import threading
import time

from canary.controller.workqueue import WorkQueue


def test_due_keys_come_out_in_time_order() -> None:
    q = WorkQueue()
    q.add("b", after=0.05)
    q.add("a")
    assert q.get(timeout=1) == "a"
    q.done("a")
    assert q.get(timeout=0.01) is None  # b is not due yet
    assert q.get(timeout=1) == "b"


def test_an_earlier_schedule_wins() -> None:
    q = WorkQueue()
    q.add("a", after=60)
    q.add("a", after=0)
    assert q.get(timeout=1) == "a"


def test_a_key_being_processed_is_not_handed_out_again_until_done() -> None:
    q = WorkQueue()
    q.add("a")
    assert q.get(timeout=1) == "a"
    q.add("a")  # an event arrives while a worker holds it
    assert q.get(timeout=0.05) is None
    q.done("a")
    assert q.get(timeout=1) == "a"


def test_different_keys_run_concurrently_and_the_same_key_never_does() -> None:
    q = WorkQueue()
    active: dict[str, int] = {}
    overlaps: list[str] = []
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := q.get(timeout=0.3)) is not None:
            with lock:
                active[key] = active.get(key, 0) + 1
                if active[key] > 1:
                    overlaps.append(key)
                seen.append(key)
            time.sleep(0.01)
            with lock:
                active[key] -= 1
            q.done(key)

    for _ in range(20):
        for key in ("x", "y", "z"):
            q.add(key)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(10):
        q.add("x")
        time.sleep(0.005)
    for t in threads:
        t.join()
    assert overlaps == []
    assert {"x", "y", "z"} <= set(seen)


def test_shutdown_releases_waiting_workers() -> None:
    q = WorkQueue()
    got: list[str | None] = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.shutdown()
    t.join(timeout=2)
    assert got == [None]


def test_a_due_resync_waits_behind_urgent_work() -> None:
    q = WorkQueue()
    for i in range(5):
        q.add(f"settled-{i}", background=True)
    q.add("user-request")
    assert q.get(timeout=1) == "user-request"
    assert q.get(timeout=1) == "settled-0"


def test_an_urgent_add_lifts_a_key_out_of_the_background_lane() -> None:
    q = WorkQueue()
    q.add("a", background=True)
    q.add("b", background=True)
    q.add("b")  # a watch event for b arrives
    assert q.get(timeout=1) == "b"


def test_depth_counts_the_due_keys_of_each_lane_not_the_timers() -> None:
    q = WorkQueue()
    q.add("later", after=60)
    q.add("a")
    q.add("b")
    q.add("resync", background=True)
    assert (q.depth(background=False), q.depth(background=True)) == (2, 1)
    assert q.get(timeout=1) == "a"  # handed to a worker: no longer waiting
    assert q.depth(background=False) == 1
    q.add("a")  # changed again while being processed: waits for done()
    assert q.depth(background=False) == 2

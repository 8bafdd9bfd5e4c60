"""A work queue with per-key timers and two lanes.

Different keys are handed to different workers concurrently; one key is never handed
out twice at once. A key added while it is being processed is queued again once the
worker calls done(), so no change is lost and no reconcile overlaps itself.

Resyncs (a settled Canary revisited in case a watch event was lost) go in the
background lane: a key due there is handed out only when no key is due in the urgent
lane, so a user's request or a rollout in progress never waits behind a thousand
resyncs.
"""

from __future__ import annotations

import heapq
import threading
import time


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        # key -> (earliest monotonic time it should run, in the background lane?)
        self._due: dict[str, tuple[float, bool]] = {}
        self._lanes: dict[bool, list[tuple[float, str]]] = {False: [], True: []}
        self._active: set[str] = set()
        self._shutdown = False

    def add(self, key: str, after: float = 0.0, *, background: bool = False) -> None:
        """Schedule `key` in `after` seconds; an earlier schedule wins over a later one,
        and the urgent lane over the background one."""
        when = time.monotonic() + max(0.0, after)
        with self._cond:
            if key in self._due:
                old_when, old_background = self._due[key]
                if old_when <= when and (background or not old_background):
                    return
                when = min(when, old_when)
                background = background and old_background
            self._due[key] = (when, background)
            heapq.heappush(self._lanes[background], (when, key))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> str | None:
        """The next due key that no worker holds; None on shutdown or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._shutdown:
                now = time.monotonic()
                waits = []
                for background in (False, True):
                    ready = self._pop_ready(background, now)
                    if isinstance(ready, str):
                        return ready
                    waits.append(ready)
                wait = min(waits)
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wait = min(wait, deadline - now)
                self._cond.wait(wait)
            return None

    def _pop_ready(self, background: bool, now: float) -> str | float:
        heap = self._lanes[background]
        skipped: list[tuple[float, str]] = []
        try:
            while heap:
                when, key = heap[0]
                if self._due.get(key) != (when, background):  # superseded by another add
                    heapq.heappop(heap)
                    continue
                if when > now:
                    return when - now
                heapq.heappop(heap)
                if key in self._active:  # re-run after the current worker finishes
                    skipped.append((when, key))
                    continue
                del self._due[key]
                self._active.add(key)
                return key
            return 1.0
        finally:
            for item in skipped:
                heapq.heappush(heap, item)

    def depth(self, *, background: bool) -> int:
        """Keys of one lane that are due and wait for a worker. Keys whose timer has not
        run out yet do not count: every Canary has one, so their number says nothing
        about how far behind the workers are."""
        now = time.monotonic()
        with self._cond:
            return sum(1 for when, bg in self._due.values() if bg is background and when <= now)

    def done(self, key: str) -> None:
        with self._cond:
            self._active.discard(key)
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

"""A work queue with per-key timers.

Different keys are handed to different workers concurrently; one key is never handed
out twice at once. A key added while it is being processed is queued again once the
worker calls done(), so no change is lost and no reconcile overlaps itself.
"""

from __future__ import annotations

import heapq
import threading
import time


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[str, float] = {}  # key -> earliest monotonic time it should run
        self._heap: list[tuple[float, str]] = []
        self._active: set[str] = set()
        self._shutdown = False

    def add(self, key: str, after: float = 0.0) -> None:
        """Schedule `key` in `after` seconds; an earlier schedule wins over a later one."""
        when = time.monotonic() + max(0.0, after)
        with self._cond:
            if key in self._due and self._due[key] <= when:
                return
            self._due[key] = when
            heapq.heappush(self._heap, (when, key))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> str | None:
        """The next due key that no worker holds; None on shutdown or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._shutdown:
                now = time.monotonic()
                wait = self._pop_ready(now)
                if isinstance(wait, str):
                    return wait
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wait = min(wait, deadline - now)
                self._cond.wait(wait)
            return None

    def _pop_ready(self, now: float) -> str | float:
        skipped: list[tuple[float, str]] = []
        try:
            while self._heap:
                when, key = self._heap[0]
                if self._due.get(key) != when:  # superseded by an earlier add
                    heapq.heappop(self._heap)
                    continue
                if when > now:
                    return when - now
                heapq.heappop(self._heap)
                if key in self._active:  # re-run after the current worker finishes
                    skipped.append((when, key))
                    continue
                del self._due[key]
                self._active.add(key)
                return key
            return 1.0
        finally:
            for item in skipped:
                heapq.heappush(self._heap, item)

    def done(self, key: str) -> None:
        with self._cond:
            self._active.discard(key)
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

"""Liveness and readiness for the controller: /healthz and /readyz on a small HTTP server,
which also serves the controller's /metrics (canary/controller/telemetry.py).

Kubernetes restarts a container whose liveness probe fails, and keeps one that is not
ready out of rotation (and out of a rolling update's way). So:

- /healthz fails when a worker thread has not come back to its loop for LIVE_SECONDS:
  every API and Prometheus call has a timeout, so a worker stuck that long is wedged,
  and only a restart frees it;
- /readyz fails while the API server has not answered for READY_SECONDS (each watch
  re-opens at least every minute, so a healthy controller hears from it far more often),
  and whenever /healthz fails. A replica standing by for the leader Lease is ready.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIVE_SECONDS = 300.0
READY_SECONDS = 150.0


class Health:
    """Heartbeats of the controller's threads and its last contact with the API server."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}
        self._contact: float | None = None
        self.standing_by = False

    def beat(self, thread: str) -> None:
        with self._lock:
            self._beats[thread] = self._clock()

    def contacted(self) -> None:
        """The API server just answered."""
        with self._lock:
            self._contact = self._clock()

    def live(self) -> tuple[bool, str]:
        now = self._clock()
        with self._lock:
            stuck = sorted(name for name, at in self._beats.items() if now - at > LIVE_SECONDS)
        if stuck:
            return False, f"stuck for over {LIVE_SECONDS:.0f}s: {', '.join(stuck)}"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        live, why = self.live()
        if not live:
            return False, why
        if self.standing_by:
            return True, "ok: standing by for the leader Lease"
        with self._lock:
            contact = self._contact
        if contact is None:
            return False, "the API server has not answered yet"
        silent = self._clock() - contact
        if silent > READY_SECONDS:
            return False, f"the API server has not answered for {silent:.0f}s"
        return True, "ok"


# The Accept header of the scrape, to the exposition and its content type.
Exposition = Callable[[str], tuple[bytes, str]]


def serve(
    health: Health, port: int, host: str = "0.0.0.0", metrics: Exposition | None = None
) -> ThreadingHTTPServer:
    """Serve the probes, and /metrics if given, on a daemon thread; the caller shuts the
    server down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics" and metrics is not None:
                body, content_type = metrics(self.headers.get("Accept", ""))
                self._send_bytes(200, body, content_type)
                return
            checks = {"/healthz": health.live, "/readyz": health.ready}
            check = checks.get(path)
            if check is None:
                paths = "/healthz, /readyz" + (" or /metrics" if metrics else "")
                self._send(404, f"not found: {paths}")
                return
            ok, why = check()
            self._send(200 if ok else 503, why)

        def _send(self, code: int, text: str) -> None:
            self._send_bytes(code, (text + "\n").encode(), "text/plain; charset=utf-8")

        def _send_bytes(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the controller's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server

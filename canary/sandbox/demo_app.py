"""The demo's application: a real HTTP server with Prometheus metrics.

    python -m canary.sandbox.demo_app --port 8080 --version v2 --error-rate 0.2 --latency-ms 20

GET /         200 "hello from v2", or 500 for `--error-rate` of the requests (at random),
              after sleeping about `--latency-ms` (log-normal jitter around that median);
              with `--errors-when-file PATH`, errors only while PATH exists
GET /metrics  Prometheus text: counter `http_requests_total{code, method}` and histogram
              `http_request_duration_seconds` (buckets 5 ms .. 2.5 s)
GET /healthz  200 "ok", no sleep, not counted: the stand-in kubelet's readiness probe

The app never names its variant or service: the scraper attaches `service`, `variant`
and `deployment` as target labels (see canary.sandbox.kubelet), as Kubernetes service
discovery would. It listens on 127.0.0.1 only and logs nothing per request.
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
JITTER_SIGMA = 0.25  # log-normal sigma: p99 is about 1.8x the median


class App:
    def __init__(self, version: str, error_rate: float, latency_ms: float,
                 rng: random.Random | None = None, errors_when: Path | None = None):
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error rate must be within [0, 1], got {error_rate}")
        if latency_ms < 0:
            raise ValueError(f"latency must be >= 0 ms, got {latency_ms}")
        self.version = version
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        self.errors_when = errors_when
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.in_flight = 0
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("http_requests", "HTTP requests served.",
                                ["code", "method"], registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds",
                                  "Time spent serving HTTP requests.",
                                  buckets=BUCKETS, registry=self.registry)
        # Both outcomes exist from the first scrape, at 0: rate() then counts the very
        # first error instead of missing it when the series would appear already at 1.
        for code in ("200", "500"):
            self.requests.labels(code=code, method="GET")

    def draw(self) -> tuple[float, bool]:
        """(seconds to sleep, fail?) for one request."""
        with self._rng_lock:
            jitter = self._rng.lognormvariate(0.0, JITTER_SIGMA) if self.latency_ms > 0 else 0.0
            fail = self._rng.random() < self.error_rate
        if fail and self.errors_when is not None:
            fail = self.errors_when.exists()
        return self.latency_ms / 1000.0 * jitter, fail


def make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"canary-demo/{app.version}"

        def _send(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, prometheus_client.generate_latest(app.registry),
                           CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b"ok\n")
            else:
                self._serve()

        do_HEAD = do_GET

        def _serve(self) -> None:
            started = time.perf_counter()
            with app._rng_lock:
                app.in_flight += 1
            try:
                delay, fail = app.draw()
                if delay > 0:
                    time.sleep(delay)
                code = 500 if fail else 200
                body = f"error from {app.version}\n" if fail else f"hello from {app.version}\n"
                self._send(code, body.encode())
                app.requests.labels(code=str(code), method=self.command).inc()
                app.duration.observe(time.perf_counter() - started)
            finally:
                with app._rng_lock:
                    app.in_flight -= 1

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(port: int, app: App, host: str = "127.0.0.1") -> Server:
    """Bind and return the server; call `serve_forever()` on it (tests run it in a thread)."""
    return Server((host, port), make_handler(app))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canary.sandbox.demo_app",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--version", default="v1")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--errors-when-file", type=Path, default=None)
    args = parser.parse_args(argv)
    if not math.isfinite(args.error_rate) or not 0.0 <= args.error_rate <= 1.0:
        parser.error("--error-rate must be within [0, 1]")
    if not math.isfinite(args.latency_ms) or args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")
    if hasattr(prometheus_client, "disable_created_metrics"):
        prometheus_client.disable_created_metrics()  # no *_created series: less noise
    app = App(args.version, args.error_rate, args.latency_ms, errors_when=args.errors_when_file)
    try:
        server = serve(args.port, app, args.host)
    except OSError as exc:
        print(f"demo_app: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    def shutdown(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    print(f"demo_app {app.version} listening on {args.host}:{server.server_port} "
          f"(error rate {app.error_rate}, latency {app.latency_ms} ms)", flush=True)
    server.serve_forever(poll_interval=0.2)
    # Drain: let requests already being served finish (bounded), as a pod's grace period.
    deadline = time.monotonic() + 2.0
    while app.in_flight > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

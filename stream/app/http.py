"""The HTTP endpoint of ``serve`` and ``ingest``: ``/metrics`` serves the registry in the text
exposition format, ``/healthz`` (liveness) answers 200 while the main loop keeps ticking
(:class:`LoopHealth`) and 503 once it has stalled longer than its bound, and ``/readyz``
answers 200 only when the readiness callback says so and 503 with the reason otherwise."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Callable

from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from stream.app.metrics import IngestMetrics, Metrics


class LoopHealth:
    """Liveness of the main loop: it calls :meth:`tick` once per iteration, the probe asks :meth:`alive`.

    The HTTP server answers from its own thread, so "the server answered" proves nothing about a
    poll loop stuck in a hung inference call, a deadlock or an endless ``flush``. ``alive`` is
    false once the last tick is older than ``max_stall_s``. Choose the bound below the consumer's
    ``max_poll_interval_ms``: a loop that stalls that long is thrown out of the group anyway, and
    restarting the pod first gets its partitions back sooner (static membership).

    Before the first tick the loop has not started (model loading, joining): ``alive`` is true
    and the startup probe is what bounds that phase.

    >>> now = [100.0]
    >>> h = LoopHealth(max_stall_s=30, clock=lambda: now[0])
    >>> h.alive()
    (True, 'loop not started yet')
    >>> h.tick(); now[0] += 31
    >>> h.alive()
    (False, 'main loop stalled: last tick 31.0 s ago (bound 30 s)')
    """

    def __init__(self, *, max_stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not max_stall_s > 0:
            raise ValueError(f"max_stall_s must be > 0, got {max_stall_s!r}")
        self.max_stall_s = max_stall_s
        self._clock = clock
        self._last: float | None = None

    def tick(self) -> None:
        self._last = self._clock()

    def alive(self) -> tuple[bool, str]:
        last = self._last
        if last is None:
            return True, "loop not started yet"
        age = self._clock() - last
        if age > self.max_stall_s:
            return False, f"main loop stalled: last tick {age:.1f} s ago (bound {self.max_stall_s:g} s)"
        return True, f"ok (last tick {age:.1f} s ago)"


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per request, at most ``max_handlers`` at once: a connection beyond them is closed
    at once instead of starting another thread (a scrape flood cannot exhaust the process)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, *, max_handlers: int) -> None:
        self._slots = threading.BoundedSemaphore(max_handlers)
        self.max_handlers = max_handlers
        super().__init__(address, handler)

    @property
    def busy(self) -> int:
        """Handlers running now."""
        return self.max_handlers - self._slots._value   # type: ignore[attr-defined]

    def process_request(self, request: object, client_address: object) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: object, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on a background thread.

    ``host`` is the bind address (``metrics_bind``: 0.0.0.0 so that Prometheus and the kubelet
    reach it in a container; 127.0.0.1 keeps it on the machine). A client gets ``timeout_s`` to
    send its request and read the answer, and at most ``max_handlers`` requests run at once."""

    def __init__(self, metrics: "Metrics | IngestMetrics", *, port: int, host: str = "0.0.0.0",
                 ready: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
                 alive: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
                 timeout_s: float = 5.0, max_handlers: int = 8) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = timeout_s   # a slow or silent client is dropped, not waited for

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok, why = owner.alive()
                    self._send(200 if ok else 503, (why + "\n").encode())
                elif path == "/readyz":
                    ok, why = owner.ready()
                    self._send(200 if ok else 503, (why + "\n").encode())
                else:
                    self._send(404, b"not found\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.ready = ready
        self.alive = alive
        try:
            self._server = _BoundedHTTPServer((host, port), Handler, max_handlers=max_handlers)
        except OSError as exc:   # typically EADDRINUSE: name the port, not errno 98
            from stream.errors import StreamError

            raise StreamError(f"cannot serve metrics on {host}:{port} (--metrics-port / metrics_port): "
                              f"{exc.strerror or exc}; pick another port or stop what holds it") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def busy_handlers(self) -> int:
        """Requests being handled now (at most ``max_handlers``)."""
        return self._server.busy

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

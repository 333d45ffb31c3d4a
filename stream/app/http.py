"""The HTTP endpoint of ``serve`` and ``ingest``: ``/metrics`` serves the registry in the text
exposition format, ``/healthz`` (liveness) answers 200 while the main loop keeps ticking
(:class:`LoopHealth`) and 503 once it has stalled longer than its bound, and ``/readyz``
answers 200 only when the readiness callback says so and 503 with the reason otherwise. Other
paths may be served by ``routes`` (the live page of ``soccerkd view``), under the same rules.

Hostile or slow clients cannot starve the probes: one thread reads every request with a total
deadline (not a thread per connection, not a timeout per read), and the probes are answered from
slots of their own that scrapes never take (:class:`MetricsServer`)."""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from typing import TYPE_CHECKING, Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from stream.app.metrics import IngestMetrics, Metrics

log = logging.getLogger(__name__)
PROBES = ("/healthz", "/readyz")
# A route answers a request target (path and query) with (status, body, content type).
Route = Callable[[str], "tuple[int, bytes, str]"]


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


class _DropLog:
    """Counts connections the endpoint closed without serving them, and says so in one line at
    most every ``every_s`` (the first at once): a flood of slow or surplus clients must not flood
    the log, and never with a traceback per connection."""

    def __init__(self, *, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.totals: dict[str, int] = {}
        self._window: dict[str, int] = {}
        self._every_s = every_s
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def count(self, reason: str) -> None:
        with self._lock:
            self.totals[reason] = self.totals.get(reason, 0) + 1
            self._window[reason] = self._window.get(reason, 0) + 1
            now = self._clock()
            if now < self._next:
                return
            window, self._window, self._next = self._window, {}, now + self._every_s
        log.warning("metrics endpoint: closed %d connection(s) without serving them (%s); at most one such line "
                    "every %g s", sum(window.values()), ", ".join(f"{k}: {v}" for k, v in sorted(window.items())),
                    self._every_s)


PROBE_GRACE_S = 0.25   # how long a probe waits for a busy probe slot before its 503


class _Slots:
    """At most ``size`` calls running at once, each on a thread of its own; a call beyond them is
    refused, after waiting up to ``grace_s`` for a slot to come free."""

    def __init__(self, size: int, grace_s: float = 0.0) -> None:
        if size < 1:
            raise ValueError(f"a handler pool needs at least 1 slot, got {size!r}")
        self.size, self.grace_s = size, grace_s
        self._free = threading.BoundedSemaphore(size)

    @property
    def busy(self) -> int:
        return self.size - self._free._value   # type: ignore[attr-defined]

    def run(self, fn: Callable[..., None], *args: object) -> bool:
        if not self._free.acquire(timeout=self.grace_s):   # timeout 0: do not wait at all
            return False

        def body() -> None:
            try:
                fn(*args)
            finally:
                self._free.release()

        try:
            threading.Thread(target=body, name="metrics-http-handler", daemon=True).start()
        except BaseException:
            self._free.release()
            raise
        return True


class _Pending:
    __slots__ = ("conn", "deadline", "data")

    def __init__(self, conn: socket.socket, deadline: float) -> None:
        self.conn, self.deadline, self.data = conn, deadline, bytearray()


class _RequestReader:
    """Accepts connections and reads each request line and headers on one thread, without a thread
    per connection, and hands each complete request to ``dispatch(conn, method, path)``.

    A request must arrive whole within ``deadline_s`` of its connection (a total, not per read:
    one byte every few seconds does not keep a connection), in at most ``max_bytes``. At most
    ``max_pending`` connections wait for their request; one more closes the one that has waited
    longest. A probe's request arrives with its connection and is read within milliseconds, so
    slow clients cannot crowd it out: they only push each other out."""

    def __init__(self, listener: socket.socket, dispatch: Callable[[socket.socket, str, str], None], *,
                 deadline_s: float, max_pending: int, drops: _DropLog, max_bytes: int = 8192) -> None:
        if not deadline_s > 0:
            raise ValueError(f"the request deadline must be > 0 s, got {deadline_s!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending!r}")
        self._listener = listener
        self._dispatch = dispatch
        self.deadline_s, self.max_pending, self.max_bytes = deadline_s, max_pending, max_bytes
        self._drops = drops
        self._pending: OrderedDict[int, _Pending] = OrderedDict()   # in accept order: oldest first
        self._sel = selectors.DefaultSelector()

    @property
    def pending(self) -> int:
        """Connections whose request has not arrived whole yet."""
        return len(self._pending)

    def serve(self, stop: threading.Event) -> None:
        self._listener.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ)
        try:
            while not stop.is_set():
                for key, _ in self._sel.select(timeout=0.1):
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        self._read(key.fd)
                self._expire()
        finally:
            for fd in list(self._pending):
                self._drop(fd, None)
            self._sel.close()

    def _accept(self) -> None:
        for _ in range(64):   # a burst of connections does not starve the reads
            try:
                conn, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:   # e.g. EMFILE: the next select tries again
                self._drops.count("accept failed")
                return
            conn.setblocking(False)
            if len(self._pending) >= self.max_pending:
                self._drop(next(iter(self._pending)), "evicted by a newer connection")
            fd = conn.fileno()
            self._pending[fd] = _Pending(conn, time.monotonic() + self.deadline_s)
            self._sel.register(conn, selectors.EVENT_READ)
            self._read(fd)   # a probe's request is usually there already

    def _read(self, fd: int) -> None:
        p = self._pending.get(fd)
        if p is None:
            return
        try:
            chunk = p.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd, None)
            return
        if not chunk:   # the client hung up before its request was whole
            self._drop(fd, None)
            return
        p.data += chunk
        end = p.data.find(b"\r\n\r\n")
        if end < 0:
            end = p.data.find(b"\n\n")
        if end < 0:
            if len(p.data) > self.max_bytes:
                self._drop(fd, "request too large")
            return
        self._release(fd)
        words = bytes(p.data[:end]).split(b"\n", 1)[0].split()
        if len(words) != 3 or not words[2].startswith(b"HTTP/"):
            _answer_now(p.conn, 400, b"bad request\n")
            return
        try:
            self._dispatch(p.conn, words[0].decode("latin-1"), words[1].decode("latin-1"))
        except Exception as exc:   # e.g. no thread could be started: this request only, never the reader
            p.conn.close()
            self._drops.count(f"not dispatched: {type(exc).__name__}: {exc}")

    def _expire(self) -> None:
        now = time.monotonic()
        while self._pending:
            fd, p = next(iter(self._pending.items()))
            if p.deadline > now:
                return
            self._drop(fd, "request not complete in time")

    def _release(self, fd: int) -> socket.socket:
        p = self._pending.pop(fd)
        self._sel.unregister(p.conn)
        return p.conn

    def _drop(self, fd: int, reason: str | None) -> None:
        conn = self._release(fd)
        conn.close()
        if reason is not None:
            self._drops.count(reason)


def _response(code: int, body: bytes, ctype: str = "text/plain; charset=utf-8", *, head: bool = False,
              extra: str = "") -> bytes:
    status = f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\n"
    headers = f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    return (status + headers).encode("latin-1") + (b"" if head else body)


_PAGE_HEADERS = ("Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                 "Content-Security-Policy: default-src 'self'; img-src 'self'; frame-ancestors 'none'\r\n")


def _answer_now(conn: socket.socket, code: int, body: bytes) -> None:
    """A short answer from the reader thread: one non-blocking send (it fits any socket buffer), then close."""
    try:
        conn.send(_response(code, body))
    except OSError:
        pass
    finally:
        conn.close()


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on background threads.

    ``host`` is the bind address (``metrics_bind``: 0.0.0.0 so that Prometheus and the kubelet
    reach it in a container; 127.0.0.1 keeps it on the machine). A client has ``timeout_s`` in
    all, from its connection, to send its request line and headers, and again ``timeout_s`` in all
    to take the answer. At most ``max_pending`` connections wait for their request (one more
    closes the one that has waited longest); at most ``max_handlers`` scrapes and, apart from
    them, ``probe_handlers`` probes are answered at once. A request beyond its slots gets a 503 at
    once. Connections closed without an answer are logged in one line at most every 10 s.

    ``routes`` maps further paths to their handler (a key ending in ``/*`` takes every path below
    it); they share the scrape slots, and their answers are never cached (``Cache-Control:
    no-store``) and may load nothing from another origin (``Content-Security-Policy``). ``what``
    and ``flags`` name the endpoint and its options in the error of a port that cannot be bound."""

    def __init__(self, metrics: "Metrics | IngestMetrics", *, port: int, host: str = "0.0.0.0",
                 ready: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
                 alive: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
                 timeout_s: float = 5.0, max_handlers: int = 8, probe_handlers: int = 2,
                 max_pending: int = 64, routes: Mapping[str, Route] | None = None,
                 what: str = "metrics", flags: str = "--metrics-port / metrics_port") -> None:
        self.metrics = metrics
        self.routes = dict(routes or {})
        self.ready = ready
        self.alive = alive
        self.timeout_s = timeout_s
        self.max_handlers = max_handlers
        self._scrapes = _Slots(max_handlers)
        # A probe's handler frees its slot only after its client has the answer, so on a loaded
        # host a prober that asks again at once can find both slots still held: it waits briefly
        # for one (the reader thread stalls at most that long per probe) instead of getting a 503.
        self._probes = _Slots(probe_handlers, grace_s=PROBE_GRACE_S)
        self.drops = _DropLog()
        try:
            self._listener = socket.create_server((host, port), backlog=128,
                                                  family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:   # typically EADDRINUSE: name the port, not errno 98
            from stream.errors import StreamError

            raise StreamError(f"cannot serve {what} on {host}:{port} ({flags}): "
                              f"{exc.strerror or exc}; pick another port or stop what holds it") from exc
        self._reader = _RequestReader(self._listener, self._dispatch, deadline_s=timeout_s, max_pending=max_pending,
                                      drops=self.drops)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reader.serve, args=(self._stop,), name="metrics-http",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def busy_handlers(self) -> int:
        """Scrapes being answered now (at most ``max_handlers``)."""
        return self._scrapes.busy

    @property
    def pending_requests(self) -> int:
        """Connections whose request has not arrived whole yet (at most ``max_pending``)."""
        return self._reader.pending

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._listener.close()

    def _dispatch(self, conn: socket.socket, method: str, target: str) -> None:
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            _answer_now(conn, 405, b"method not allowed\n")
        elif path not in PROBES and path != "/metrics" and self._route(path) is None:
            _answer_now(conn, 404, b"not found\n")
        elif not (self._probes if path in PROBES else self._scrapes).run(self._answer, conn, target, method == "HEAD"):
            self.drops.count("all probe slots busy" if path in PROBES else "all scrape slots busy")
            _answer_now(conn, 503, b"busy\n")

    def _route(self, path: str) -> Route | None:
        if path in self.routes:
            return self.routes[path]
        return next((fn for key, fn in self.routes.items() if key.endswith("/*") and path.startswith(key[:-1])
                     and len(path) > len(key) - 1), None)

    def _answer(self, conn: socket.socket, target: str, head: bool) -> None:
        path = target.split("?", 1)[0]
        try:
            route = None if path in PROBES or path == "/metrics" else self._route(path)
            if route is not None:
                code, body, ctype = route(target)
                answer = _response(code, body, ctype, head=head, extra=_PAGE_HEADERS)
            elif path == "/metrics":
                answer = _response(200, self.metrics.exposition(), CONTENT_TYPE_LATEST, head=head)
            else:
                ok, why = (self.alive if path == "/healthz" else self.ready)()
                answer = _response(200 if ok else 503, (why + "\n").encode(), head=head)
        except Exception as exc:   # a bug in a callback: one line, not a traceback per request
            self.drops.count(f"{path} failed: {type(exc).__name__}: {exc}")
            answer = _response(500, b"internal error\n", head=head)
        try:
            conn.setblocking(True)
            conn.settimeout(self.timeout_s)   # a total for sendall, not per send
            conn.sendall(answer)
        except OSError:
            self.drops.count("answer not taken in time")
        finally:
            conn.close()

"""The metrics endpoint under abuse: silent clients time out, and at most ``max_handlers``
requests hold a thread; the rest are closed at once and the endpoint serves again after."""

import socket
import time
import urllib.request

from prometheus_client import CollectorRegistry

from stream.app.http import MetricsServer
from stream.app.metrics import Metrics


def test_silent_clients_time_out_and_handlers_are_bounded():
    server = MetricsServer(Metrics(CollectorRegistry()), port=0, host="127.0.0.1", timeout_s=1.0,
                           max_handlers=2).start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]   # hold both handlers
        deadline = time.monotonic() + 5
        while server.busy_handlers < 2 and time.monotonic() < deadline:   # accepted (not a fixed sleep: load)
            time.sleep(0.01)
        assert server.busy_handlers == 2
        extra = socket.create_connection(("127.0.0.1", server.port))
        extra.settimeout(2)
        extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert extra.recv(100) == b"", "a request beyond max_handlers is closed without an answer"
        t0 = time.monotonic()
        for s in silent:   # the server drops each silent client after its timeout
            s.settimeout(5)
            assert s.recv(100) == b""
        assert time.monotonic() - t0 < 4
        with urllib.request.urlopen(url, timeout=5) as r:   # and serves again
            assert r.status == 200 and b"soccerkd_windows_total" in r.read()
    finally:
        server.stop()

"""Live cameras for tests and demos, served on 127.0.0.1."""

from __future__ import annotations

from typing import Any, Callable



class MjpegServer:
    """A live camera for tests: an HTTP MJPEG stream (``multipart/x-mixed-replace``, what IP
    cameras serve) of ``frames(i)`` at ``fps`` on 127.0.0.1, that OpenCV opens like any camera.

    :meth:`outage` drops every connection and refuses new ones for a while, then the camera
    comes back and frame numbering continues, as a camera whose network link failed would.
    """

    def __init__(self, frame: Callable[[int], Any] | None = None, *, fps: float = 25.0, size=(96, 72)) -> None:
        import http.server
        import socketserver
        import threading

        import numpy as np

        self.fps, self.size = fps, size
        self.frame = frame or (lambda i: np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8))
        self.index = 0            # next frame number served
        self.down = threading.Event()
        self.connections = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                import time

                import cv2

                if owner.down.is_set():
                    self.send_error(503, "camera down")
                    return
                owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not owner.down.is_set() and not owner._closed:
                        ok, jpg = cv2.imencode(".jpg", owner.frame(owner.index))
                        body = jpg.tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(body) + body + b"\r\n")
                        owner.index += 1
                        time.sleep(1.0 / owner.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._closed = False
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/camera.mjpg"

    def start(self) -> "MjpegServer":
        self._thread.start()
        return self

    def outage(self, seconds: float) -> None:
        """Drop the stream now and refuse connections for ``seconds`` (blocks that long)."""
        import time

        self.down.set()
        time.sleep(seconds)
        self.down.clear()

    def stop(self) -> None:
        self._closed = True
        self._server.shutdown()
        self._server.server_close()


"""A product-picture server that has no pictures: counts requests, answers 404, optionally holds each
request until released (so a generation stays busy for as long as a test needs)."""

from __future__ import annotations

import http.server
import threading


class MissingPictures:
    """Every GET is counted and answered 404; with hold=True only once `release` is set."""

    def __init__(self, hold: bool = False) -> None:
        self.count = 0
        self.arrived = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        server_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server_self.count += 1
                server_self.arrived.set()
                server_self.release.wait(30)
                self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        """Releases held requests and stops serving."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

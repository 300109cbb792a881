"""The HTTP side port: /healthz, /metrics, and the local store's images."""

from __future__ import annotations

import concurrent.futures
import http.server
import logging
import threading
from collections.abc import Callable

from imagegen.errors import ImageGenError
from imagegen.observability import Metrics
from imagegen.stores.local import URL_PATH, LocalImageStore, content_type_for

log = logging.getLogger(__name__)


class _PooledHTTPServer(http.server.HTTPServer):
    """An HTTP server with a fixed pool and a bounded backlog: a flood of connections cannot grow
    threads, memory or open sockets; connections beyond the backlog are closed at once."""

    def __init__(self, address: tuple[str, int], handler: type, workers: int) -> None:
        super().__init__(address, handler)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http")
        self._backlog = threading.BoundedSemaphore(workers * 4)

    def process_request(self, request, client_address) -> None:  # noqa: ANN001 (socketserver API)
        if not self._backlog.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._serve_one, request, client_address)
        except RuntimeError:  # closing
            self._backlog.release()
            self.shutdown_request(request)

    def _serve_one(self, request, client_address) -> None:  # noqa: ANN001
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 (one bad connection must not end the server)
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._backlog.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class SidePort:
    """Serves health, metrics and (for the local store) images on HTTP_PORT."""

    def __init__(
        self,
        port: int,
        metrics: Metrics,
        healthy: Callable[[], bool],
        store: LocalImageStore | None,
        host: str = "",
        workers: int = 8,
    ) -> None:
        handler = _make_handler(metrics, healthy, store)
        self._server = _PooledHTTPServer((host, port), handler, workers)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-side-port", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return self._server.server_address[1]

    def start(self) -> None:
        """Starts serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops serving and closes the socket."""
        self._server.shutdown()
        self._server.server_close()


def _make_handler(metrics: Metrics, healthy: Callable[[], bool], store: LocalImageStore | None) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 10  # a slow client cannot hold a pool worker for long
        server_version = "imagegenservice"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            self._respond(with_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._respond(with_body=False)

        def _respond(self, with_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok = healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"shutting down\n", "text/plain", with_body)
            elif path == "/metrics":
                body, content_type = metrics.exposition()
                self._send(200, body, content_type, with_body)
            elif store is not None and path.startswith(URL_PATH):
                name = path[len(URL_PATH) :]
                try:
                    body = store.get(name)
                except ImageGenError:
                    self._send(404, b"not found\n", "text/plain", with_body)
                    return
                self._send(200, body, content_type_for(name), with_body, cache="public, max-age=31536000, immutable")
            else:
                self._send(404, b"not found\n", "text/plain", with_body)

        def _send(self, code: int, body: bytes, content_type: str, with_body: bool, cache: str = "no-store") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server API)
            log.debug("http %s", format % args)

    return Handler

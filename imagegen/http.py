"""The HTTP side port: /healthz, /metrics, and the local store's images, served by waitress.

waitress reads and writes every connection with non-blocking I/O on one thread and hands only
complete requests to its worker threads, so clients that connect and send nothing, or trickle their
headers (slowloris), hold no worker: the kubelet's checks and image downloads are served meanwhile.
Idle connections are closed after HTTP_IDLE_TIMEOUT_SECONDS, open ones are bounded by
HTTP_MAX_CONNECTIONS, and request headers by waitress's 256 KiB.
"""

from __future__ import annotations

import logging
import resource
import threading
from collections.abc import Callable, Iterable

from waitress import wasyncore
from waitress.server import create_server

from imagegen.errors import ImageGenError
from imagegen.observability import Metrics
from imagegen.stores.local import URL_PATH, LocalImageStore, content_type_for

log = logging.getLogger(__name__)

_REASONS = {200: "200 OK", 404: "404 Not Found", 405: "405 Method Not Allowed", 503: "503 Service Unavailable"}


class SidePort:
    """Serves health, metrics and (for the local store) images on HTTP_PORT."""

    def __init__(
        self,
        port: int,
        metrics: Metrics,
        healthy: Callable[[], bool],
        store: LocalImageStore | None,
        host: str = "0.0.0.0",
        workers: int = 4,
        idle_timeout_seconds: int = 10,
        max_connections: int = 10_000,
    ) -> None:
        _allow_open_files(max_connections + 1024)
        self._server = create_server(
            _application(metrics, healthy, store),
            host=host or "0.0.0.0",
            port=port,
            threads=workers,
            channel_timeout=idle_timeout_seconds,
            # How often idle connections are looked for: a connection lives at most about 1.5x the timeout.
            cleanup_interval=max(1, idle_timeout_seconds // 2),
            connection_limit=max_connections,
            asyncore_use_poll=True,  # select() cannot watch more than 1024 sockets
            backlog=4096,  # a storm of new connections waits in the kernel rather than being dropped
            ident="imagegenservice",
            expose_tracebacks=False,
            clear_untrusted_proxy_headers=True,
        )
        self._thread = threading.Thread(target=self._server.run, name="http-side-port", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return int(self._server.effective_port)

    def start(self) -> None:
        """Starts serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops serving: closes the listening socket and every connection, ends the worker threads."""
        self._server.task_dispatcher.shutdown(timeout=2)
        wasyncore.close_all(self._server._map)  # the loop ends once its map is empty
        self._thread.join(5)


def _allow_open_files(count: int) -> None:
    """Raises the soft limit on open files towards count (up to the hard limit), so that the connection
    limit, not the file limit, is what a flood of connections meets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _application(metrics: Metrics, healthy: Callable[[], bool], store: LocalImageStore | None) -> Callable:
    """The WSGI application of the side port."""

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD"):
            code, body, content_type, cache = 405, b"only GET and HEAD\n", "text/plain", "no-store"
        else:
            code, body, content_type, cache = _answer(path, metrics, healthy, store)
        start_response(_REASONS[code], [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", cache),
            ("X-Content-Type-Options", "nosniff"),
        ])
        return [b""] if method == "HEAD" else [body]

    return application


def _answer(
    path: str, metrics: Metrics, healthy: Callable[[], bool], store: LocalImageStore | None
) -> tuple[int, bytes, str, str]:
    """(status, body, content type, cache control) for a GET of path."""
    if path == "/healthz":
        ok = healthy()
        return (200, b"ok\n", "text/plain", "no-store") if ok else (503, b"shutting down\n", "text/plain", "no-store")
    if path == "/metrics":
        body, content_type = metrics.exposition()
        return 200, body, content_type, "no-store"
    if store is not None and path.startswith(URL_PATH):
        name = path[len(URL_PATH):]
        try:
            body = store.get(name)
        except ImageGenError:
            return 404, b"not found\n", "text/plain", "no-store"
        return 200, body, content_type_for(name), "public, max-age=31536000, immutable"
    return 404, b"not found\n", "text/plain", "no-store"

"""The HTTP side port: /healthz, /metrics, and the local store's images, served by waitress.

waitress reads and writes every connection with non-blocking I/O on one thread and hands only
complete requests to its worker threads, so clients that connect and send nothing, or trickle their
headers (slowloris), hold no worker: the kubelet's checks and image downloads are served meanwhile.
waitress's own timeout counts from a connection's last byte, which a trickle renews forever, so a
request must also arrive whole within HTTP_IDLE_TIMEOUT_SECONDS of its first byte. At
HTTP_MAX_CONNECTIONS the oldest connections not being answered are shed to make room, rather than the
port ceasing to accept (which starves the kubelet). The port only answers GET and HEAD, so a request
announcing a body is refused with 413 from its head, before any of the body is read or spooled.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable, Iterable

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from imagegen.errors import ImageGenError
from imagegen.observability import Metrics
from imagegen.stores.local import URL_PATH, LocalImageStore, content_type_for

log = logging.getLogger(__name__)

SHED_AT_ONCE = 64  # connections shed per turn of the loop when the connection limit is reached
# Connections accepted per turn of the loop: waitress takes one, and a turn costs a poll() over every
# open connection, so a storm of connections would fill the kernel's backlog ahead of the kubelet's.
ACCEPT_AT_ONCE = 256
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
        self._server = _Server(
            _application(metrics, healthy, store),
            host=host or "0.0.0.0",
            port=port,
            threads=workers,
            channel_timeout=idle_timeout_seconds,
            # How often late connections are looked for: a connection lives at most the timeout plus a second.
            cleanup_interval=1,
            connection_limit=max_connections,
            max_request_body_size=1,  # GET and HEAD only: any Content-Length but 0 is refused from the head
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


class _Channel(HTTPChannel):
    """A connection whose request (head and body) must arrive whole within the timeout of its first byte."""

    receiving_since: float | None = None  # when the first byte of the request being received arrived

    def received(self, data: bytes) -> bool:
        """Reads data as waitress does, noting when a request began to arrive and when it was whole."""
        before = self.request
        if data and before is None:
            self.receiving_since = time.time()
        result = super().received(data)
        if self.request is None:
            self.receiving_since = None
        elif self.request is not before:  # one request was completed and the next began in this data
            self.receiving_since = time.time()
        return result


class _Server(TcpWSGIServer):
    """waitress's server with a request deadline a trickle cannot renew, and shedding at the connection limit."""

    channel_class = _Channel

    def readable(self) -> bool:
        """Whether to accept now; at the connection limit, makes room by shedding the oldest connections."""
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        if not self.accepting:
            return False
        if len(self._map) >= self.adj.connection_limit:
            self._shed()
            return False  # the shed connections close in this turn of the loop; the next one accepts
        return True

    def handle_accept(self) -> None:
        """Accepts every pending connection (up to ACCEPT_AT_ONCE and the connection limit)."""
        for _ in range(ACCEPT_AT_ONCE):
            if len(self._map) >= self.adj.connection_limit:
                return
            try:
                accepted = self.accept()
            except OSError:  # a peer gone before its accept; waitress ignores these too
                continue
            if accepted is None:  # nothing more pending
                return
            conn, addr = accepted
            try:
                self.set_socket_options(conn)
            except OSError:
                conn.close()
                continue
            self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)

    def maintenance(self, now: float) -> None:
        """Closes connections idle for the timeout (waitress), and those whose request is late."""
        super().maintenance(now)
        cutoff = now - self.adj.channel_timeout
        for channel in self.active_channels.values():
            since = getattr(channel, "receiving_since", None)
            if since is not None and since < cutoff and not channel.requests:
                channel.will_close = True

    def _shed(self) -> None:
        # Oldest first (accept order): a request that arrives whole in milliseconds is never the oldest.
        shed = 0
        for channel in self.active_channels.values():
            if shed >= SHED_AT_ONCE:
                break
            if not channel.requests and not channel.will_close:
                channel.will_close = True
                shed += 1


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

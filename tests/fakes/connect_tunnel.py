"""An HTTP CONNECT proxy on loopback that tunnels named Google hosts to local TLS peers, and nothing else.

The Google SDKs dial fixed hosts (secretmanager.googleapis.com:443 over gRPC); gRPC honours the
`grpc_proxy` variable, so a service in a subprocess reaches a local peer with a certificate for that
host, trusted through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH. Any host not in the routes gets 403: nothing
leaves the machine.

    with ConnectTunnel({"secretmanager.googleapis.com:443": "127.0.0.1:50123"}) as tunnel:
        env = {"grpc_proxy": tunnel.proxy_url, ...}
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Mapping
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


class ConnectTunnel:
    """CONNECT host:port -> the local address routes maps it to; records every target asked for."""

    def __init__(self, routes: Mapping[str, str]) -> None:
        self.routes = dict(routes)
        self.targets: list[str] = []
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._httpd = ThreadingHTTPServer((HOST, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.tunnel = self  # type: ignore[attr-defined]
        self.proxy_url = f"http://{HOST}:{self._httpd.server_address[1]}"
        serve = partial(self._httpd.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="connect-tunnel", daemon=True)
        self._thread.start()

    def track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.extend(sockets)

    def stop(self) -> None:
        """Stops the proxy and cuts every tunnel still open."""
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> ConnectTunnel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    def do_CONNECT(self) -> None:  # noqa: N802 (http.server naming)
        tunnel: ConnectTunnel = self.server.tunnel  # type: ignore[attr-defined]
        with tunnel._lock:
            tunnel.targets.append(self.path)
        target = tunnel.routes.get(self.path)
        if target is None:
            self.send_error(403, "this proxy only reaches the test's local peers")
            return
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=5)
        upstream.settimeout(None)
        tunnel.track(upstream, self.connection)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        _pipe(self.connection, upstream)

    def do_GET(self) -> None:  # noqa: N802
        self.send_error(403, "this proxy only tunnels (CONNECT)")

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server signature)
        pass


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copies bytes both ways until either side closes."""
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [], 1.0)
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()

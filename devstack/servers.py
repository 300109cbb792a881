"""The shop's cart and catalog over real gRPC, and its product pictures over HTTP, for local runs and tests."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable, Mapping
from concurrent import futures
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import grpc

from devstack.catalog import PICTURE_PREFIX, PRODUCTS, to_proto
from devstack.pictures import PICTURE_SLUGS, draw_product_picture, picture_slug
from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc
from imagegen.domain import Product

log = logging.getLogger("devstack")


class CartService(pb_grpc.CartServiceServicer):
    """An in-memory CartService: user id -> {product id: quantity}, like the shop's cartservice."""

    def __init__(self, seed: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self._lock = threading.Lock()
        self._carts: dict[str, dict[str, int]] = {}
        for user_id, items in (seed or {}).items():
            for product_id, quantity in items.items():
                self.add(user_id, product_id, quantity)

    def add(self, user_id: str, product_id: str, quantity: int) -> None:
        """Adds quantity of a product to a user's cart (no checks, as in the shop)."""
        with self._lock:
            cart = self._carts.setdefault(user_id, {})
            cart[product_id] = cart.get(product_id, 0) + quantity

    def items(self, user_id: str) -> dict[str, int]:
        """Returns a copy of a user's cart (empty for an unknown user)."""
        with self._lock:
            return dict(self._carts.get(user_id, {}))

    def empty(self, user_id: str) -> None:
        """Removes every item from a user's cart."""
        with self._lock:
            self._carts.pop(user_id, None)

    def AddItem(self, request: pb.AddItemRequest, context: grpc.ServicerContext) -> pb.Empty:
        self.add(request.user_id, request.item.product_id, request.item.quantity)
        return pb.Empty()

    def GetCart(self, request: pb.GetCartRequest, context: grpc.ServicerContext) -> pb.Cart:
        items = self.items(request.user_id)
        return pb.Cart(
            user_id=request.user_id,
            items=[pb.CartItem(product_id=pid, quantity=qty) for pid, qty in items.items()],
        )

    def EmptyCart(self, request: pb.EmptyCartRequest, context: grpc.ServicerContext) -> pb.Empty:
        self.empty(request.user_id)
        return pb.Empty()


class ProductCatalogService(pb_grpc.ProductCatalogServiceServicer):
    """A read-only ProductCatalogService over a fixed product list, with optional added latency."""

    def __init__(self, products: Iterable[Product] = PRODUCTS, latency: float = 0.0,
                 stopping: threading.Event | None = None) -> None:
        self._products = {p.id: p for p in products}
        self._latency = latency
        # Latency waits on this event, so stopping the stack never waits out a slow reply.
        self._stopping = stopping or threading.Event()

    def _delay(self, context: grpc.ServicerContext) -> None:
        """Waits the configured extra latency (the shop's EXTRA_LATENCY); aborts if the stack stops meanwhile."""
        if self._latency > 0 and self._stopping.wait(self._latency):
            context.abort(grpc.StatusCode.UNAVAILABLE, "product catalog is shutting down")

    def ListProducts(self, request: pb.Empty, context: grpc.ServicerContext) -> pb.ListProductsResponse:
        self._delay(context)
        return pb.ListProductsResponse(products=[to_proto(p) for p in self._products.values()])

    def GetProduct(self, request: pb.GetProductRequest, context: grpc.ServicerContext) -> pb.Product:
        self._delay(context)
        product = self._products.get(request.id)
        if product is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no product with ID {request.id}")
        return to_proto(product)

    def SearchProducts(self, request: pb.SearchProductsRequest,
                       context: grpc.ServicerContext) -> pb.SearchProductsResponse:
        self._delay(context)
        query = request.query.lower()
        found = [p for p in self._products.values() if query in p.name.lower() or query in p.description.lower()]
        return pb.SearchProductsResponse(results=[to_proto(p) for p in found])


class _PictureHandler(BaseHTTPRequestHandler):
    """Serves GET/HEAD /static/img/products/<name>.jpg with the drawn product pictures."""

    # HTTP/1.0: one request per connection, so no handler thread lingers on a kept-alive socket.
    protocol_version = "HTTP/1.0"
    server_version = "devstack"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        # Extra latency (a slow CDN): waits on the stack's stop event, so stopping never waits it out.
        latency, stopping = getattr(self.server, "picture_latency", (0.0, None))
        if latency > 0 and stopping is not None and stopping.wait(latency):
            return
        path = self.path.split("?", 1)[0]
        body = _picture_for(path)
        if body is None:
            self.send_error(HTTPStatus.NOT_FOUND, "no such picture")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=3600")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s", format % args)


def _picture_for(path: str) -> bytes | None:
    """Returns the JPEG for a /static/img/products/<name>.jpg path, or None if there is none."""
    if not path.startswith(PICTURE_PREFIX) or not path.endswith(".jpg"):
        return None
    name = path[len(PICTURE_PREFIX):]
    if "/" in name:
        return None
    try:
        return draw_product_picture(picture_slug(name))
    except KeyError:
        return None


def _draw_all_pictures(stopping: threading.Event) -> None:
    """Draws (and so caches) every product picture, unless the stack stops first."""
    for slug in PICTURE_SLUGS:
        if stopping.is_set():
            return
        draw_product_picture(slug)


class _HTTP6Server(ThreadingHTTPServer):
    """The picture server on an IPv6 address."""

    address_family = socket.AF_INET6


def _address(host: str, port: int) -> str:
    """host:port, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DevStack:
    """A running cart, catalog and picture server; stop() (or leaving a with block) shuts all down."""

    def __init__(self, host: str, cart_port: int, catalog_port: int, http_port: int,
                 seed_carts: Mapping[str, Mapping[str, int]] | None, catalog_latency: float,
                 draw_pictures: bool = False, picture_latency: float = 0.0) -> None:
        self._stopping = threading.Event()
        self._stopped = False
        self._stop_lock = threading.Lock()
        self.cart = CartService(seed_carts)
        self.catalog = ProductCatalogService(latency=catalog_latency, stopping=self._stopping)
        self._executors: list[futures.ThreadPoolExecutor] = []
        self._grpc_servers: list[grpc.Server] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        try:
            cart_server, bound_cart = self._grpc_server(host, cart_port)
            pb_grpc.add_CartServiceServicer_to_server(self.cart, cart_server)
            catalog_server, bound_catalog = self._grpc_server(host, catalog_port)
            pb_grpc.add_ProductCatalogServiceServicer_to_server(self.catalog, catalog_server)
            self._httpd = (_HTTP6Server if ":" in host else ThreadingHTTPServer)((host, http_port), _PictureHandler)
            self._httpd.picture_latency = (picture_latency, self._stopping)  # type: ignore[attr-defined]
            # Join handler threads on close, so stop() leaves no thread behind.
            self._httpd.daemon_threads = False
            self._httpd.block_on_close = True
            for server in self._grpc_servers:
                server.start()
            self._http_thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="devstack-http", daemon=True
            )
            self._http_thread.start()
        except BaseException:
            self.stop()
            raise
        self.cart_addr = _address(host, bound_cart)
        self.catalog_addr = _address(host, bound_catalog)
        self.picture_base_url = f"http://{_address(host, self._httpd.server_address[1])}"
        if draw_pictures:
            # Drawing all nine takes seconds; done now, the first generation does not wait for it.
            threading.Thread(target=_draw_all_pictures, args=(self._stopping,), name="devstack-pictures",
                             daemon=True).start()

    def _grpc_server(self, host: str, port: int) -> tuple[grpc.Server, int]:
        """Builds a gRPC server bound to host:port (0 picks a free port); returns it and its port."""
        executor = futures.ThreadPoolExecutor(max_workers=10, thread_name_prefix="devstack-grpc")
        self._executors.append(executor)
        server = grpc.server(executor)
        self._grpc_servers.append(server)
        bound = server.add_insecure_port(_address(host, port))
        if bound == 0:
            raise OSError(f"could not bind gRPC port {_address(host, port)}")
        return server, bound

    def add_to_cart(self, user_id: str, product_id: str, quantity: int) -> None:
        """Adds an item to a user's cart, as the frontend's AddItem would."""
        self.cart.add(user_id, product_id, quantity)

    def stop(self) -> None:
        """Stops every server and joins their threads; safe to call more than once."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        done = [server.stop(grace=0.2) for server in self._grpc_servers]
        if self._httpd is not None:
            if self._http_thread is not None:
                self._httpd.shutdown()
                self._http_thread.join()
            self._httpd.server_close()
        for event in done:
            event.wait()
        for executor in self._executors:
            executor.shutdown(wait=True)

    def __enter__(self) -> DevStack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_devstack(
    host: str = "127.0.0.1",
    cart_port: int = 0,
    catalog_port: int = 0,
    http_port: int = 0,
    seed_carts: dict[str, dict[str, int]] | None = None,
    catalog_latency: float = 0.0,
    draw_pictures: bool = False,
    picture_latency: float = 0.0,
) -> DevStack:
    """Starts the cart and catalog gRPC servers and the picture HTTP server; ports 0 pick free ones.

    draw_pictures draws every product picture in the background at once, instead of on first request;
    picture_latency delays every picture answer by that many seconds.
    """
    return DevStack(host, cart_port, catalog_port, http_port, seed_carts, catalog_latency, draw_pictures,
                    picture_latency)

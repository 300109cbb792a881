"""The shop's peers: CartService and ProductCatalogService over gRPC, product pictures over HTTP."""

from __future__ import annotations

import collections
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import grpc

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc
from imagegen.domain import Picture, Product, sniff_image_type
from imagegen.errors import PeerUnavailable, ProductNotFound
from imagegen.observability import request_id_var

log = logging.getLogger(__name__)

MAX_PICTURE_BYTES = 8 * 1024 * 1024


class Shop:
    """The Cart and Catalog ports over the shop's gRPC services, each call under a deadline.

    Every call carries the current request's id (observability.request_id_var) as x-request-id.
    """

    def __init__(
        self,
        cart_addr: str,
        catalog_addr: str,
        timeout_seconds: float,
        wrap_channel: Callable[[grpc.Channel], grpc.Channel] = lambda channel: channel,
    ) -> None:
        self._cart_addr = cart_addr
        self._catalog_addr = catalog_addr
        self._timeout = timeout_seconds
        self._cart_channel = grpc.insecure_channel(cart_addr)
        self._catalog_channel = grpc.insecure_channel(catalog_addr)
        # wrap_channel: tracing's client interceptor (trace context out, one client span per call).
        self._cart = pb_grpc.CartServiceStub(wrap_channel(self._cart_channel))
        self._catalog = pb_grpc.ProductCatalogServiceStub(wrap_channel(self._catalog_channel))

    def get_cart(self, user_id: str) -> list[tuple[str, int]]:
        """The (product_id, quantity) lines of a user's cart."""
        try:
            cart = self._cart.GetCart(pb.GetCartRequest(user_id=user_id), timeout=self._timeout,
                                      metadata=_forwarded())
        except grpc.RpcError as error:
            raise PeerUnavailable(f"cart service ({self._cart_addr})", _describe(error)) from None
        return [(item.product_id, item.quantity) for item in cart.items]

    def get_products(self, product_ids: list[str]) -> dict[str, Product]:
        """Resolves every id with the catalog: all lookups at once, under one peer deadline."""
        metadata = _forwarded()
        calls = {
            product_id: self._catalog.GetProduct.future(
                pb.GetProductRequest(id=product_id), timeout=self._timeout, metadata=metadata
            )
            for product_id in dict.fromkeys(product_ids)
        }
        try:
            peer = f"product catalog ({self._catalog_addr})"
            return {product_id: _product(product_id, call, peer) for product_id, call in calls.items()}
        finally:
            for call in calls.values():
                call.cancel()  # after the first failure the rest are not worth waiting for

    def close(self) -> None:
        """Closes both channels."""
        self._cart_channel.close()
        self._catalog_channel.close()


def _forwarded() -> tuple[tuple[str, str], ...]:
    """The request id of the call being served, for the peers' logs (none outside a call)."""
    request_id = request_id_var.get()
    return (("x-request-id", request_id),) if request_id else ()


def _product(product_id: str, call: grpc.Future, peer: str) -> Product:
    """The product a GetProduct call answered; its RPC error as a domain error."""
    try:
        message = call.result()
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise ProductNotFound(product_id) from None
        raise PeerUnavailable(peer, _describe(error)) from None
    return Product(
        id=message.id or product_id,
        name=message.name or product_id,
        description=message.description,
        picture=message.picture,
        categories=tuple(message.categories),
        price_units=message.price_usd.units,
        price_nanos=message.price_usd.nanos,
        currency_code=message.price_usd.currency_code or "USD",
    )


def _describe(error: grpc.RpcError) -> str:
    code = error.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "no answer within the deadline"
    if code == grpc.StatusCode.UNAVAILABLE:
        return "cannot connect"
    return f"{code.name.lower()}: {error.details()}"


class ProductPictures:
    """The Pictures port: fetches product pictures from PRODUCT_IMAGE_BASE_URL + path, with a cache bounded in bytes.

    A picture that cannot be fetched is None (the generators draw the product without it) and is not
    asked for again for a minute, so an unreachable frontend costs one timeout, not one per product.
    """

    def __init__(
        self, base_url: str, timeout_seconds: float, cache_bytes: int = 64 * 1024 * 1024, retry_after: float = 60.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._cache_bytes = cache_bytes
        self._retry_after = retry_after
        self._cache: collections.OrderedDict[str, Picture] = collections.OrderedDict()
        self._cached_bytes = 0
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, path: str, deadline: float | None = None) -> Picture | None:
        """The picture at path, from the cache or fetched once; None when unavailable or past deadline."""
        if not path or "://" in path:
            return None
        now = time.monotonic()
        with self._lock:
            picture = self._cache.get(path)
            if picture is not None:
                self._cache.move_to_end(path)
                return picture
            if self._failed.get(path, 0.0) > now:
                return None
        timeout = self._timeout if deadline is None else min(self._timeout, deadline - now)
        if timeout <= 0:
            return None
        picture = self._fetch(path, timeout)
        with self._lock:
            if picture is None:
                self._failed = {p: t for p, t in self._failed.items() if t > now}  # forget old failures
                self._failed[path] = now + self._retry_after
            elif path not in self._cache and len(picture.data) <= self._cache_bytes:
                self._cache[path] = picture
                self._cached_bytes += len(picture.data)
                while self._cached_bytes > self._cache_bytes:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_bytes -= len(evicted.data)
        return picture

    def _fetch(self, path: str, timeout: float) -> Picture | None:
        url = self._base_url + ("" if path.startswith("/") else "/") + path
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our base URL)
                data = response.read(MAX_PICTURE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as error:
            log.warning("product picture unavailable", extra={"picture": path, "reason": str(error)})
            return None
        mime = sniff_image_type(data)
        if len(data) > MAX_PICTURE_BYTES or mime is None:
            log.warning("product picture unusable", extra={"picture": path, "bytes": len(data)})
            return None
        return Picture(data=data, mime_type=mime)

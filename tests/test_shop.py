"""Shop clients against the dev-stack peers; product pictures with their cache and deadline."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest

from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc

from imagegen.errors import PeerUnavailable, ProductNotFound
from imagegen.domain import sniff_image_type
from imagegen.shop import ProductPictures, Shop
from tests.fakes.picture_server import MissingPictures
from tests.service import free_port


def test_cart_and_products_come_from_the_peers(devstack):
    devstack.add_to_cart("shop-test-user", "6E92ZMYYFZ", 2)
    shop = Shop(devstack.cart_addr, devstack.catalog_addr, 5)
    assert shop.get_cart("shop-test-user") == [("6E92ZMYYFZ", 2)]
    products = shop.get_products(["6E92ZMYYFZ"])
    assert products["6E92ZMYYFZ"].name == "Mug"
    assert products["6E92ZMYYFZ"].picture == "/static/img/products/mug.jpg"
    shop.close()


def test_unknown_product_names_the_id(devstack):
    shop = Shop(devstack.cart_addr, devstack.catalog_addr, 5)
    with pytest.raises(ProductNotFound, match="NOPE"):
        shop.get_products(["NOPE"])
    shop.close()


class BarrierCatalog(pb_grpc.ProductCatalogServiceServicer):
    """A catalog that answers GetProduct only once `parties` lookups are waiting at the same time."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)

    def GetProduct(self, request, context):  # noqa: N802 (gRPC naming)
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            context.abort(grpc.StatusCode.UNAVAILABLE, "lookups did not arrive together")
        return pb.Product(id=request.id, name=f"Product {request.id}")


def test_a_requests_products_are_looked_up_all_at_once():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_ProductCatalogServiceServicer_to_server(BarrierCatalog(5), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    shop = Shop(f"127.0.0.1:{free_port()}", f"127.0.0.1:{port}", 30)
    try:
        products = shop.get_products(["A", "B", "C", "D", "E"])
        assert [products[i].name for i in "ABCDE"] == [f"Product {i}" for i in "ABCDE"]
    finally:
        shop.close()
        server.stop(0)


def test_one_unknown_product_among_many_names_that_id(devstack):
    shop = Shop(devstack.cart_addr, devstack.catalog_addr, 5)
    with pytest.raises(ProductNotFound, match="NOPE"):
        shop.get_products(["6E92ZMYYFZ", "NOPE", "OLJCESPC7Z"])
    shop.close()


def test_unreachable_peer_is_unavailable_within_the_deadline():
    shop = Shop(f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", 0.5)
    with pytest.raises(PeerUnavailable, match="cart service"):
        shop.get_cart("u")
    with pytest.raises(PeerUnavailable, match="product catalog"):
        shop.get_products(["x"])
    shop.close()


def test_pictures_are_fetched_once_and_cached(devstack):
    pictures = ProductPictures(devstack.picture_base_url, 5)
    first = pictures.get("/static/img/products/mug.jpg")
    assert first is not None and first.mime_type == "image/jpeg"
    assert pictures.get("/static/img/products/mug.jpg") is first


def test_a_failed_picture_is_not_asked_for_again_at_once():
    server = MissingPictures()
    try:
        pictures = ProductPictures(server.url, 5)
        assert pictures.get("/static/img/products/gone.jpg") is None
        assert pictures.get("/static/img/products/gone.jpg") is None
        assert server.count == 1
    finally:
        server.close()


def test_past_deadline_nothing_is_fetched():
    server = MissingPictures()
    try:
        assert ProductPictures(server.url, 5).get("/static/img/products/x.jpg", deadline=0.0) is None
        assert server.count == 0
    finally:
        server.close()


def test_absolute_urls_from_the_catalog_are_not_fetched():
    assert ProductPictures("http://127.0.0.1:1", 1).get("http://elsewhere.example/x.jpg") is None


def test_cache_is_bounded_in_bytes(devstack):
    pictures = ProductPictures(devstack.picture_base_url, 5, cache_bytes=60_000)
    for name in ("mug", "watch", "sunglasses", "loafers", "hairdryer"):
        pictures.get(f"/static/img/products/{name}.jpg")
    assert pictures._cached_bytes <= 60_000


def test_sniffing_knows_png_jpeg_webp_only():
    assert sniff_image_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"GIF89a") is None

"""The dev stack speaks the shop's CartService and ProductCatalogService over real gRPC on loopback."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import IO

import grpc
import pytest

from devstack import start_devstack
from devstack.servers import DevStack
from genproto import imagegeneration_pb2 as pb
from genproto import imagegeneration_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent

# The shop's catalog as published (id, name, picture, categories, USD units, nanos).
SHOP_CATALOG = [
    ("OLJCESPC7Z", "Sunglasses", "/static/img/products/sunglasses.jpg", ["accessories"], 19, 990_000_000),
    ("66VCHSJNUP", "Tank Top", "/static/img/products/tank-top.jpg", ["clothing", "tops"], 18, 990_000_000),
    ("1YMWWN1N4O", "Watch", "/static/img/products/watch.jpg", ["accessories"], 109, 990_000_000),
    ("L9ECAV7KIM", "Loafers", "/static/img/products/loafers.jpg", ["footwear"], 89, 990_000_000),
    ("2ZYFJ3GM2N", "Hairdryer", "/static/img/products/hairdryer.jpg", ["hair", "beauty"], 24, 990_000_000),
    ("0PUK6V6EV0", "Candle Holder", "/static/img/products/candle-holder.jpg", ["decor", "home"], 18, 990_000_000),
    ("LS4PSXUNUM", "Salt & Pepper Shakers", "/static/img/products/salt-and-pepper-shakers.jpg", ["kitchen"], 18,
     490_000_000),
    ("9SIQT8TOJO", "Bamboo Glass Jar", "/static/img/products/bamboo-glass-jar.jpg", ["kitchen"], 5, 490_000_000),
    ("6E92ZMYYFZ", "Mug", "/static/img/products/mug.jpg", ["kitchen"], 8, 990_000_000),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    with start_devstack(seed_carts={"seeded-user": {"6E92ZMYYFZ": 2, "OLJCESPC7Z": 1}}) as running:
        yield running


@pytest.fixture(scope="module")
def cart(stack: DevStack) -> Iterator[pb_grpc.CartServiceStub]:
    with grpc.insecure_channel(stack.cart_addr) as channel:
        yield pb_grpc.CartServiceStub(channel)


@pytest.fixture(scope="module")
def catalog(stack: DevStack) -> Iterator[pb_grpc.ProductCatalogServiceStub]:
    with grpc.insecure_channel(stack.catalog_addr) as channel:
        yield pb_grpc.ProductCatalogServiceStub(channel)


def new_user() -> str:
    """A fresh session id, as the frontend's cookie would be."""
    return str(uuid.uuid4())


def cart_items(cart: pb_grpc.CartServiceStub, user_id: str) -> dict[str, int]:
    """The user's cart as {product_id: quantity}."""
    reply = cart.GetCart(pb.GetCartRequest(user_id=user_id), timeout=5)
    assert reply.user_id == user_id
    return {item.product_id: item.quantity for item in reply.items}


def add(cart: pb_grpc.CartServiceStub, user_id: str, product_id: str, quantity: int) -> None:
    """Calls AddItem."""
    item = pb.CartItem(product_id=product_id, quantity=quantity)
    cart.AddItem(pb.AddItemRequest(user_id=user_id, item=item), timeout=5)


# ---------------------------------------------------------------- cart


def test_addresses_are_loopback_ports(stack: DevStack) -> None:
    for addr in (stack.cart_addr, stack.catalog_addr):
        host, port = addr.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
    assert stack.picture_base_url.startswith("http://127.0.0.1:")
    assert len({stack.cart_addr, stack.catalog_addr, stack.picture_base_url.removeprefix("http://")}) == 3


def test_added_items_come_back_in_the_cart(cart: pb_grpc.CartServiceStub) -> None:
    user = new_user()
    add(cart, user, "OLJCESPC7Z", 1)
    add(cart, user, "6E92ZMYYFZ", 3)
    assert cart_items(cart, user) == {"OLJCESPC7Z": 1, "6E92ZMYYFZ": 3}


def test_adding_a_product_again_adds_to_its_quantity(cart: pb_grpc.CartServiceStub) -> None:
    user = new_user()
    add(cart, user, "6E92ZMYYFZ", 2)
    add(cart, user, "6E92ZMYYFZ", 5)
    assert cart_items(cart, user) == {"6E92ZMYYFZ": 7}


def test_unknown_user_has_an_empty_cart(cart: pb_grpc.CartServiceStub) -> None:
    assert cart_items(cart, new_user()) == {}


def test_empty_cart_removes_every_item(cart: pb_grpc.CartServiceStub) -> None:
    user = new_user()
    add(cart, user, "L9ECAV7KIM", 1)
    cart.EmptyCart(pb.EmptyCartRequest(user_id=user), timeout=5)
    assert cart_items(cart, user) == {}


def test_carts_of_different_users_are_separate(cart: pb_grpc.CartServiceStub) -> None:
    alice, bob = new_user(), new_user()
    add(cart, alice, "1YMWWN1N4O", 1)
    add(cart, bob, "2ZYFJ3GM2N", 2)
    assert cart_items(cart, alice) == {"1YMWWN1N4O": 1}
    assert cart_items(cart, bob) == {"2ZYFJ3GM2N": 2}


def test_seeded_cart_is_served(cart: pb_grpc.CartServiceStub) -> None:
    assert cart_items(cart, "seeded-user") == {"6E92ZMYYFZ": 2, "OLJCESPC7Z": 1}


def test_add_to_cart_from_python_is_seen_over_grpc(stack: DevStack, cart: pb_grpc.CartServiceStub) -> None:
    user = new_user()
    stack.add_to_cart(user, "9SIQT8TOJO", 4)
    assert cart_items(cart, user) == {"9SIQT8TOJO": 4}


def test_concurrent_adds_are_all_counted(cart: pb_grpc.CartServiceStub) -> None:
    user = new_user()
    with futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: add(cart, user, "6E92ZMYYFZ", 1), range(80)))
    assert cart_items(cart, user) == {"6E92ZMYYFZ": 80}


# ---------------------------------------------------------------- catalog


def test_catalog_lists_the_shop_products(catalog: pb_grpc.ProductCatalogServiceStub) -> None:
    products = catalog.ListProducts(pb.Empty(), timeout=5).products
    listed = [(p.id, p.name, p.picture, list(p.categories), p.price_usd.units, p.price_usd.nanos) for p in products]
    assert listed == SHOP_CATALOG
    assert all(p.price_usd.currency_code == "USD" for p in products)
    assert all(p.description and p.description.endswith(".") for p in products)


def test_get_product_returns_that_product(catalog: pb_grpc.ProductCatalogServiceStub) -> None:
    product = catalog.GetProduct(pb.GetProductRequest(id="6E92ZMYYFZ"), timeout=5)
    assert (product.id, product.name, product.picture) == ("6E92ZMYYFZ", "Mug", "/static/img/products/mug.jpg")
    assert (product.price_usd.units, product.price_usd.nanos) == (8, 990_000_000)


def test_get_unknown_product_is_not_found(catalog: pb_grpc.ProductCatalogServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        catalog.GetProduct(pb.GetProductRequest(id="NOSUCHTHING"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_search_matches_names_ignoring_case(catalog: pb_grpc.ProductCatalogServiceStub) -> None:
    results = catalog.SearchProducts(pb.SearchProductsRequest(query="gLaSs JAR"), timeout=5).results
    assert [p.id for p in results] == ["9SIQT8TOJO"]


def test_search_matches_descriptions(catalog: pb_grpc.ProductCatalogServiceStub) -> None:
    results = catalog.SearchProducts(pb.SearchProductsRequest(query="LEATHER"), timeout=5).results
    assert {p.id for p in results} == {"1YMWWN1N4O", "L9ECAV7KIM"}


def test_search_without_a_match_is_empty(catalog: pb_grpc.ProductCatalogServiceStub) -> None:
    results = catalog.SearchProducts(pb.SearchProductsRequest(query="submarine"), timeout=5).results
    assert list(results) == []


def test_catalog_latency_exceeds_a_short_client_deadline() -> None:
    with start_devstack(catalog_latency=30.0) as slow:
        with grpc.insecure_channel(slow.catalog_addr) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.ProductCatalogServiceStub(channel).ListProducts(pb.Empty(), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


# ---------------------------------------------------------------- lifecycle


def test_stopped_stack_refuses_calls() -> None:
    with start_devstack() as running:
        addr = running.cart_addr
    with grpc.insecure_channel(addr) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            pb_grpc.CartServiceStub(channel).GetCart(pb.GetCartRequest(user_id="u"), timeout=2)
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_stop_leaves_no_threads_behind() -> None:
    before = set(threading.enumerate())
    running = start_devstack(catalog_latency=30.0)
    with grpc.insecure_channel(running.catalog_addr) as channel:
        # A call still waiting out its latency when the stack stops must not keep anything alive.
        pending = pb_grpc.ProductCatalogServiceStub(channel).ListProducts.future(pb.Empty(), timeout=60)
        with urllib.request.urlopen(running.picture_base_url + "/static/img/products/mug.jpg", timeout=30) as reply:
            reply.read()
        running.stop()
        with pytest.raises(grpc.RpcError):
            pending.result(timeout=30)
    running.stop()  # a second stop is harmless
    deadline = time.monotonic() + 10
    while (left := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, sorted(t.name for t in left)


# ---------------------------------------------------------------- python -m devstack


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    """Forwards a subprocess's output lines to a queue, so the test can wait for one with a deadline."""
    for line in stream:
        lines.put(line)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_module_prints_ready_line_serves_demo_cart_and_exits_cleanly_on_signal(stop_signal: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--cart-port", "0", "--catalog-port", "0", "--http-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
        ready = json.loads(lines.get(timeout=30))
        with grpc.insecure_channel(ready["cart_addr"]) as channel:
            items = cart_items(pb_grpc.CartServiceStub(channel), ready["demo_user"])
        assert ready["demo_user"] == "demo-user" and sum(items.values()) > 1
        assert ready["catalog_addr"].startswith("127.0.0.1:")
        assert ready["env"]["PRODUCT_IMAGE_BASE_URL"] == ready["picture_base_url"]
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()

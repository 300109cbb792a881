"""In-memory fakes of the use cases' ports: cart, catalog, pictures and an image store."""

from __future__ import annotations

import io
import threading

from PIL import Image

from imagegen.domain import Picture, Product
from imagegen.errors import NotFound, ProductNotFound


def png(size: int = 8) -> bytes:
    """A small PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (5, 6, 7)).save(buffer, "PNG")
    return buffer.getvalue()


class FakeShop:
    """Carts by user and a catalog of products, each named after its id; records what was asked."""

    def __init__(self, carts: dict[str, list[tuple[str, int]]] | None = None) -> None:
        self.carts = carts or {}
        self.asked: list[str] = []

    def get_cart(self, user_id: str) -> list[tuple[str, int]]:
        self.asked.append(f"cart:{user_id}")
        return list(self.carts.get(user_id, []))

    def get_products(self, product_ids: list[str]) -> dict[str, Product]:
        self.asked.append("products:" + ",".join(product_ids))
        if "missing" in product_ids:
            raise ProductNotFound("missing")
        return {pid: Product(pid, f"Product {pid}", picture=f"/img/{pid}.png") for pid in product_ids}


class FakePictures:
    """Every product picture is a small PNG."""

    def get(self, path: str, deadline: float | None = None) -> Picture | None:
        return Picture(png(), "image/png")


class MemoryStore:
    """An image store in a dict; writes can be held until released."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.release = threading.Event()
        self.release.set()
        self.writing = threading.Event()

    def put(self, name: str, data: bytes, content_type: str) -> None:
        self.writing.set()
        self.release.wait(20)
        self.objects[name] = data

    def get(self, name: str) -> bytes:
        if name not in self.objects:
            raise NotFound(name)
        return self.objects[name]

    def exists(self, name: str) -> bool:
        return name in self.objects

    def url_for(self, name: str) -> str:
        return f"http://images.test/{name}"

    def name_from_url(self, url: str) -> str | None:
        prefix = "http://images.test/"
        return url[len(prefix):] if url.startswith(prefix) else None

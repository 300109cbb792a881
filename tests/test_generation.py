"""The use case with swapped adapters: bounded uploads, shutdown marking unfinished work failed."""

from __future__ import annotations

import base64
import io
import threading

import pytest
from PIL import Image

from imagegen.admission import Admission
from imagegen.domain import Picture
from imagegen.errors import Busy
from imagegen.generation import CartRequest, ImageGeneration
from imagegen.observability import Metrics
from imagegen.shop import ProductPictures, Shop
from imagegen.state.memory import memory_state
from imagegen.stores.local import LocalImageStore
from tests.service import wait_for


class HeldStore(LocalImageStore):
    """A local store whose writes wait until released."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.writing = threading.Event()

    def put(self, name: str, data: bytes, content_type: str) -> None:
        self.writing.set()
        self.release.wait(20)
        super().put(name, data, content_type)


class InstantGenerator:
    name = "instant"

    def generate(self, request, progress) -> Picture:
        progress(1.0)
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, "PNG")
        return Picture(buffer.getvalue(), "image/png")


@pytest.fixture
def held_store(tmp_path):
    store = HeldStore(str(tmp_path), "http://localhost:1")
    yield store
    store.release.set()


def make_generation(devstack, store, generator=None, state=None, concurrency=4, queue_limit=16, max_wait=60.0,
                    **kwargs) -> ImageGeneration:
    metrics = Metrics()
    return ImageGeneration(
        shop=Shop(devstack.cart_addr, devstack.catalog_addr, 5),
        pictures=ProductPictures(devstack.picture_base_url, 5),
        generator=generator or InstantGenerator(), store=store, state=state or memory_state(100, 600),
        admission=Admission(concurrency, queue_limit, max_wait, metrics), metrics=metrics, **kwargs)


def png_b64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (5, 6, 7)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_uploads_beyond_the_concurrency_limit_are_refused_as_busy(devstack, held_store):
    generation = make_generation(devstack, held_store, upload_concurrency=1)
    first = threading.Thread(target=generation.upload_background, args=(png_b64(),))
    first.start()
    assert held_store.writing.wait(10)
    with pytest.raises(Busy, match="backgrounds"):
        generation.upload_background(png_b64())
    held_store.release.set()
    first.join(10)
    generation.upload_background(png_b64())  # the slot is free again
    generation.shutdown(1)


def test_shutdown_marks_generations_still_running_after_the_grace_as_failed(devstack, held_store):
    generation = make_generation(devstack, held_store)
    record = generation.start(CartRequest(items=(("6E92ZMYYFZ", 1),)))
    assert held_store.writing.wait(10)
    generation.shutdown(0.05)
    status = generation.status(record.id)
    assert status.status == "failed" and "shut down" in status.error_message
    with pytest.raises(Busy, match="shutting down"):
        generation.start(CartRequest(items=(("OLJCESPC7Z", 1),)))


def test_generation_runs_off_the_calling_thread(devstack, held_store):
    generation = make_generation(devstack, held_store)
    record = generation.start(CartRequest(items=(("6E92ZMYYFZ", 2),)))
    assert record.status == "processing"  # returned while the store write is still held
    held_store.release.set()
    wait_for(lambda: generation.status(record.id).status == "completed", what="completion")
    generation.shutdown(1)

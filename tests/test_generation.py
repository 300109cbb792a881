"""The use case with swapped adapters: bounded uploads, shutdown marking unfinished work failed."""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest
from PIL import Image

from imagegen.admission import Admission
from imagegen.domain import Picture
from imagegen.errors import Busy, GenerationFailed
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
                    clock=time.monotonic, **kwargs) -> ImageGeneration:
    metrics = Metrics()
    return ImageGeneration(
        shop=Shop(devstack.cart_addr, devstack.catalog_addr, 5),
        pictures=ProductPictures(devstack.picture_base_url, 5),
        generator=generator or InstantGenerator(), store=store, state=state or memory_state(100, 600),
        admission=Admission(concurrency, queue_limit, max_wait, metrics, clock), metrics=metrics, **kwargs)


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


class GatedGenerator:
    """Draws only once released; counts calls and how many run at once."""

    name = "gated"

    def __init__(self, fail_first: int = 0) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.calls = 0
        self.running = 0
        self.most = 0
        self.fail_first = fail_first

    def generate(self, request, progress) -> Picture:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
            failing = self.calls <= self.fail_first
        try:
            self.release.wait(20)
            if failing:
                raise GenerationFailed("the model refused this one")
            return InstantGenerator().generate(request, progress)
        finally:
            with self.lock:
                self.running -= 1


def finished(generation, generation_id):
    return wait_for(lambda: (s := generation.status(generation_id)).status != "processing" and s,
                    what="the generation to end")


def test_identical_requests_in_flight_share_one_generation_and_one_model_call(devstack, tmp_path):
    generator = GatedGenerator()
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator)
    cart = CartRequest(style_preference="modern", items=(("6E92ZMYYFZ", 2), ("OLJCESPC7Z", 1)))
    ids = {generation.start(cart).id for _ in range(10)}
    assert len(ids) == 1
    generator.release.set()
    final = finished(generation, ids.pop())
    assert final.status == "completed" and generator.calls == 1
    again = generation.start(cart)  # answered from the result cache: the same image, no new call
    assert again.status == "completed" and again.image_url == final.image_url and generator.calls == 1
    generation.shutdown(1)


def test_requests_that_differ_in_style_or_quantity_are_drawn_separately(devstack, tmp_path):
    generator = GatedGenerator()
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator)
    ids = {generation.start(CartRequest(style_preference=style, items=(("6E92ZMYYFZ", quantity),))).id
           for style in ("modern", "vintage") for quantity in (1, 2)}
    generator.release.set()
    assert len(ids) == 4
    assert all(finished(generation, i).status == "completed" for i in ids) and generator.calls == 4
    generation.shutdown(1)


def test_a_failed_generation_is_not_shared_with_the_next_identical_request(devstack, tmp_path):
    generator = GatedGenerator(fail_first=1)
    generator.release.set()
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator)
    cart = CartRequest(items=(("0PUK6V6EV0", 3),))
    first = generation.start(cart)
    assert finished(generation, first.id).status == "failed"
    second = generation.start(cart)
    assert second.id != first.id
    assert finished(generation, second.id).status == "completed" and generator.calls == 2
    generation.shutdown(1)


def test_model_calls_overlap_up_to_the_concurrency_and_more_are_queued_not_refused(devstack, tmp_path):
    generator = GatedGenerator()
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator,
                                 concurrency=6, queue_limit=40)
    records = [generation.start(CartRequest(items=(("1YMWWN1N4O", n),))) for n in range(1, 41)]
    assert all(record.status == "processing" for record in records)  # 40 at once: all accepted
    wait_for(lambda: generator.running == 6, what="six model calls at once")
    generator.release.set()
    assert all(finished(generation, r.id).status == "completed" for r in records)
    assert generator.most == 6 and generator.calls == 40
    generation.shutdown(1)


def test_beyond_the_queue_the_caller_is_told_to_retry(devstack, tmp_path):
    generator = GatedGenerator()
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator,
                                 concurrency=1, queue_limit=2)
    for n in range(1, 4):
        generation.start(CartRequest(items=(("1YMWWN1N4O", n),)))
    with pytest.raises(Busy, match="try again"):
        generation.start(CartRequest(items=(("1YMWWN1N4O", 9),)))
    generator.release.set()
    generation.shutdown(5)


def test_a_cpu_bound_generator_draws_at_most_cpu_slots_at_once(devstack, tmp_path):
    generator = GatedGenerator()
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator,
                                 concurrency=8, cpu_slots=threading.BoundedSemaphore(2),
                                 cpu_bound_generator=True)
    records = [generation.start(CartRequest(items=(("9SIQT8TOJO", n),))) for n in range(1, 7)]
    wait_for(lambda: generator.running == 2, what="two drawing")
    generator.release.set()
    assert all(finished(generation, r.id).status == "completed" for r in records)
    assert generator.most == 2
    generation.shutdown(1)


def test_a_generation_that_waited_past_the_budget_fails_with_a_message_for_the_shopper(devstack, tmp_path):
    generator = GatedGenerator()
    now = [0.0]
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator,
                                 concurrency=1, max_wait=30, clock=lambda: now[0])
    first = generation.start(CartRequest(items=(("L9ECAV7KIM", 1),)))
    wait_for(lambda: generator.running == 1, what="the first drawing")
    second = generation.start(CartRequest(items=(("L9ECAV7KIM", 2),)))
    now[0] = 31.0  # the second has waited 31 s behind the first
    generator.release.set()
    assert finished(generation, first.id).status == "completed"
    late = finished(generation, second.id)
    assert late.status == "failed" and "busy" in late.error_message and "try again" in late.error_message
    assert generator.calls == 1
    generation.shutdown(1)


def test_shutdown_ends_queued_generations_without_drawing_them(devstack, tmp_path):
    generator = GatedGenerator()
    generation = make_generation(devstack, LocalImageStore(str(tmp_path), "http://localhost:1"), generator=generator,
                                 concurrency=1)
    running = generation.start(CartRequest(items=(("66VCHSJNUP", 1),)))
    wait_for(lambda: generator.running == 1, what="the first drawing")
    queued = generation.start(CartRequest(items=(("66VCHSJNUP", 2),)))
    assert generation.shutdown(0.05) == 1  # only the running one was still unfinished at the end
    for record in (running, queued):
        final = generation.status(record.id)
        assert final.status == "failed" and "shut down" in final.error_message
    generator.release.set()
    assert generator.calls == 1

"""The use cases in memory, with fakes of their ports: sharing, queuing, expiry, shutdown, uploads."""

from __future__ import annotations

import base64
import threading
import time

import pytest

from imagegen.domain import Picture
from imagegen.errors import Busy, EmptyCart, GenerationFailed, InvalidArgument, ProductNotFound
from imagegen.generators.collage import CollageGenerator
from imagegen.observability import Metrics
from imagegen.state.memory import memory_state
from imagegen.usecases.backgrounds import StoreBackground
from imagegen.queue.memory import MemoryQueue
from imagegen.usecases.pending import Pending
from imagegen.usecases.queue import GenerationQueue, Workers
from imagegen.usecases.run import RunGeneration
from imagegen.usecases.start import CartRequest, Drawing, StartGeneration
from imagegen.usecases.status import CancelGeneration, ReadStatus
from tests.service import wait_for
from tests.unit.fakes import FakePictures, FakeShop, MemoryStore, png

pytestmark = pytest.mark.fast


class InstantGenerator:
    name = "instant"

    def generate(self, request, progress) -> Picture:
        progress(1.0)
        return Picture(png(), "image/png")


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


class Service:
    """The use cases wired as the composition root wires them, over fakes."""

    def __init__(self, generator=None, store=None, shop=None, concurrency=4, queue_limit=16, max_wait=60.0,
                 clock=time.monotonic, shared_queue=None, lease_seconds=600) -> None:
        metrics = Metrics()
        state = memory_state(100, 600)
        self.generator = generator or InstantGenerator()
        self.store = store or MemoryStore()
        self.shop = shop or FakeShop()
        pending = Pending(state.statuses, state.in_flight, metrics)
        run = RunGeneration(pictures=FakePictures(), generator=self.generator, store=self.store,
                            statuses=state.statuses, results=state.results, pending=pending, metrics=metrics)
        workers = Workers(count=concurrency, queue_limit=queue_limit, max_wait_seconds=max_wait,
                          lease_seconds=lease_seconds, consumer="here")
        self.queue = GenerationQueue(shared_queue or MemoryQueue(600, clock=clock), run, pending, state.statuses, metrics,
                                     workers)
        self.queue.start()
        self.start = StartGeneration(cart=self.shop, catalog=self.shop, store=self.store, state=state,
                                     queue=self.queue, pending=pending, metrics=metrics,
                                     drawing=Drawing(self.generator.name, 256))
        self.read = ReadStatus(state.statuses, self.queue.queue)
        self.status = lambda generation_id: (standing := self.read(generation_id)) and standing.generation
        self.cancel = CancelGeneration(state.statuses, self.read, self.queue.withdrawn)
        self.store_background = StoreBackground(self.store, metrics)

    def finished(self, generation_id):
        return wait_for(lambda: (s := self.status(generation_id)).status != "processing" and s,
                        what="the generation to end")


@pytest.fixture
def services():
    made: list[Service] = []

    def make(**kwargs) -> Service:
        made.append(Service(**kwargs))
        return made[-1]

    yield make
    for service in made:
        if isinstance(service.generator, GatedGenerator):
            service.generator.release.set()
        service.store.release.set()
        service.queue.shutdown(1)


def test_a_cart_read_by_user_is_drawn_stored_and_reported_completed(services):
    service = services(shop=FakeShop({"alice": [("MUG", 2), ("MUG", 1), ("HAT", 0)]}))
    record = service.start(CartRequest(user_id="alice"))
    final = service.finished(record.id)
    assert final.status == "completed" and final.progress == 100
    name = service.store.name_from_url(final.image_url)
    assert name.startswith("generated/") and service.store.exists(name)
    assert service.shop.asked == ["cart:alice", "products:MUG"]  # repeated lines added up, empty ones left out


def test_an_empty_cart_is_refused_before_the_catalog_is_asked(services):
    service = services(shop=FakeShop({"bob": []}))
    with pytest.raises(EmptyCart, match="'bob' is empty"):
        service.start(CartRequest(user_id="bob"))
    assert service.shop.asked == ["cart:bob"]


def test_a_request_without_user_or_items_is_refused_naming_the_field(services):
    with pytest.raises(InvalidArgument, match="give a user_id or cart_items"):
        services().start(CartRequest())


def test_an_unknown_product_is_refused(services):
    with pytest.raises(ProductNotFound, match="'missing'"):
        services().start(CartRequest(items=(("missing", 1),)))


def test_a_background_url_not_issued_here_is_refused(services):
    with pytest.raises(InvalidArgument, match="not a background URL issued by this service"):
        services().start(CartRequest(items=(("MUG", 1),), background_image_url="http://elsewhere/x.png"))


def test_generation_runs_off_the_calling_thread(services):
    store = MemoryStore()
    store.release.clear()
    service = services(store=store)
    record = service.start(CartRequest(items=(("6E92ZMYYFZ", 2),)))
    assert record.status == "processing"  # returned while the store write is still held
    store.release.set()
    assert service.finished(record.id).status == "completed"


def test_identical_requests_in_flight_share_one_generation_and_one_model_call(services):
    service = services(generator=GatedGenerator())
    cart = CartRequest(style_preference="modern", items=(("6E92ZMYYFZ", 2), ("OLJCESPC7Z", 1)))
    ids = {service.start(cart).id for _ in range(10)}
    assert len(ids) == 1
    service.generator.release.set()
    final = service.finished(ids.pop())
    assert final.status == "completed" and service.generator.calls == 1
    again = service.start(cart)  # answered from the result cache: the same image, no new call
    assert again.status == "completed" and again.image_url == final.image_url and service.generator.calls == 1


def test_requests_that_differ_in_style_or_quantity_are_drawn_separately(services):
    service = services(generator=GatedGenerator())
    ids = {service.start(CartRequest(style_preference=style, items=(("6E92ZMYYFZ", quantity),))).id
           for style in ("modern", "vintage") for quantity in (1, 2)}
    service.generator.release.set()
    assert len(ids) == 4
    assert all(service.finished(i).status == "completed" for i in ids) and service.generator.calls == 4


def test_a_failed_generation_is_not_shared_with_the_next_identical_request(services):
    service = services(generator=GatedGenerator(fail_first=1))
    service.generator.release.set()
    cart = CartRequest(items=(("0PUK6V6EV0", 3),))
    first = service.start(cart)
    failed = service.finished(first.id)
    assert failed.status == "failed" and failed.error_message == "the model refused this one"
    second = service.start(cart)
    assert second.id != first.id
    assert service.finished(second.id).status == "completed" and service.generator.calls == 2


def test_model_calls_overlap_up_to_the_concurrency_and_more_are_queued_not_refused(services):
    service = services(generator=GatedGenerator(), concurrency=6, queue_limit=40)
    records = [service.start(CartRequest(items=(("1YMWWN1N4O", n),))) for n in range(1, 41)]
    assert all(record.status == "processing" for record in records)  # 40 at once: all accepted
    wait_for(lambda: service.generator.running == 6, what="six model calls at once")
    service.generator.release.set()
    assert all(service.finished(r.id).status == "completed" for r in records)
    assert service.generator.most == 6 and service.generator.calls == 40


def test_beyond_the_queue_the_caller_is_told_to_retry(services):
    service = services(generator=GatedGenerator(), concurrency=1, queue_limit=2)
    for n in range(1, 4):
        service.start(CartRequest(items=(("1YMWWN1N4O", n),)))
    with pytest.raises(Busy, match="try again"):
        service.start(CartRequest(items=(("1YMWWN1N4O", 9),)))


def test_the_collage_draws_at_most_its_cpu_slots_at_once_however_many_generations_run():
    inside = threading.Semaphore(0)
    running, most, lock = [0], [0], threading.Lock()

    class CountedSlots:
        def __init__(self) -> None:
            self._slots = threading.BoundedSemaphore(2)

        def __enter__(self) -> None:
            self._slots.acquire()
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            inside.release()

        def __exit__(self, *exc: object) -> None:
            with lock:
                running[0] -= 1
            self._slots.release()

    collage = CollageGenerator("jpeg", cpu_slots=CountedSlots())
    service = Service(generator=collage, concurrency=8)
    try:
        records = [service.start(CartRequest(items=(("9SIQT8TOJO", n),))) for n in range(1, 7)]
        assert all(service.finished(r.id).status == "completed" for r in records)
        assert 1 <= most[0] <= 2
    finally:
        service.queue.shutdown(1)


def test_a_generation_that_waited_past_the_budget_fails_with_a_message_for_the_shopper(services):
    now = [0.0]
    service = services(generator=GatedGenerator(), concurrency=1, max_wait=30, clock=lambda: now[0])
    first = service.start(CartRequest(items=(("L9ECAV7KIM", 1),)))
    wait_for(lambda: service.generator.running == 1, what="the first drawing")
    second = service.start(CartRequest(items=(("L9ECAV7KIM", 2),)))
    now[0] = 31.0  # the second has waited 31 s behind the first
    service.generator.release.set()
    assert service.finished(first.id).status == "completed"
    late = service.finished(second.id)
    assert late.status == "failed" and "busy" in late.error_message and "try again" in late.error_message
    assert service.generator.calls == 1


def test_shutdown_marks_generations_still_running_after_the_grace_as_failed(services):
    store = MemoryStore()
    store.release.clear()
    service = services(store=store)
    record = service.start(CartRequest(items=(("6E92ZMYYFZ", 1),)))
    assert store.writing.wait(10)
    assert service.queue.shutdown(0.05) == 1
    status = service.status(record.id)
    assert status.status == "failed" and "shut down" in status.error_message
    with pytest.raises(Busy, match="shutting down"):
        service.start(CartRequest(items=(("OLJCESPC7Z", 1),)))


def test_shutdown_ends_queued_generations_without_drawing_them(services):
    service = services(generator=GatedGenerator(), concurrency=1)
    running = service.start(CartRequest(items=(("66VCHSJNUP", 1),)))
    wait_for(lambda: service.generator.running == 1, what="the first drawing")
    queued = service.start(CartRequest(items=(("66VCHSJNUP", 2),)))
    assert service.queue.shutdown(0.05) == 1  # only the running one was still unfinished at the end
    for record in (running, queued):
        final = service.status(record.id)
        assert final.status == "failed" and "shut down" in final.error_message
    service.generator.release.set()
    assert service.generator.calls == 1


def test_a_generation_cancelled_before_it_started_is_never_drawn_and_frees_its_place(services):
    service = services(generator=GatedGenerator(), concurrency=1, queue_limit=1)
    running = service.start(CartRequest(items=(("66VCHSJNUP", 1),)))
    wait_for(lambda: service.generator.running == 1, what="the first drawing")
    queued = service.start(CartRequest(items=(("66VCHSJNUP", 2),)))
    assert service.read(queued.id).queue_position == 0
    withdrawn = service.cancel(queued.id)
    assert withdrawn.generation.status == "failed" and "cancelled" in withdrawn.generation.error_message
    assert service.cancel(running.id).generation.status == "processing"  # started: it goes on
    again = service.start(CartRequest(items=(("66VCHSJNUP", 2),)))  # its place (and its key) are free
    assert again.id != queued.id
    service.generator.release.set()
    assert service.finished(again.id).status == "completed"
    assert service.generator.calls == 2
    assert service.cancel("no-such-id") is None


def test_a_light_shopper_waits_behind_one_of_a_heavy_shoppers_jobs_not_all(services):
    service = services(generator=GatedGenerator(), concurrency=1, queue_limit=40)
    heavy = [service.start(CartRequest(user_id="heavy", items=(("1YMWWN1N4O", n),))) for n in range(1, 21)]
    wait_for(lambda: service.generator.running == 1, what="the first drawing")
    light = service.start(CartRequest(user_id="light", items=(("1YMWWN1N4O", 99),)))
    assert service.read(light.id).queue_position == 1
    assert service.read(heavy[-1].id).queue_position == 19
    service.generator.release.set()


class FailingOnceQueue(MemoryQueue):
    """A queue whose first take fails with an error no adapter maps (a client library's own bug, say)."""

    def __init__(self) -> None:
        super().__init__(600)
        self.failed = False

    def take(self, consumer, block_seconds=0.0):
        if not self.failed:
            self.failed = True
            raise TypeError("argument must be an int, or have a fileno() method.")
        return super().take(consumer, block_seconds)


def test_a_take_that_fails_unexpectedly_does_not_stop_the_replica_drawing(services):
    queue = FailingOnceQueue()
    service = services(shared_queue=queue)
    wait_for(lambda: queue.failed, what="the failing take")
    record = service.start(CartRequest(items=(("MUG", 1),)))
    assert service.finished(record.id).status == "completed"


class FailingRenewQueue(MemoryQueue):
    """A queue whose first lease renewal fails with an error no adapter maps; counts renewals."""

    def __init__(self) -> None:
        super().__init__(600)
        self.renewals = 0

    def renew(self, consumer, generation_id):
        self.renewals += 1
        if self.renewals == 1:
            raise TypeError("argument must be an int, or have a fileno() method.")
        return super().renew(consumer, generation_id)


def test_a_renewal_that_fails_unexpectedly_does_not_stop_the_leases_being_renewed(services):
    queue = FailingRenewQueue()
    service = services(shared_queue=queue, lease_seconds=0.3, generator=GatedGenerator())
    record = service.start(CartRequest(items=(("MUG", 1),)))
    wait_for(lambda: queue.renewals >= 3, what="the running job's lease renewed after the failure")
    service.generator.release.set()
    assert service.finished(record.id).status == "completed"


def test_a_stored_background_is_kept_once_and_can_be_drawn_on(services):
    service = services()
    data = base64.b64encode(png(32)).decode()
    url = service.store_background(data)
    assert service.store_background(data) == url
    assert [name for name in service.store.objects if name.startswith("backgrounds/")] == [
        service.store.name_from_url(url)]
    record = service.start(CartRequest(items=(("MUG", 1),), background_image_url=url))
    assert service.finished(record.id).status == "completed"


def test_a_background_that_is_not_an_image_is_refused_naming_the_field(services):
    with pytest.raises(InvalidArgument) as caught:
        services().store_background(base64.b64encode(b"not an image at all").decode())
    assert caught.value.field == "image_data"

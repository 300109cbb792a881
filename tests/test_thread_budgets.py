"""Threads budgeted per class of method, over real gRPC against a fresh service process: silent streams
and slow senders exhaust their own budget, never health, status or the generation slots. Health and
status are probed with gRPC's 1 s deadline while the flood is on."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2

from genproto import imagegeneration_pb2 as pb
from tests.service import raw_call, upload_slots_held, wait_for

REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def silent(release: threading.Event):
    """A request stream that sends nothing until release is set."""
    release.wait(120)
    yield from ()


def shop_generation(service, quantity: int) -> str:
    """A shopper's GenerateCartImage with the kit's 10 s deadline; the generation id."""
    return service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
        cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=quantity)]), timeout=10).generation_id


def assert_health_and_status_answer(service, probes: int = 10) -> None:
    for _ in range(probes):
        health = service.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        status = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id="nope"), timeout=1)
        assert status.status == "not_found"


def test_200_silent_reflection_streams_leave_health_and_status_answering(make_service):
    service = make_service()
    release = threading.Event()
    reflection = service.channel.stream_stream(REFLECTION)
    streams = [reflection(silent(release), timeout=120) for _ in range(200)]
    try:
        refused = 0
        for stream in streams:  # all but the streaming budget's few are refused at once
            if stream.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:  # blocks until that stream ends
                refused += 1
            if refused >= 190:
                break
        assert refused >= 190
        assert_health_and_status_answer(service)
        # The few admitted ones are cut once their first message is late, and streams work again.
        for stream in streams[:4]:
            assert stream.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert "no first message within 10 s" in service.logs()
    finally:
        release.set()


def test_silent_generation_requests_hold_no_generation_slot(make_service):
    service = make_service({"GENERATE_MAX_INFLIGHT": "3"})
    release = threading.Event()
    raw = raw_call(service.channel, "GenerateCartImage")
    held = [raw.future(silent(release), timeout=120) for _ in range(3)]  # as many as there are slots
    try:
        shopper = service.stub.GenerateCartImage(pb.GenerateCartImageRequest(
            cart_items=[pb.CartItem(product_id="6E92ZMYYFZ", quantity=1)]), timeout=30)
        assert shopper.generation_id
        assert_health_and_status_answer(service, probes=3)
        for call in held:  # each cut off by the read deadline, never having held a slot
            with pytest.raises(grpc.RpcError) as caught:
                call.result(timeout=60)
            assert caught.value.code() == grpc.StatusCode.CANCELLED
    finally:
        release.set()


def keep_open(calls: int, open_one, stop: threading.Event) -> threading.Thread:
    """Keeps `calls` silent calls open, opening a new one as soon as one ends, until stop is set."""

    def run() -> None:
        held = [open_one() for _ in range(calls)]
        while not stop.is_set():
            for index, call in enumerate(held):
                if call.done():
                    held[index] = open_one()
            stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def tiny_png() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_150_silent_generation_senders_leave_24_shoppers_admitted_within_the_kits_deadline(make_service):
    service = make_service()
    stop = threading.Event()
    raw = raw_call(service.channel, "GenerateCartImage")
    flood = [raw.future(silent(stop), timeout=120) for _ in range(150)]
    try:
        with futures.ThreadPoolExecutor(24) as pool:
            admitted = list(pool.map(lambda quantity: shop_generation(service, quantity), range(1, 25)))
        assert len(set(admitted)) == 24
        assert_health_and_status_answer(service, probes=3)
        for call in flood:  # every one cut off, refused a turn, or refused a thread, never admitted
            with pytest.raises(grpc.RpcError) as caught:
                call.result(timeout=60)
            assert caught.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED)
    finally:
        stop.set()


def test_4_silent_uploads_reopened_as_fast_as_they_are_cut_delay_shoppers_uploads_but_never_refuse_them(make_service):
    service = make_service()  # two upload slots
    stop = threading.Event()
    raw = raw_call(service.channel, "UploadBackground")
    attacker = keep_open(4, lambda: raw.future(silent(stop), timeout=120), stop)
    try:
        wait_for(lambda: upload_slots_held(service), timeout=30, what="the silent uploads to hold both slots")

        def shop(_: int) -> str:  # the kit's 30 s upload deadline
            return service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=tiny_png()), timeout=30).image_url

        with futures.ThreadPoolExecutor(4) as pool:
            urls = list(pool.map(shop, range(4)))
        assert all(url.startswith("http") for url in urls)
        urls.append(shop(4))  # and one more after them, the attackers still at it
        assert service.logs().count("the request was not received within 5 s") >= 2  # the attackers were cut
    finally:
        stop.set()
        attacker.join(10)


def own_connection(service) -> grpc.Channel:
    """A channel on a TCP connection of its own (gRPC shares one per target in a process by default), as an
    attacker's pod has: the shop's frontend keeps its own."""
    return grpc.insecure_channel(f"127.0.0.1:{service.port}", options=[("grpc.use_local_subchannel_pool", 1)])


def test_32_silent_generation_calls_reopened_as_fast_as_they_are_cut_leave_shoppers_admitted(make_service):
    attackers = 32  # on a connection of their own, as from another pod
    service = make_service()
    stop = threading.Event()
    channel = own_connection(service)
    raw = raw_call(channel, "GenerateCartImage")
    attacker = keep_open(attackers, lambda: raw.future(silent(stop), timeout=120), stop)
    try:
        wait_for(lambda: service.logs().count("while another call waited") + service.logs().count(
            "the request was not received within") >= attackers, timeout=30, what="the attackers cut and back")

        with futures.ThreadPoolExecutor(8) as pool:
            admitted = list(pool.map(lambda quantity: shop_generation(service, quantity), range(1, 17)))
        assert len(set(admitted)) == 16
    finally:
        stop.set()
        attacker.join(10)
        channel.close()


def test_silent_status_calls_are_cut_off_and_a_shoppers_status_is_answered(make_service):
    service = make_service()
    release = threading.Event()
    raw = raw_call(service.channel, "GetImageGenerationStatus")
    held = [raw.future(silent(release), timeout=120) for _ in range(12)]  # six times the status threads
    try:
        answer = service.stub.GetImageGenerationStatus(pb.GetStatusRequest(generation_id="nope"), timeout=30)
        assert answer.status == "not_found"
        for call in held:  # none holds its thread for good: each is cut off, late or silent while others wait
            with pytest.raises(grpc.RpcError) as caught:
                call.result(timeout=60)
            assert caught.value.code() == grpc.StatusCode.CANCELLED
        assert "the request was still arriving after 1 s while another call waited" in service.logs()
        assert_health_and_status_answer(service, probes=3)
    finally:
        release.set()

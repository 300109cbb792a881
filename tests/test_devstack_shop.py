"""The dev stack's options for the demo shop: slow product pictures, pictures drawn at start."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

from devstack.process import wait_for
from devstack.servers import start_devstack


def test_pictures_are_served_when_drawn_at_start():
    with start_devstack(draw_pictures=True) as stack:
        with urllib.request.urlopen(stack.picture_base_url + "/static/img/products/mug.jpg", timeout=60) as answer:
            assert answer.status == 200 and answer.read(3) == b"\xff\xd8\xff"


def test_a_slow_picture_does_not_hold_up_stopping_the_stack():
    stack = start_devstack(picture_latency=3600)
    outcome: list[object] = []

    def fetch() -> None:
        try:
            with urllib.request.urlopen(stack.picture_base_url + "/static/img/products/mug.jpg", timeout=60) as answer:
                outcome.append(answer.status)
        except (urllib.error.URLError, ConnectionError) as error:
            outcome.append(error)

    waiting = threading.Thread(target=fetch)
    waiting.start()
    wait_for(lambda: any("process_request_thread" in t.name for t in threading.enumerate()),
             what="the picture request to be waiting in its handler")
    stack.stop()  # returns although the request would wait an hour (pytest-timeout guards a hang)
    waiting.join(60)
    assert not waiting.is_alive()
    assert outcome and outcome[0] != 200  # the slow answer was never sent

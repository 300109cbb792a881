"""The fake Gemini's own counts, which the fleet and capacity tests wait on."""

from __future__ import annotations

import json
import threading
import urllib.request

from tests.fakes.fake_gemini import FakeGemini
from tests.service import wait_for


def _draw(fake: FakeGemini) -> None:
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "a cart"}]}]}).encode()
    request = urllib.request.Request(f"{fake.base_url}/v1beta/models/m:generateContent", data=body,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def test_a_held_fake_counts_model_calls_in_flight_and_not_the_model_listing():
    with FakeGemini() as fake:
        fake.hold()
        # The service lists models once at start; held and counted, it read as a drawing in flight.
        with urllib.request.urlopen(f"{fake.base_url}/v1beta/models", timeout=10) as listing:
            assert listing.status == 200
        assert fake.in_flight == 0
        drawing = threading.Thread(target=_draw, args=(fake,))
        drawing.start()
        wait_for(lambda: fake.in_flight == 1, what="the held drawing")
        fake.release()
        drawing.join(10)
        assert fake.in_flight == 0 and fake.max_in_flight == 1 and len(fake.list_requests) == 1

"""Decoding memory is bounded by UPLOAD_DECODE_MAX_BYTES, computed from the header before decoding:
crafted PNGs refused with the limit in the message, and the peak RSS (VmHWM) of a fresh process
decoding the largest accepted ones stays within the budget."""

from __future__ import annotations

import base64
import io
import re

import grpc
import pytest
from PIL import Image

from genproto import imagegeneration_pb2 as pb
from imagegen.errors import InvalidArgument
from imagegen.uploads import UploadLimits, decode_background
from tests.fakes.crafted import png
from tests.fakes.decode_peak import measure

LIMITS = UploadLimits()  # the defaults: 10 MB, 40 MP, 2048 px, 256 MiB of decoding
BUDGET_MIB = LIMITS.max_decode_bytes / 2**20


def refusal(data: bytes, limits: UploadLimits = LIMITS) -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode_background(base64.b64encode(data).decode(), limits)
    return str(caught.value)


@pytest.mark.parametrize("shape", [
    dict(width=1, height=40_000_000, bit_depth=16, color_type=0),  # 117 KB, 1.3 GB before
    dict(width=1, height=40_000_000, bit_depth=8, color_type=2),
    dict(width=40_000_000, height=1, bit_depth=8, color_type=2),
    dict(width=4, height=10_000_000, bit_depth=16, color_type=0),
    dict(width=1, height=40_000_000, bit_depth=8, color_type=2, truncated=True),  # 60 bytes, 476 MB before
], ids=["gray16-1x40M", "rgb-1x40M", "rgb-40Mx1", "gray16-4x10M", "truncated-1x40M"])
def test_pictures_whose_decoding_would_exceed_the_budget_are_refused_naming_the_limit(shape):
    message = refusal(png(**shape))
    assert message.startswith("image_data: is a ")
    assert re.search(r"decoding it would need about [\d,]+ MB of memory, more than the limit of 256 MB", message)


def test_the_budget_is_a_setting():
    small = UploadLimits(max_decode_bytes=32 * 1024 * 1024)
    message = refusal(png(2000, 2000, 8, 2), small)
    assert "more than the limit of 32 MB" in message


def test_pictures_within_the_budget_still_decode():
    background = decode_background(base64.b64encode(png(3000, 2000, 16, 0)).decode(), LIMITS)
    assert (background.width, background.height) == (2048, 1365)


def test_16_bit_grayscale_is_scaled_not_clipped_in_every_band():
    data = png(256, 2_100_000 // 256, 16, 0)  # taller than one band of rows; every row the same
    background = decode_background(base64.b64encode(data).decode(), LIMITS)
    decoded = Image.open(io.BytesIO(background.picture.data)).convert("L")
    width, height = decoded.size
    for top in (0, height // 2, height - 8):
        low, high = decoded.crop((0, top, width, top + 8)).getextrema()
        assert low < 40 and high > 200, (top, low, high)  # neither clipped to white nor lost to black


# ---- peak memory of a fresh process (VmHWM) ----

@pytest.mark.parametrize("name, shape", [
    ("gray16-8000x5000", dict(width=8000, height=5000, bit_depth=16, color_type=0)),  # 432 MB before
    ("rgba16-8000x5000", dict(width=8000, height=5000, bit_depth=16, color_type=6)),
    ("palette-8000x5000", dict(width=8000, height=5000, bit_depth=8, color_type=3)),
])
def test_the_largest_accepted_pictures_decode_within_the_budget(tmp_path, name, shape):
    path = tmp_path / f"{name}.png"
    path.write_bytes(png(**shape))
    report = measure(path)
    assert report["outcome"] == "stored", report
    assert report["peak_rise_mib"] <= BUDGET_MIB, report


def test_a_refused_bomb_costs_next_to_nothing(tmp_path):
    path = tmp_path / "gray16-1x40M.png"
    path.write_bytes(png(1, 40_000_000, 16, 0))
    report = measure(path)
    assert report["outcome"] == "refused" and "more than the limit of 256 MB" in report["message"]
    assert report["peak_rise_mib"] < 16, report


def test_the_service_refuses_a_crafted_upload_over_grpc_and_stays_small(service):
    data = base64.b64encode(png(1, 40_000_000, 16, 0)).decode()
    before = service.memory_mib("VmHWM")
    with pytest.raises(grpc.RpcError) as caught:
        service.stub.UploadBackground(pb.UploadBackgroundRequest(image_data=data), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "more than the limit of 256 MB" in caught.value.details()
    assert service.memory_mib("VmHWM") - before < 32

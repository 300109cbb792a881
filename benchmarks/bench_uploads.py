"""Benchmark: decode_background against a bare Pillow open+load+save of the same large uploads.

Run with: .venv/bin/python benchmarks/bench_uploads.py [--runs N]

Cases: a 12-megapixel photo-like JPEG (4000x3000) and a 40-megapixel PNG (8000x5000), both under the
default 10 MB upload limit. For each case it prints the median wall time of N runs in this process and
the peak memory of one run in a fresh subprocess (growth of peak RSS, VmHWM, over the process's own baseline,
which covers Pillow's pixel buffers; tracemalloc cannot see those, they are allocated in C).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from imagegen.uploads import UploadLimits, decode_background  # noqa: E402

LIMITS = UploadLimits()


def photo_like(width: int, height: int, noise_rows: float) -> Image.Image:
    """Gradients, soft shapes and sensor-like noise over the top noise_rows fraction of the picture."""
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.radial_gradient("L").resize((width, height))
    blue = Image.linear_gradient("L").rotate(90).resize((width, height))
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    rng = random.Random(7)
    for _ in range(80):
        x, y, side = rng.randrange(width), rng.randrange(height), rng.randrange(width // 40, width // 6)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(width / 800))
    noisy_height = int(height * noise_rows)
    if noisy_height:
        band = image.crop((0, 0, width, noisy_height))
        noise = Image.effect_noise(band.size, 40)
        band = Image.merge("RGB", [Image.blend(channel, noise, 0.15) for channel in band.split()])
        image.paste(band, (0, 0))
    return image


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def transparent(image: Image.Image) -> Image.Image:
    """The image with an alpha gradient: the costliest kind of upload (RGBA, resampled premultiplied)."""
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    return image


def bare(data: bytes) -> None:
    """What Pillow costs with no safety and no resizing: open, decode every pixel, encode in the same format."""
    image = Image.open(io.BytesIO(data))
    image.load()
    image.save(io.BytesIO(), format=image.format)


def bare_thumbnail(data: bytes) -> None:
    """The same work done the plain Pillow way: open, thumbnail to max_side, encode in the same format."""
    image = Image.open(io.BytesIO(data))
    fmt = image.format
    image.thumbnail((LIMITS.max_side, LIMITS.max_side))
    image.save(io.BytesIO(), format=fmt)


def ours(data: bytes) -> None:
    """decode_background, from the base64 text a client sends."""
    decode_background(base64.b64encode(data).decode("ascii"), LIMITS)


OPERATIONS: dict[str, Callable[[bytes], None]] = {
    "bare open+load+save": bare,
    "bare open+thumbnail+save": bare_thumbnail,
    "decode_background": ours,
}


def median_seconds(operation: Callable[[bytes], None], data: bytes, runs: int) -> float:
    operation(data)  # warm-up: plugin imports, first allocations
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        operation(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_mib(operation: str, path: str) -> float:
    """Peak RSS growth of one run of operation on the file at path, in a fresh process."""
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", operation, path],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(result.stdout.strip())


def child(operation: str, path: str) -> None:
    with open(path, "rb") as file:
        data = file.read()
    text = base64.b64encode(data).decode("ascii")  # the base64 is there in every case, as in the service
    import imagegen.uploads  # noqa: F401  (imports and plugin loading out of the measurement)

    Image.init()
    before = high_water_kib()
    OPERATIONS[operation](data)
    after = high_water_kib()
    del text
    print((after - before) / 1024)


def high_water_kib() -> int:
    """This process's peak resident memory in KiB.

    VmHWM rather than ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec,
    so a child of this (by then large) benchmark process would start with the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: KiB on most, bytes on macOS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    print("building inputs ...", flush=True)
    cases = [
        ("JPEG 4000x3000 (12 MP)", encoded(photo_like(4000, 3000, 1.0), "JPEG", quality=90)),
        ("PNG 8000x5000 (40 MP)", encoded(photo_like(8000, 5000, 0.02), "PNG")),
        ("PNG RGBA 8000x5000", encoded(transparent(photo_like(8000, 5000, 0.02)), "PNG")),
        ("JPEG progr. 8000x5000", encoded(photo_like(8000, 5000, 0.6), "JPEG", quality=90, progressive=True)),
    ]
    print(f"limits: {LIMITS}; runs per timing: {args.runs} (median); memory: one run per fresh process\n")
    header = f"{'case':<24} {'operation':<26} {'median s':>9} {'x bare':>7} {'peak MiB':>9} {'x pixel limit':>14}"
    print(header)
    print("-" * len(header))
    pixel_limit_mib = LIMITS.max_pixels * 4 / 2**20  # one RGBA-sized image at the pixel limit
    with tempfile.TemporaryDirectory() as directory:
        for name, data in cases:
            path = os.path.join(directory, "input")
            with open(path, "wb") as file:
                file.write(data)
            print(f"{name:<24} input {len(data) / 2**20:.1f} MiB")
            baseline = None
            for operation_name, operation in OPERATIONS.items():
                seconds = median_seconds(operation, data, args.runs)
                baseline = baseline or seconds
                peak = peak_mib(operation_name, path)
                print(
                    f"{'':<24} {operation_name:<26} {seconds:>9.3f} {seconds / baseline:>7.2f}"
                    f" {peak:>9.0f} {peak / pixel_limit_mib:>14.2f}"
                )
    print(f"\n'x pixel limit' is peak memory over max_pixels*4 bytes = {pixel_limit_mib:.0f} MiB.")


if __name__ == "__main__":
    main()

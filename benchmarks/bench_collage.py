"""The offline collage, today's against the one before the cut-out rework, measured in the same run.

The earlier collage (the single-module imagegen/generators/collage.py) is read from git history into a
temporary folder and imported beside today's, so both draw the same carts on the same machine:

    .venv/bin/python benchmarks/bench_collage.py [--runs 7] [--pictures devstack|studio]

Goals (printed, not asserted): a warm 6-product modern picture at 1024 px in at most 150 ms, a warm
20-product vintage one in at most 300 ms, 2048 px in at most 2.5 times the 1024 px time, and the stored
picture at most 400 KB at 1024 px.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.catalog import PRODUCTS  # noqa: E402
from devstack.photos import STUDIO_PRODUCTS, studio_photo  # noqa: E402
from devstack.pictures import draw_product_picture  # noqa: E402
from imagegen.domain import CartLine, GenerationInput, Picture, Product  # noqa: E402
from imagegen.generators.collage import CollageGenerator  # noqa: E402
from imagegen.styles import resolve_style  # noqa: E402

OLD_PATH = "imagegen/generators/collage.py"


def earlier_collage() -> object | None:
    """Imports the collage as it was before it became a package, from git history; None if unavailable."""
    try:
        last = subprocess.run(
            ["git", "rev-list", "-1", "HEAD", "--", OLD_PATH], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        source = subprocess.run(
            ["git", "show", f"{last}~1:{OLD_PATH}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    folder = Path(tempfile.mkdtemp(prefix="bench-collage-"))
    (folder / "earlier_collage.py").write_text(source)
    spec = importlib.util.spec_from_file_location("earlier_collage", folder / "earlier_collage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["earlier_collage"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def cart(count: int, pictures: str) -> tuple[CartLine, ...]:
    """A cart of count products, cycling through the shop's nine (or the studio photos) for pictures."""
    lines = []
    for i in range(count):
        product = PRODUCTS[i % len(PRODUCTS)]
        if pictures == "studio":
            kinds = list(STUDIO_PRODUCTS)
            data = studio_photo(kinds[i % len(kinds)], seed=1 + i // len(kinds)).jpeg
        else:
            data = draw_product_picture(product.picture)
        unique = Product(f"{product.id}-{i}", product.name, picture=product.picture)
        lines.append(CartLine(unique, 1 + i % 4, Picture(data, "image/jpeg")))
    return tuple(lines)


def timed(draw: Callable[[], Picture], runs: int) -> tuple[float, float, int]:
    """Returns the first (cold) time, the median of runs warm times, in seconds, and the picture's bytes."""
    start = time.perf_counter()
    picture = draw()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(runs):
        start = time.perf_counter()
        picture = draw()
        warm.append(time.perf_counter() - start)
    return cold, statistics.median(warm), len(picture.data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pictures", choices=("devstack", "studio"), default="devstack")
    args = parser.parse_args()
    earlier = earlier_collage()
    generators: list[tuple[str, object]] = [("today", CollageGenerator())]
    if earlier is not None:
        generators.insert(0, ("before", earlier.CollageGenerator()))  # type: ignore[attr-defined]
    else:
        print("(the earlier collage is not in this checkout's history: today's figures only)")

    cases = [
        ("modern, 6 products, 1024", "modern", 6, 1024),
        ("modern, 6 products, 2048", "modern", 6, 2048),
        ("vintage, 20 products, 1024", "vintage", 20, 1024),
        ("vintage, 20 products, 2048", "vintage", 20, 2048),
    ]
    results: dict[tuple[str, str], tuple[float, float, int]] = {}
    print(f"pictures: {args.pictures}; warm = median of {args.runs} runs after a first (cold) one")
    print(f"{'case':30} {'who':7} {'cold':>9} {'warm':>9} {'stored':>10}")
    for label, style, count, size in cases:
        request = GenerationInput(cart(count, args.pictures), resolve_style(style), None, size)
        for who, generator in generators:
            result = timed(lambda g=generator: g.generate(request, lambda _: None), args.runs)  # type: ignore[attr-defined]
            results[(label, who)] = result
            cold, warm, stored = result
            print(f"{label:30} {who:7} {cold * 1000:7.0f}ms {warm * 1000:7.0f}ms {stored / 1024:8.0f}KB")

    def warm(label: str, who: str = "today") -> float:
        return results[(label, who)][1]

    print()
    print("goals (today):")
    checks = [
        ("warm modern 6 @1024 <= 150 ms", warm("modern, 6 products, 1024") * 1000, 150, "ms"),
        ("warm vintage 20 @1024 <= 300 ms", warm("vintage, 20 products, 1024") * 1000, 300, "ms"),
        (
            "modern 2048 / 1024 <= 2.5x",
            warm("modern, 6 products, 2048") / warm("modern, 6 products, 1024"),
            2.5,
            "x",
        ),
        (
            "vintage 2048 / 1024 <= 2.5x",
            warm("vintage, 20 products, 2048") / warm("vintage, 20 products, 1024"),
            2.5,
            "x",
        ),
        ("stored vintage 20 @1024 <= 400 KB", results[("vintage, 20 products, 1024", "today")][2] / 1024, 400, "KB"),
        ("stored modern 6 @1024 <= 400 KB", results[("modern, 6 products, 1024", "today")][2] / 1024, 400, "KB"),
    ]
    for name, value, goal, unit in checks:
        verdict = "met" if value <= goal else f"missed by {value - goal:.2f} {unit}"
        print(f"  {name:36} {value:8.2f} {unit:3} {verdict}")


if __name__ == "__main__":
    main()

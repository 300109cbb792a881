"""Cut-out defects measured on project-made fixtures: fine neutral temple arms (how many pieces an arm
falls into, how much of it is kept) and the studio photos' IoU over eight sessions. Prints figures.

    .venv/bin/python benchmarks/measure_cutout_defects.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.photos import STUDIO_PRODUCTS, StudioPhoto, studio_photo  # noqa: E402
from imagegen.generators.collage.cutout import lift  # noqa: E402

KEPT = 24


def fine_frames(seed: int = 1) -> StudioPhoto:
    """Sunglasses with temple arms finer than the working copy's pixels (2-3 px at 700), slanted."""
    from devstack.photos import _mask, _render, _shade, _with_thin

    side = 1400
    width = 4  # 2 px once reduced: under one pixel of the small copy GrabCut works on

    def arms(d: ImageDraw.ImageDraw, s: float) -> None:
        d.line((0.27 * s, 0.48 * s, 0.06 * s, 0.3 * s), fill=255, width=width)
        d.line((0.73 * s, 0.48 * s, 0.93 * s, 0.22 * s), fill=255, width=width)

    def paint(d: ImageDraw.ImageDraw, s: float) -> None:
        d.ellipse((0.27 * s, 0.44 * s, 0.47 * s, 0.62 * s), 255)
        d.ellipse((0.53 * s, 0.44 * s, 0.73 * s, 0.62 * s), 255)
        d.line((0.45 * s, 0.47 * s, 0.55 * s, 0.47 * s), fill=255, width=width)
        arms(d, s)

    return _with_thin(_render(side, seed, _mask(side, paint), _shade(side, (96, 96, 100))), _mask(side, arms))



def main() -> None:
    """Prints the arms' pieces and kept share at two sizes, then IoU per studio product over seeds 1-8."""
    for seed in (1, 2):
        shot = fine_frames(seed)
        for want in (700, 324):
            image = Image.open(io.BytesIO(shot.jpeg)).convert("RGB").resize((want, want), Image.Resampling.LANCZOS)
            alpha = np.asarray(lift(image).getchannel("A")) > KEPT
            arms = np.asarray(shot.thin.resize((want, want), Image.Resampling.BOX)) > 96
            kept = alpha & arms
            pieces = cv2.connectedComponents(kept.astype(np.uint8), connectivity=8)[0] - 1
            print(f"fine arms seed {seed} at {want}: kept {kept.sum() / arms.sum():.3f}, pieces {pieces} (goal 2)")
    for kind in STUDIO_PRODUCTS:
        scores = []
        for seed in range(1, 9):
            shot = studio_photo(kind, seed=seed)
            alpha = np.asarray(lift(Image.open(io.BytesIO(shot.jpeg)).convert("RGB")).getchannel("A")) > KEPT
            truth = np.asarray(shot.mask) > 0
            scores.append(float((alpha & truth).sum() / max(1, (alpha | truth).sum())))
        print(f"IoU {kind}: min {min(scores):.3f}, max {max(scores):.3f}")


if __name__ == "__main__":
    main()

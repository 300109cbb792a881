"""Decodes one upload in a fresh process and reports its peak memory: `python -m tests.fakes.decode_peak FILE`.

Prints one JSON object: outcome (stored / refused), the refusal message, the peak resident set rise
(VmHWM after decoding minus VmHWM before it, in MiB) and the seconds taken.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def vm_hwm_mib() -> float:
    """This process's peak resident set so far, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise KeyError("VmHWM")


def measure(path: Path, env: dict[str, str] | None = None, timeout: float = 300) -> dict:
    """Runs this module on path in a fresh interpreter; returns its report."""
    done = subprocess.run([sys.executable, "-m", "tests.fakes.decode_peak", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from imagegen.errors import InvalidArgument
    from imagegen.settings import Settings
    from imagegen.uploads import UploadLimits, decode_background

    settings = Settings.from_env()
    limits = UploadLimits(settings.max_upload_bytes, settings.max_image_pixels, settings.background_max_side,
                          settings.upload_decode_max_bytes)
    image_data = base64.b64encode(Path(sys.argv[1]).read_bytes()).decode("ascii")
    before = vm_hwm_mib()
    started = time.monotonic()
    try:
        background = decode_background(image_data, limits)
        outcome, message = "stored", f"{background.width}x{background.height}"
    except InvalidArgument as error:
        outcome, message = "refused", str(error)
    print(json.dumps({"outcome": outcome, "message": message, "peak_rise_mib": round(vm_hwm_mib() - before, 1),
                      "seconds": round(time.monotonic() - started, 2)}))


if __name__ == "__main__":
    main()

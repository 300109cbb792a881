"""`python -m imagegen.client` against the real service and the dev stack, as a newcomer runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from devstack.process import ROOT, free_port


def client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imagegen.client", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_generate_waits_for_the_picture_and_prints_its_url(make_service):
    service = make_service()
    run = client("--addr", f"127.0.0.1:{service.port}", "generate", "--user", "shopper-1", "--style", "vintage")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] == "completed" and answer["progress"] == 100
    code, headers, body = service.http_get(answer["image_url"])
    assert code == 200 and body.startswith(b"\xff\xd8\xff")  # the collage's default format, JPEG
    assert answer["image_url"].endswith(".jpg")


def test_generate_without_waiting_then_status(make_service):
    service = make_service()
    addr = f"127.0.0.1:{service.port}"
    run = client("--addr", addr, "generate", "--item", "OLJCESPC7Z:2", "--item", "6E92ZMYYFZ", "--no-wait")
    assert run.returncode == 0, run.stderr
    generation_id = json.loads(run.stdout)["generation_id"]
    service.wait_finished(generation_id)
    status = client("--addr", addr, "status", generation_id)
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "completed"


def test_upload_a_photo_then_a_text_file(make_service, tmp_path: Path):
    service = make_service()
    addr = f"127.0.0.1:{service.port}"
    photo = tmp_path / "beach.jpg"
    Image.new("RGB", (64, 48), (30, 120, 200)).save(photo, "JPEG")
    run = client("--addr", addr, "upload", str(photo))
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] == "success" and "/images/backgrounds/" in answer["image_url"]

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    refused = client("--addr", addr, "upload", str(notes))
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: INVALID_ARGUMENT: image_data: ")


def test_errors_are_one_line_and_exit_1():
    run = client("--addr", f"127.0.0.1:{free_port()}", "--timeout", "3", "status", "x")
    assert run.returncode == 1
    assert run.stderr.startswith("error: UNAVAILABLE") and "Traceback" not in run.stderr
    missing = client("upload", "/no/such/file.jpg")
    assert missing.returncode == 1 and "No such file" in missing.stderr

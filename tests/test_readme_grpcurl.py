"""The README's grpcurl examples, run as written (with `make grpcurl`'s binary) against the service."""

from __future__ import annotations

import io
import json
import re
import subprocess

import pytest
from PIL import Image

from devstack.demo import SAMPLE_CART
from devstack.servers import start_devstack
from tests.conftest import peer_env
from tests.k8s_tools import ROOT, TOOLS, tool
from tests.service import ServiceProcess, wait_for

README = ROOT / "README.md"


def readme_grpcurl_commands() -> list[str]:
    """The README's grpcurl block: one shell command per entry, continuation lines joined."""
    block = re.search(r"```bash\n(export PATH=\"\$PWD/.tools/bin:\$PATH\"\ngrpcurl .*?)```", README.read_text(), re.DOTALL)
    assert block, "README.md has no grpcurl example block starting with the .tools/bin PATH line"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [line for line in lines if line.startswith("grpcurl ")]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The service on the dev stack with the README's demo-user cart."""
    with start_devstack(seed_carts={"demo-user": SAMPLE_CART}) as stack:
        process = ServiceProcess({**peer_env(stack), "RATE_LIMIT_PER_USER": "0"}, tmp_path_factory.mktemp("grpcurl"))
        process.wait_serving()
        yield process
        process.close()


def sh(command: str, service: ServiceProcess, cwd) -> str:
    """Runs a README line in bash with .tools/bin on PATH, the service's address for localhost:8080."""
    tool("grpcurl")
    command = command.replace("localhost:8080", f"127.0.0.1:{service.port}")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, cwd=cwd,
                            env={"PATH": f"{TOOLS}:/usr/bin:/bin", "HOME": str(cwd)})
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout


def test_the_readme_grpcurl_examples_answer(service, tmp_path):
    commands = readme_grpcurl_commands()
    assert len(commands) == 7
    listing, by_user, inline, status, upload, health, styles = commands
    Image.new("RGB", (320, 240), (30, 140, 200)).save(tmp_path / "beach.jpg", "JPEG")

    assert "hipstershop.ImageGenerationService" in sh(listing, service, tmp_path).split()
    first = json.loads(sh(by_user, service, tmp_path))  # grpcurl prints the proto field names
    assert first["status"] == "processing" and first["generation_id"]
    assert json.loads(sh(inline, service, tmp_path))["status"] == "processing"

    def finished():
        answer = json.loads(sh(status.replace("<id from above>", first["generation_id"]), service, tmp_path))
        return answer if answer["status"] != "processing" else None

    final = wait_for(finished, timeout=60, interval=0.2, what="the generation to finish")
    assert final["status"] == "completed" and final["image_url"]
    code, _, body = service.http_get(final["image_url"])
    assert code == 200 and Image.open(io.BytesIO(body)).format == "JPEG"

    uploaded = json.loads(sh(upload, service, tmp_path))
    assert uploaded["status"] == "success" and uploaded["image_url"]
    assert json.loads(sh(health, service, tmp_path)) == {"status": "SERVING"}
    listed = json.loads(sh(styles, service, tmp_path))["styles"]
    assert listed[0] == {"name": "modern", "label": "Modern"} and len(listed) == 7

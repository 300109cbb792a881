"""The container image, proven without Docker: the Dockerfile's steps in a fresh venv and a read-only tree.

The final stage's COPY lines, ENV, WORKDIR and ENTRYPOINT are read from the Dockerfile and carried out
into a temporary root; the builder's venv is a fresh venv holding requirements.txt.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.process import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVICE_NAME = "hipstershop.ImageGenerationService"
START_DEADLINE_SECONDS = 60
STOP_DEADLINE_SECONDS = 30


# ---------------------------------------------------------------------------------------------------
# Reading the Dockerfile and .dockerignore.


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    result, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    return result


def stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """The build stages as (FROM arguments, instructions)."""
    result: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, arguments in instructions():
        if keyword == "FROM":
            result.append((arguments, []))
        else:
            result[-1][1].append((keyword, arguments))
    return result


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage, the one that becomes the image."""
    return stages()[-1][1]


def env_instructions(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The KEY=value pairs set by a stage's ENV lines (values unexpanded)."""
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def dockerignore_patterns() -> list[str]:
    """The .dockerignore patterns (no negations are used)."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line.rstrip("/") for line in lines if line and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "this test does not follow ! patterns in .dockerignore"
    return patterns


def _match(parts: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(parts[1:], pattern[1:])


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether Docker leaves this context path (or a folder above it) out of the build context."""
    parts = Path(relative).parts
    return any(
        _match(list(parts[:depth]), pattern.split("/")) for pattern in patterns for depth in range(1, len(parts) + 1)
    )


# ---------------------------------------------------------------------------------------------------
# Carrying the image's steps out.


def install_requirements(venv: Path) -> None:
    """A fresh venv at `venv` holding requirements.txt, wheels only (the slim base has no compiler)."""
    uv = Path(sys.executable).with_name("uv")
    uv_path = str(uv) if uv.exists() else shutil.which("uv")
    requirements = str(ROOT / "requirements.txt")
    if uv_path:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
        command = [uv_path, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
        # Copies, not hardlinks into uv's cache: the tree is made read-only below.
        command += ["--link-mode", "copy", "--only-binary", ":all:", "-r", requirements]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += ["--only-binary=:all:", "-r", requirements]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"installing requirements.txt failed:\n{result.stderr[-4000:]}"


def carry_out_copy(arguments: str, rootfs: Path, workdir: str) -> None:
    """One `COPY src... dest` from the build context into rootfs, leaving out what .dockerignore names."""
    *sources, dest = shlex.split(arguments)
    patterns = dockerignore_patterns()
    target = rootfs / Path(workdir, dest).relative_to("/")
    for source in sources:
        assert not ignored(source, patterns), f"COPY {source} names a path .dockerignore leaves out"
        path = ROOT / source
        if path.is_file():
            into = target / path.name if dest.endswith("/") or len(sources) > 1 else target
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, into)
            continue
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(ROOT).as_posix()
            if file.is_file() and not ignored(relative, patterns):
                into = target / file.relative_to(path)
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, into)


def snapshot(tree: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under tree with its size and modification time."""
    return {str(p.relative_to(tree)): (p.stat().st_size, p.stat().st_mtime_ns) for p in tree.rglob("*")}


class Image:
    """The image's filesystem laid out under a temporary root, and how to start its entry point."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self.workdir = "/"
        self.env: dict[str, str] = {}
        self.entrypoint: list[str] = []
        self.venv_path = ""

    def path(self, inside: str) -> Path:
        """Where a path inside the image lies on this machine."""
        return self.rootfs / Path(inside).relative_to("/")

    def process_env(self) -> dict[str, str]:
        """The ENV of the final stage, with image paths on PATH mapped onto rootfs."""
        env = dict(self.env)
        path = env.get("PATH", "$PATH").replace("${PATH}", "$PATH").replace("$PATH", "/usr/local/bin:/usr/bin:/bin")
        venv = self.venv_path or "\0"
        env["PATH"] = ":".join(str(self.path(e)) if e.startswith(venv) else e for e in path.split(":"))
        return env

    def argv(self) -> list[str]:
        """The ENTRYPOINT with its program resolved on the image's PATH."""
        program = shutil.which(self.entrypoint[0], path=self.process_env()["PATH"])
        assert program, f"{self.entrypoint[0]} is not on the image's PATH"
        return [program, *self.entrypoint[1:]]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    """The final stage carried out: builder venv, COPY lines, ENV, WORKDIR, ENTRYPOINT; then made read-only."""
    built = Image(tmp_path_factory.mktemp("image") / "rootfs")
    for keyword, arguments in final_stage():
        if keyword == "COPY" and arguments.startswith("--from="):
            # The builder's venv: a fresh venv with requirements.txt at the same place.
            _, source, dest = shlex.split(arguments)
            assert source == dest, "the venv must keep its builder path, its scripts name it"
            built.venv_path = dest
            install_requirements(built.path(dest))
        elif keyword == "COPY":
            carry_out_copy(arguments, built.rootfs, built.workdir)
        elif keyword == "WORKDIR":
            built.workdir = str(Path(built.workdir, arguments))
            built.path(built.workdir).mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            built.env.update(env_instructions([(keyword, arguments)]))
        elif keyword == "ENTRYPOINT":
            built.entrypoint = json.loads(arguments)
    subprocess.run(["chmod", "-R", "a-w", str(built.rootfs)], check=True)
    yield built
    subprocess.run(["chmod", "-R", "u+w", str(built.rootfs)], check=True)


@pytest.fixture
def writable(tmp_path: Path) -> dict[str, Path]:
    """The container's writable places: HOME, /tmp and the image store, each under a temporary folder."""
    places = {"home": tmp_path / "home", "tmp": tmp_path / "tmp", "store": tmp_path / "tmp" / "images"}
    for place in places.values():
        place.mkdir(parents=True, exist_ok=True)
    return places


def service_env(image: Image, writable: dict[str, Path], grpc_port: int, http_port: int) -> dict[str, str]:
    """The image's ENV plus what the pod sets, with peers on a closed loopback port."""
    return {
        **image.process_env(),
        "HOME": str(writable["home"]),
        "TMPDIR": str(writable["tmp"]),
        "IMAGE_STORE_DIR": str(writable["store"]),
        "PORT": str(grpc_port),
        "HTTP_PORT": str(http_port),
        "IMAGE_GENERATOR": "collage",
        "CART_SERVICE_ADDR": "127.0.0.1:1",
        "PRODUCT_CATALOG_SERVICE_ADDR": "127.0.0.1:1",
        "PRODUCT_IMAGE_BASE_URL": "http://127.0.0.1:1",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }


def wait_serving(port: int, process: subprocess.Popen[Any], log: Path) -> None:
    """Watches gRPC health until both names report SERVING; fails with the service's log at the deadline."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    # Short reconnect backoff: the first attempts are refused while the interpreter starts.
    options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE_NAME):
            request = health_pb2.HealthCheckRequest(service=name)
            watch = stub.Watch(request, timeout=max(deadline - time.monotonic(), 0.1), wait_for_ready=True)
            # A service that exits ends the watch at once instead of at the deadline.
            threading.Thread(target=lambda call=watch: (process.wait(), call.cancel()), daemon=True).start()
            try:
                for response in watch:
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        break
            except grpc.RpcError as error:
                pytest.fail(
                    f"health for {name!r} never reported SERVING ({error.code().name}, "
                    f"process exit code {process.poll()}):\n{log.read_text()[-3000:]}"
                )
            finally:
                watch.cancel()


# ---------------------------------------------------------------------------------------------------
# The Dockerfile's shape.


def test_stages_are_base_builder_final_on_a_pinned_slim_python_311() -> None:
    froms = [arguments.split() for arguments, _ in stages()]
    assert [f[-1] for f in froms] == ["base", "builder", "final"]
    image, *_ = froms[0]
    assert fnmatch.fnmatchcase(image, "python:3.11.*-slim-bookworm"), image
    assert image.split(":")[1].split("-")[0].split(".")[2].isdigit(), f"{image} is not pinned to a patch version"
    assert [f[0] for f in froms[1:]] == ["base", "base"]


def test_builder_installs_the_pinned_requirements_into_the_copied_venv() -> None:
    _, builder = stages()[1]
    runs = " ".join(arguments for keyword, arguments in builder if keyword == "RUN")
    assert ("COPY", "requirements.txt /tmp/requirements.txt") in builder
    assert "-r /tmp/requirements.txt" in runs
    copied = [a for k, a in final_stage() if k == "COPY" and a.startswith("--from=builder")]
    assert copied == ["--from=builder /opt/venv /opt/venv"]
    assert "python -m venv /opt/venv" in runs


def test_image_copies_only_what_the_service_needs() -> None:
    sources = {s for k, a in final_stage() if k == "COPY" and not a.startswith("--") for s in shlex.split(a)[:-1]}
    assert sources == {"imagegenservice.py", "imagegen", "genproto"}


def test_image_runs_as_uid_1000_without_writing_bytecode() -> None:
    stage = final_stage()
    users = [arguments for keyword, arguments in stage if keyword == "USER"]
    assert users == ["1000:1000"]
    assert env_instructions(stage)["PYTHONDONTWRITEBYTECODE"] == "1"


def test_image_exposes_grpc_and_http_and_starts_the_service() -> None:
    stage = final_stage()
    exposed = {port for keyword, arguments in stage if keyword == "EXPOSE" for port in arguments.split()}
    assert exposed == {"8080", "8081"}
    entrypoints = [json.loads(arguments) for keyword, arguments in stage if keyword == "ENTRYPOINT"]
    assert entrypoints == [["python", "imagegenservice.py"]]


@pytest.mark.parametrize(
    "path", [".git/HEAD", ".venv/bin/python", "tests/test_deploy.py", "benchmarks/measure_memory.py",
             "devstack/catalog.py", "imagegen/__pycache__/settings.cpython-311.pyc", ".pytest_cache/v/x",
             ".hypothesis/examples/x", "helm-chart/values.yaml", ".tools/bin/helm", "monitoring/dashboard.json"],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert ignored(path, dockerignore_patterns())


@pytest.mark.parametrize(
    "path", ["requirements.txt", "imagegenservice.py", "imagegen/settings.py", "genproto/__init__.py"]
)
def test_dockerignore_lets_in(path: str) -> None:
    assert not ignored(path, dockerignore_patterns())


# ---------------------------------------------------------------------------------------------------
# The image's steps carried out.


def test_every_module_imports_in_the_fresh_venv(image: Image, writable: dict[str, Path]) -> None:
    # Imports the adapters the health test does not reach (Gemini, Cloud Storage, Secret Manager), so a
    # dependency missing from requirements.txt fails here rather than in a pod.
    script = (
        "import pkgutil, importlib, imagegen, genproto\n"
        "for package in (imagegen, genproto):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "import imagegenservice\n"
    )
    env = {**image.process_env(), "HOME": str(writable["home"]), "TMPDIR": str(writable["tmp"])}
    program = shutil.which("python", path=env["PATH"])
    result = subprocess.run(
        [program, "-c", script], cwd=image.path(image.workdir), env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_service_from_read_only_tree_serves_health_and_stops_cleanly(
    image: Image, writable: dict[str, Path], tmp_path: Path
) -> None:
    grpc_port, http_port = free_port(), free_port()
    before = snapshot(image.rootfs)
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            image.argv(),
            cwd=image.path(image.workdir),
            env=service_env(image, writable, grpc_port, http_port),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_serving(grpc_port, process, log)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for name in ("", SERVICE_NAME):
                answer = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_DEADLINE_SECONDS) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert snapshot(image.rootfs) == before, "the service wrote into its read-only tree"
    assert list(writable["home"].iterdir()) == [], "the service wrote into HOME"

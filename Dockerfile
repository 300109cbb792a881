# Online Boutique image generation service.
# tests/test_image_build.py reads this file and carries out the final stage (COPY, ENV, WORKDIR, ENTRYPOINT)
# on a fresh venv: keep ENTRYPOINT in JSON form and the venv at the same path in builder and final.

# The patch version is pinned so rebuilds get the same interpreter; bookworm to match the shop's images.
FROM python:3.11.17-slim-bookworm AS base

FROM base AS builder
# Wheels only: the slim base has no compiler, and every pinned package ships a manylinux wheel.
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        -r /tmp/requirements.txt

FROM base AS final
RUN groupadd --gid 1000 app \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# glibc's allocator: two arenas rather than eight per core for the RPC threads, and buffers of 1 MiB or
# more (request bodies, decoded pictures) mapped and handed back when freed; a flood of uploads then
# peaks about 80 MiB lower (benchmarks/measure_floods.py).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=1048576
WORKDIR /app
COPY imagegenservice.py ./
COPY imagegen ./imagegen
COPY genproto ./genproto
# Bytecode is compiled now because the root filesystem is read-only at run time.
RUN python -m compileall -q /app
# The only writable path is IMAGE_STORE_DIR (default /tmp/imagegenservice/images): mount a volume on /tmp.
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["python", "imagegenservice.py"]

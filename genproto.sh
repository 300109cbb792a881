#!/usr/bin/env bash
# Regenerates genproto/ from protos/ (run from anywhere; needs grpcio-tools from requirements-dev.txt).
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-genproto}"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
"$python" -m grpc_tools.protoc -I protos --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" protos/imagegeneration.proto
# Generated modules import each other by top-level name; make them package-relative.
sed -i 's/^import imagegeneration_pb2 as/from genproto import imagegeneration_pb2 as/' "$out/imagegeneration_pb2_grpc.py"
[ -f "$out/__init__.py" ] || echo '"""Generated protobuf and gRPC modules (see genproto.sh); do not edit."""' > "$out/__init__.py"

#!/usr/bin/env bash
# Regenerates internal/genproto (the kit's tests and demo shop only; a shop uses its own genproto) from
# ../protos/imagegeneration.proto, with grpcio-tools' protoc and the protoc-gen-go / protoc-gen-go-grpc
# versions pinned as tools in go.mod. Usage: genproto.sh [OUTDIR] (default internal/genproto).
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-internal/genproto}"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
go build -o "$tools/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$tools/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
module=imagegenservice/frontend-kit/internal/genproto
mkdir -p "$out"
"${PYTHON:-python3}" -m grpc_tools.protoc --proto_path=../protos \
  --plugin=protoc-gen-go="$tools/protoc-gen-go" --plugin=protoc-gen-go-grpc="$tools/protoc-gen-go-grpc" \
  --go_out="$out" --go_opt=paths=source_relative --go_opt=Mimagegeneration.proto=$module \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative --go-grpc_opt=Mimagegeneration.proto=$module \
  ../protos/imagegeneration.proto

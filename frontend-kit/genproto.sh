#!/usr/bin/env bash
# Regenerates internal/genproto (the kit's tests and demo shop only; a shop uses its own genproto)
# from ../protos/imagegeneration.proto, with grpcio-tools' protoc and protoc-gen-go / protoc-gen-go-grpc:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
set -euo pipefail
cd "$(dirname "$0")"
PATH="$PATH:$(go env GOPATH)/bin"
module=imagegenservice/frontend-kit/internal/genproto
"${PYTHON:-python3}" -m grpc_tools.protoc --proto_path=../protos \
  --go_out=internal/genproto --go_opt=paths=source_relative --go_opt=Mimagegeneration.proto=$module \
  --go-grpc_out=internal/genproto --go-grpc_opt=paths=source_relative --go-grpc_opt=Mimagegeneration.proto=$module \
  ../protos/imagegeneration.proto

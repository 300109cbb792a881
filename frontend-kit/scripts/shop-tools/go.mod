// The protoc plugins the install script runs on the shop's genproto.sh: the versions that generated the
// shop's committed src/frontend/genproto (see frontend-kit/README.md, "Install into the shop"), so
// regenerating changes it only by the kit's addition. Apart from the kit's own go.mod, whose plugins
// are newer.
module imagegenservice/frontend-kit/scripts/shop-tools

go 1.25.0

tool (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.5.1 // indirect
	google.golang.org/protobuf v1.34.2 // indirect
)

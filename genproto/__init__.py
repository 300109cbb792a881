"""Generated protobuf and gRPC modules (see genproto.sh); do not edit."""

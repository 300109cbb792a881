"""The kit's one-command install: the generators it pins, and its refusals. (Its proof on the shop's real
frontend needs a copy of microservices-demo, which the suite does not have: frontend-kit/README.md,
"Proven on the real frontend".)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

KIT = Path(__file__).resolve().parents[1] / "frontend-kit"
INSTALL = KIT / "scripts" / "install-into-shop.sh"
SHOP_TOOLS = KIT / "scripts" / "shop-tools"
GO = shutil.which("go") or "/usr/local/go/bin/go"
# What the shop's committed src/frontend/genproto was generated with (the header of its demo.pb.go).
SHOP_GENERATORS = {"google.golang.org/protobuf": "v1.34.2", "google.golang.org/grpc/cmd/protoc-gen-go-grpc": "v1.5.1"}
LICENCE = "// Copyright 2020 Google LLC\n//\n// Licensed under the Apache License, Version 2.0 (the \"License\");\n"


def test_the_generators_are_pinned_at_the_shops_versions_and_the_guide_names_them():
    go_mod = (SHOP_TOOLS / "go.mod").read_text()
    guide = (KIT / "README.md").read_text()
    for module, version in SHOP_GENERATORS.items():
        assert re.search(rf"^\s*{re.escape(module)} {version}\b", go_mod, re.MULTILINE), module
        assert version in guide
    assert (SHOP_TOOLS / "go.sum").exists()


def test_the_pinned_generators_keep_a_protos_licence_header(tmp_path):
    """What the install runs on the shop's genproto.sh, on a proto headed like the shop's demo.proto."""
    (tmp_path / "demo.proto").write_text(LICENCE + "\nsyntax = \"proto3\";\n\npackage hipstershop;\n\n"
                                         'option go_package = "example.com/hipstershop";\n\n'
                                         "message Money { string currency_code = 1; }\n"
                                         "service Bank { rpc Count(Money) returns (Money) {} }\n")
    for name, package in (("protoc-gen-go", "google.golang.org/protobuf/cmd/protoc-gen-go"),
                          ("protoc-gen-go-grpc", "google.golang.org/grpc/cmd/protoc-gen-go-grpc")):
        subprocess.run([GO, "build", "-o", str(tmp_path / name), package], cwd=SHOP_TOOLS, check=True, timeout=300)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={tmp_path}",
                    f"--plugin=protoc-gen-go={tmp_path / 'protoc-gen-go'}",
                    f"--plugin=protoc-gen-go-grpc={tmp_path / 'protoc-gen-go-grpc'}",
                    f"--go_out={out}", "--go_opt=paths=source_relative",
                    f"--go-grpc_out={out}", "--go-grpc_opt=paths=source_relative", "demo.proto"],
                   cwd=tmp_path, check=True, timeout=60)
    messages, services = (out / "demo.pb.go").read_text(), (out / "demo_grpc.pb.go").read_text()
    assert messages.startswith(LICENCE) and services.startswith(LICENCE)
    assert "// \tprotoc-gen-go v1.34.2\n" in messages
    assert "// - protoc-gen-go-grpc v1.5.1\n" in services
    # protoc-gen-go v1.34's raw descriptor is a byte array, as in the shop's committed file (1.36 writes a string).
    assert "var file_demo_proto_rawDesc = []byte{" in messages


def test_the_install_refuses_a_directory_that_is_not_the_shop(tmp_path):
    (tmp_path / "protos").mkdir()
    result = subprocess.run(["bash", str(INSTALL), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "is not a microservices-demo checkout" in result.stderr
    assert list((tmp_path / "protos").iterdir()) == []


def test_the_install_refuses_a_shop_that_has_the_addition_already(tmp_path):
    (tmp_path / "protos").mkdir()
    (tmp_path / "src" / "frontend").mkdir(parents=True)
    (tmp_path / "src" / "frontend" / "genproto.sh").write_text("#!/bin/sh\n")
    (tmp_path / "src" / "frontend" / "genproto.sh").chmod(0o755)
    proto = tmp_path / "protos" / "demo.proto"
    proto.write_text((KIT / "proto" / "demo.proto.addition").read_text())
    result = subprocess.run(["bash", str(INSTALL), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "already has the kit's proto addition" in result.stderr
    assert proto.read_text() == (KIT / "proto" / "demo.proto.addition").read_text()

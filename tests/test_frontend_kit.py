"""The frontend kit agrees with the service and its guide with the kit: proto, styles, names, snippets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from devstack.shop import DemoShop
from genproto import imagegeneration_pb2
from imagegen.settings import Settings, SettingsError
from imagegen.stores import OBJECT_NAME
from imagegen.styles import STYLES

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "frontend-kit"
GUIDE = (KIT / "README.md").read_text()
INSTALL = (KIT / "scripts" / "install-into-shop.sh").read_text()

# What the shop's demo.proto already has that the addition uses (wire facts of the shop's CartItem).
SHOP_PROTO_HEAD = """syntax = "proto3";
package hipstershop;
message CartItem {
    string product_id = 1;
    int32  quantity = 2;
}
"""
OUR_NAMES = ("GenerateCartImageRequest", "GenerateCartImageResponse", "UploadBackgroundRequest",
             "UploadBackgroundResponse", "GetStatusRequest", "GetStatusResponse", "CancelImageGenerationRequest",
             "ImageVariant", "ListStylesRequest", "ImageStyle", "ListStylesResponse")


def compiled_addition(tmp_path: Path) -> descriptor_pb2.FileDescriptorProto:
    """demo.proto = the shop's CartItem + the kit's addition, compiled by protoc."""
    (tmp_path / "demo.proto").write_text(SHOP_PROTO_HEAD + (KIT / "proto" / "demo.proto.addition").read_text())
    out = tmp_path / "demo.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={tmp_path}",
                    f"--descriptor_set_out={out}", "demo.proto"], check=True, capture_output=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return files.file[0]


def wire(message: descriptor_pb2.DescriptorProto) -> list[tuple]:
    return [(f.name, f.number, f.type, f.label, f.type_name) for f in message.field]


def test_proto_addition_is_wire_identical_to_the_service_proto(tmp_path):
    theirs = compiled_addition(tmp_path)
    ours = descriptor_pb2.FileDescriptorProto()
    imagegeneration_pb2.DESCRIPTOR.CopyToProto(ours)
    their_messages = {m.name: m for m in theirs.message_type}
    our_messages = {m.name: m for m in ours.message_type}
    assert set(their_messages) == {"CartItem", *OUR_NAMES}  # reuses CartItem, defines nothing else
    for name in OUR_NAMES:
        assert wire(their_messages[name]) == wire(our_messages[name]), name

    def methods(file, service_name):
        service = next(s for s in file.service if s.name == service_name)
        return [(m.name, m.input_type, m.output_type) for m in service.method]

    assert methods(theirs, "ImageGenerationService") == methods(ours, "ImageGenerationService")


def cart_page_styles(url: str) -> list[tuple[str, str]]:
    """The style choices the shop's cart page offers: (value, label) of each radio button."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        html = answer.read().decode()
    return re.findall(r'name="cart-image-style" value="([^"]*)"[^>]*>\s*<span>([^<]+)</span>', html)


def test_the_kits_styles_come_from_the_services_list_styles(tmp_path):
    with DemoShop(tmp_path) as shop:
        assert cart_page_styles(shop.url) == [(style.name, style.label) for style in STYLES.values()]


def test_the_kits_page_offers_the_default_style_while_the_service_is_down(tmp_path):
    from devstack.process import free_port

    with DemoShop(tmp_path, service_addr=f"127.0.0.1:{free_port()}") as shop:
        assert cart_page_styles(shop.url) == [("", "Standard")]


def test_kit_image_route_accepts_exactly_the_store_object_names():
    source = (KIT / "cartimage" / "handlers.go").read_text()
    kit_name = re.search(r"objectName = regexp.MustCompile\(`([^`]+)`\)", source).group(1)
    kinds = re.search(r'imageKinds = map\[string\]bool\{([^}]+)\}', source).group(1)
    kit_kinds = "|".join(sorted(re.findall(r'"([a-z]+)"', kinds)))
    assert f"^({kit_kinds})/" + kit_name.lstrip("^") == OBJECT_NAME.pattern.replace("(generated|backgrounds)", "(backgrounds|generated)")


def test_public_base_url_may_be_a_path_on_the_shops_origin():
    assert Settings.from_env({"PUBLIC_BASE_URL": "/cart/image/"}).public_base_url == "/cart/image"
    for bad in ("//evil.example/x", "cart/image", "ftp://x"):
        with pytest.raises(SettingsError, match="PUBLIC_BASE_URL must be an http:// or https:// URL or a path"):
            Settings.from_env({"PUBLIC_BASE_URL": bad})


def test_manifests_point_image_urls_at_the_kits_route():
    default_prefix = re.search(r'c.Prefix = "([^"]+)"', (KIT / "cartimage" / "cartimage.go").read_text()).group(1)
    for manifest in ("kubernetes-manifests/imagegenerationservice.yaml",
                     "kustomize/components/image-generation/imagegenerationservice.yaml"):
        text = (ROOT / manifest).read_text()
        assert re.search(r'- name: PUBLIC_BASE_URL\n\s+value: "' + re.escape(default_prefix) + '"', text), manifest
    assert f"publicBaseUrl: {default_prefix}\n" in (ROOT / "helm-chart" / "values.yaml").read_text()


def test_every_path_the_guides_name_exists():
    named = set(re.findall(r"frontend-kit/([\w./-]+\w)", GUIDE + (ROOT / "README.md").read_text()))
    for row in re.findall(r"^\| (`[^|]+`) \|", GUIDE, re.MULTILINE):  # the guide's table of the kit's files
        named |= {path for path in re.findall(r"`([\w./-]+)`", row) if "/" in path}
    assert len(named) > 8
    for path in named:
        assert (KIT / path.rstrip("/")).exists(), f"the guide names frontend-kit/{path}, which does not exist"


def test_every_function_and_name_the_guide_uses_exists():
    shop_files = (KIT / "_shop" / "imagegen.go").read_text() + (KIT / "_shop" / "imagegen_client.go").read_text()
    partial = (KIT / "templates" / "cart-image.html").read_text()
    assert "func (fe *frontendServer) mountImageGeneration(ctx context.Context, r *mux.Router, log logrus.FieldLogger)" in shop_files
    assert "func imageGenerationPage() *cartimage.PageData" in shop_files
    assert '{{ define "cart_image" }}' in partial
    for variable in ("ENABLE_IMAGE_GENERATION", "IMAGE_GENERATION_SERVICE_ADDR", "IMAGE_GENERATION_IMAGES_URL"):
        assert variable in shop_files and variable in GUIDE
    for route in ('"POST "+p+"/generate"', '"GET "+p+"/status/{id}"', '"POST "+p+"/background"',
                  '"GET "+p+"/images/{kind}/{name}"'):
        assert route in (KIT / "cartimage" / "cartimage.go").read_text()
    # The shop's own names the snippets rely on (read from microservices-demo's src/frontend).
    for shop_name in ("var handler http.Handler = r", '"assistant_enabled": assistantEnabled,', "renderMoney .total_cost"):
        assert shop_name in GUIDE and shop_name in INSTALL


def test_the_install_script_inserts_exactly_the_guides_snippets():
    inserted = [
        "svc.mountImageGeneration(ctx, r, log)",
        '"image_generation":  imageGenerationPage(),',
        '{{ if $.image_generation }}{{ template "cart_image" $.image_generation }}{{ end }}',
    ]
    guide_lines = {line.strip() for line in GUIDE.splitlines()}
    for snippet in inserted:
        assert snippet in guide_lines, snippet
        assert snippet.replace('"', '\\"') in INSTALL or snippet in INSTALL, snippet
    for copied in re.findall(r"^cp (.+) src/frontend/", GUIDE, re.MULTILINE):
        for source in copied.split():
            assert source.replace("frontend-kit/", "") in INSTALL.replace('"$kit"/', "").replace("$kit/", ""), source


def test_kit_generated_go_code_is_current(tmp_path):
    from devstack.shop import go_binary

    env = {**os.environ, "PYTHON": sys.executable,
           "PATH": f"{Path(go_binary()).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([str(KIT / "genproto.sh"), str(tmp_path)], check=True, env=env, capture_output=True, timeout=300)
    committed = KIT / "internal" / "genproto"
    names = sorted(p.name for p in committed.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir()) == ["imagegeneration.pb.go", "imagegeneration_grpc.pb.go"]
    for name in names:
        assert (tmp_path / name).read_text() == (committed / name).read_text(), f"{name} is stale: run make genproto-go"

"""genproto/ is what genproto.sh makes from protos/ today, and matches the brief's contract."""

import filecmp
import subprocess
import sys

from genproto import imagegeneration_pb2 as pb
from tests.service import ROOT


def test_generated_code_is_fresh(tmp_path):
    subprocess.run(["bash", str(ROOT / "genproto.sh"), str(tmp_path)], check=True, env={"PYTHON": sys.executable,
                   "PATH": "/usr/bin:/bin"})
    for name in ("imagegeneration_pb2.py", "imagegeneration_pb2.pyi", "imagegeneration_pb2_grpc.py"):
        assert filecmp.cmp(tmp_path / name, ROOT / "genproto" / name, shallow=False), (
            f"genproto/{name} is stale: run ./genproto.sh"
        )


def _fields(message) -> list[tuple[str, int, int]]:
    return [(f.name, f.number, f.type) for f in message.DESCRIPTOR.fields]


def test_image_generation_messages_match_the_brief():
    T = pb.GenerateCartImageRequest.DESCRIPTOR.fields[0]
    string, int32, message = T.TYPE_STRING, T.TYPE_INT32, T.TYPE_MESSAGE
    assert _fields(pb.GenerateCartImageRequest) == [
        ("user_id", 1, string), ("style_preference", 2, string), ("background_image_url", 3, string),
        ("cart_items", 4, message)]
    assert pb.GenerateCartImageRequest.DESCRIPTOR.fields_by_name["cart_items"].message_type.full_name == (
        "hipstershop.CartItem")
    # The seed's fields keep their numbers; additions take new ones.
    assert _fields(pb.GenerateCartImageResponse) == [
        ("image_url", 1, string), ("generation_id", 2, string), ("status", 3, string), ("error_message", 4, string),
        ("image_variants", 5, message)]
    assert _fields(pb.UploadBackgroundRequest) == [("image_data", 1, string)]
    assert _fields(pb.UploadBackgroundResponse) == [
        ("image_url", 1, string), ("status", 2, string), ("error_message", 3, string)]
    assert _fields(pb.GetStatusRequest) == [("generation_id", 1, string)]
    assert _fields(pb.GetStatusResponse) == [
        ("status", 1, string), ("image_url", 2, string), ("progress", 3, int32), ("error_message", 4, string),
        ("queue_position", 5, int32), ("estimated_seconds", 6, int32), ("image_variants", 7, message)]
    assert _fields(pb.CancelImageGenerationRequest) == [("generation_id", 1, string)]
    assert _fields(pb.ImageVariant) == [("width", 1, int32), ("url", 2, string), ("mime_type", 3, string)]
    assert _fields(pb.ImageStyle) == [("name", 1, string), ("label", 2, string)]
    assert _fields(pb.ListStylesResponse) == [("styles", 1, message)]


def test_service_methods_and_paths():
    service = pb.DESCRIPTOR.services_by_name["ImageGenerationService"]
    assert service.full_name == "hipstershop.ImageGenerationService"
    assert {m.name: (m.input_type.name, m.output_type.name) for m in service.methods} == {
        "GenerateCartImage": ("GenerateCartImageRequest", "GenerateCartImageResponse"),
        "UploadBackground": ("UploadBackgroundRequest", "UploadBackgroundResponse"),
        "GetImageGenerationStatus": ("GetStatusRequest", "GetStatusResponse"),
        "CancelImageGeneration": ("CancelImageGenerationRequest", "GetStatusResponse"),
        "ListStyles": ("ListStylesRequest", "ListStylesResponse"),
    }


def test_shop_messages_are_wire_identical():
    T = pb.Product.DESCRIPTOR.fields[0]
    s, i32, i64, msg = T.TYPE_STRING, T.TYPE_INT32, T.TYPE_INT64, T.TYPE_MESSAGE
    assert _fields(pb.CartItem) == [("product_id", 1, s), ("quantity", 2, i32)]
    assert _fields(pb.Cart) == [("user_id", 1, s), ("items", 2, msg)]
    assert _fields(pb.GetCartRequest) == [("user_id", 1, s)]
    assert _fields(pb.AddItemRequest) == [("user_id", 1, s), ("item", 2, msg)]
    assert _fields(pb.EmptyCartRequest) == [("user_id", 1, s)]
    assert _fields(pb.Money) == [("currency_code", 1, s), ("units", 2, i64), ("nanos", 3, i32)]
    assert _fields(pb.Product) == [("id", 1, s), ("name", 2, s), ("description", 3, s), ("picture", 4, s),
                                   ("price_usd", 5, msg), ("categories", 6, s)]
    assert _fields(pb.GetProductRequest) == [("id", 1, s)]
    assert _fields(pb.ListProductsResponse) == [("products", 1, msg)]
    assert _fields(pb.SearchProductsRequest) == [("query", 1, s)]
    assert _fields(pb.SearchProductsResponse) == [("results", 1, msg)]
    cart = pb.DESCRIPTOR.services_by_name["CartService"]
    catalog = pb.DESCRIPTOR.services_by_name["ProductCatalogService"]
    assert [m.name for m in cart.methods] == ["AddItem", "GetCart", "EmptyCart"]
    assert [m.name for m in catalog.methods] == ["ListProducts", "GetProduct", "SearchProducts"]

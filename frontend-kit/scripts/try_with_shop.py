"""Proves the install guide on Online Boutique's real frontend (not part of the tests: it needs the shop).

    frontend-kit/scripts/install-into-shop.sh /tmp/shop          # a fresh copy of microservices-demo
    (cd /tmp/shop/src/frontend && go build -o frontend .)
    .venv/bin/python frontend-kit/scripts/try_with_shop.py /tmp/shop/src/frontend

Starts the dev stack and the service (PUBLIC_BASE_URL=/cart/image, as the manifests set it), runs the
shop's frontend binary with ENABLE_IMAGE_GENERATION=true, fills the session's cart, and drives the kit's
routes through the frontend: generate, status until completed, the image through the frontend, and
"Download picture" (the same bytes, as an attachment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from devstack.process import ServiceProcess, free_port, wait_for  # noqa: E402
from devstack.servers import start_devstack  # noqa: E402


def call(url: str, session: str, body: bytes | None = None, header: str = "Content-Type") -> tuple[int, str, bytes]:
    """(status, the named response header, body) of a request in the shopper's session."""
    request = urllib.request.Request(url, data=body, headers={"Cookie": f"shop_session-id={session}",
                                                                  "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers.get(header, ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get(header, ""), error.read()
    except urllib.error.URLError:
        return 0, "", b""


# Executes the shop's own "cart" template with the feature on and off (a Go test run inside src/frontend).
RENDER_TEST = """package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/GoogleCloudPlatform/microservices-demo/src/frontend/cartimage"
	pb "github.com/GoogleCloudPlatform/microservices-demo/src/frontend/genproto"
)

func TestCartImagePartialRenders(t *testing.T) {
	r := httptest.NewRequest("GET", "/cart", nil)
	money := &pb.Money{CurrencyCode: "USD", Units: 1}
	render := func() string {
		var out bytes.Buffer
		err := templates.ExecuteTemplate(&out, "cart", injectCommonTemplateData(r, map[string]interface{}{
			"cart_size": 1, "shipping_cost": money, "total_cost": money, "expiration_years": []int{2026},
			"items": []interface{}{map[string]interface{}{"Item": &pb.Product{Id: "X", Name: "Mug"}, "Quantity": 1, "Price": money}},
		}))
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	imageGeneration = &cartimage.Config{Prefix: "/cart/image"}
	if html := render(); !strings.Contains(html, "Generate image") || !strings.Contains(html, "/static/js/cart-image.js") {
		t.Errorf("feature on: the cart page lacks the partial")
	}
	imageGeneration = nil
	if strings.Contains(render(), "Generate image") {
		t.Errorf("feature off: the partial is there")
	}
}
"""


def check_template(frontend: Path) -> bool:
    test_file = frontend / "zz_cartimage_render_test.go"
    test_file.write_text(RENDER_TEST)
    try:
        run = subprocess.run(["go", "test", "-run", "TestCartImagePartialRenders", "."], cwd=frontend,
                             capture_output=True, text=True)
    finally:
        test_file.unlink()
    print("cart template:", run.stdout.strip() or run.stderr.strip())
    return run.returncode == 0


def feature_off_answers_404(frontend: Path, env: dict[str, str]) -> bool:
    """Without ENABLE_IMAGE_GENERATION and the address, the frontend starts as before and mounts nothing."""
    shop = subprocess.Popen([str(frontend / "frontend")], cwd=frontend, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{env['PORT']}"
        wait_for(lambda: call(base + "/_healthz", "s")[0] == 200, 30, what="the frontend without the feature")
        code = call(base + "/cart/image/generate", "s", b"{}")[0]
        print("feature off: healthz 200, /cart/image/generate", code)
        return code == 404
    finally:
        shop.terminate()
        shop.wait(10)


def main(frontend_dir: str) -> int:
    frontend = Path(frontend_dir).resolve()
    rendered = check_template(frontend)
    session = "6b9d1f9e-4c1e-4d3b-9d6a-0f6c2b9a7e11"
    with tempfile.TemporaryDirectory() as tmp, start_devstack(draw_pictures=True) as stack:
        service = ServiceProcess({"CART_SERVICE_ADDR": stack.cart_addr, "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr,
                                  "PRODUCT_IMAGE_BASE_URL": stack.picture_base_url, "IMAGE_GENERATOR": "collage",
                                  "PUBLIC_BASE_URL": "/cart/image"}, Path(tmp))
        service.wait_serving()
        port = free_port()
        unused = "127.0.0.1:9"
        env = {**os.environ, "PORT": str(port), "LISTEN_ADDR": "127.0.0.1",
               "PRODUCT_CATALOG_SERVICE_ADDR": stack.catalog_addr, "CART_SERVICE_ADDR": stack.cart_addr,
               "CURRENCY_SERVICE_ADDR": unused, "RECOMMENDATION_SERVICE_ADDR": unused, "CHECKOUT_SERVICE_ADDR": unused,
               "SHIPPING_SERVICE_ADDR": unused, "AD_SERVICE_ADDR": unused, "SHOPPING_ASSISTANT_SERVICE_ADDR": unused,
               "ENABLE_IMAGE_GENERATION": "true", "IMAGE_GENERATION_SERVICE_ADDR": f"127.0.0.1:{service.port}",
               "IMAGE_GENERATION_IMAGES_URL": service.http_base}
        switched_off = feature_off_answers_404(frontend, {k: v for k, v in env.items()
                                                          if not k.startswith(("ENABLE_IMAGE", "IMAGE_GENERATION"))})
        shop = subprocess.Popen([str(frontend / "frontend")], cwd=frontend, env=env,
                                stdout=open(Path(tmp) / "frontend.log", "wb"), stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: call(base + "/_healthz", session)[0] == 200, 30, what="the frontend")
            print("empty cart:", call(base + "/cart/image/generate", session, b'{"style": "vintage"}'))
            stack.add_to_cart(session, "OLJCESPC7Z", 2)
            stack.add_to_cart(session, "6E92ZMYYFZ", 1)
            code, _, body = call(base + "/cart/image/generate", session, b'{"style": "vintage"}')
            print("generate:", code, body)
            generation = json.loads(body)["id"]
            status = wait_for(lambda: (lambda s: s if s["status"] != "processing" else None)(
                json.loads(call(f"{base}/cart/image/status/{generation}", session)[2])), 60, 0.5, "the picture")
            print("status:", status)
            code, content_type, image = call(base + status["image_url"], session)
            print("image through the frontend:", code, content_type, len(image), "bytes", image[:8])
            download = call(f"{base}/cart/image/download/{generation}?style=vintage", session,
                            header="Content-Disposition")
            print("download:", download[0], download[1], len(download[2]), "bytes, same as the image:",
                  download[2] == image)
            print("unknown id:", call(base + "/cart/image/status/nosuchid", session))
            ok = (code == 200 and content_type == "image/jpeg" and image.startswith(b"\xff\xd8")
                  and download[:2] == (200, "attachment; filename=my-cart-vintage.jpg") and download[2] == image)
        finally:
            shop.terminate()
            shop.wait(10)
            service.terminate()
        print((Path(tmp) / "frontend.log").read_text()[-1500:])
    ok = ok and rendered and switched_off
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

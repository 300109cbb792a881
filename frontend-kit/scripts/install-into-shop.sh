#!/usr/bin/env bash
# Installs the kit into a checkout of Online Boutique, the whole of frontend-kit/README.md's "Install into
# the shop", genproto included; runs from any directory:
#   frontend-kit/scripts/install-into-shop.sh PATH/TO/microservices-demo
# Needs Go (1.25 or newer) and, for protoc, a Python with grpcio-tools 1.85.1 (the repository's .venv by
# default: `make .venv/.installed`; PYTHON=... picks another) or PROTOC=/usr/bin/protoc (Debian's
# protobuf-compiler 3.21.12). The protoc plugins are built from scripts/shop-tools/go.mod at the versions
# that generated the shop's committed code (protoc-gen-go v1.34.2, protoc-gen-go-grpc v1.5.1), so
# genproto changes it only by the addition (and the protoc version line). Run it once, on a fresh checkout.
set -euo pipefail
kit="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shop="$(cd "${1:?usage: $0 PATH/TO/microservices-demo}" && pwd)"
frontend="$shop/src/frontend"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

fail() { echo "install-into-shop: $*" >&2; exit 1; }
[ -f "$shop/protos/demo.proto" ] && [ -x "$frontend/genproto.sh" ] || fail "$shop is not a microservices-demo checkout (no protos/demo.proto or src/frontend/genproto.sh)"
grep -q 'service ImageGenerationService' "$shop/protos/demo.proto" && fail "$shop already has the kit's proto addition: run on a fresh checkout"
"$GO" version >/dev/null 2>&1 || fail "Go not found (set GO=/path/to/go)"

# The generators, on a PATH of their own that the shop's genproto.sh finds first.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
(cd "$kit/scripts/shop-tools" &&
  "$GO" build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go &&
  "$GO" build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc)
if [ -n "${PROTOC:-}" ]; then
  ln -s "$(command -v "$PROTOC")" "$bin/protoc"
else
  python="${PYTHON:-$kit/../.venv/bin/python}"
  [ -x "$python" ] || python="$(command -v python3)"
  "$python" -c 'import grpc_tools.protoc' 2>/dev/null ||
    fail "no protoc: $python lacks grpcio-tools (run \`make .venv/.installed\` in the kit's repository, or set PYTHON or PROTOC)"
  printf '#!/bin/sh\nexec "%s" -m grpc_tools.protoc "$@"\n' "$python" > "$bin/protoc"
  chmod +x "$bin/protoc"
fi
echo "protoc: $("$bin/protoc" --version)"

# 1. The proto addition, then the shop's own genproto.sh with the generators above.
cat "$kit/proto/demo.proto.addition" >> "$shop/protos/demo.proto"
(cd "$frontend" && PATH="$bin:$PATH" ./genproto.sh)

# 2. The kit's Go package, the adapter and wiring, the partial, script and styles.
mkdir -p "$frontend/cartimage" "$frontend/static/js" "$frontend/static/styles"
cp "$kit"/cartimage/*.go "$frontend/cartimage/"
cp "$kit/_shop/imagegen.go" "$kit/_shop/imagegen_client.go" "$frontend/"
cp "$kit/templates/cart-image.html" "$frontend/templates/"
cp "$kit/static/js/cart-image.js" "$frontend/static/js/"
cp "$kit/static/styles/cart-image.css" "$frontend/static/styles/"

# 3. main.go: mount the routes (a no-op unless ENABLE_IMAGE_GENERATION=true and the address is set).
grep -q '^	var handler http.Handler = r$' "$frontend/main.go" || fail "main.go has no 'var handler http.Handler = r' line"
sed -i 's|^	var handler http.Handler = r$|	svc.mountImageGeneration(ctx, r, log)\n\n&|' "$frontend/main.go"

# 4. handlers.go: give every template the partial's data (nil while the feature is off).
grep -q '"assistant_enabled": assistantEnabled,' "$frontend/handlers.go" || fail "handlers.go has no assistant_enabled entry"
sed -i 's|^\(\s*\)"assistant_enabled": assistantEnabled,$|&\n\1"image_generation":  imageGenerationPage(),|' "$frontend/handlers.go"

# 5. cart.html: the partial below the cart's total.
grep -q 'renderMoney .total_cost' "$frontend/templates/cart.html" || fail "cart.html has no total_cost row"
awk '{ print } /renderMoney .total_cost/ { getline; print; print "                    {{ if $.image_generation }}{{ template \"cart_image\" $.image_generation }}{{ end }}" }' \
  "$frontend/templates/cart.html" > "$frontend/templates/cart.html.new"
mv "$frontend/templates/cart.html.new" "$frontend/templates/cart.html"

# 6. It builds.
(cd "$frontend" && "$GO" build -o /dev/null .)
echo "installed into $frontend (go build passed)"

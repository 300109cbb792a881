#!/usr/bin/env bash
# Applies the kit's install guide (frontend-kit/README.md, "Install into the shop") to a checkout of
# Online Boutique: scripts/install-into-shop.sh PATH/TO/microservices-demo
# Every step is one of the guide's; run it on a fresh checkout (it is not meant to run twice).
set -euo pipefail
kit="$(cd "$(dirname "$0")/.." && pwd)"
shop="$(cd "${1:?usage: $0 PATH/TO/microservices-demo}" && pwd)"
frontend="$shop/src/frontend"

# 1. The proto addition, then the shop's own genproto.sh (protoc with protoc-gen-go and protoc-gen-go-grpc).
cat "$kit/proto/demo.proto.addition" >> "$shop/protos/demo.proto"

# 2. The kit's Go package, the adapter and wiring, the partial, script and styles.
mkdir -p "$frontend/cartimage" "$frontend/static/js" "$frontend/static/styles"
cp "$kit"/cartimage/*.go "$frontend/cartimage/"
cp "$kit/_shop/imagegen.go" "$kit/_shop/imagegen_client.go" "$frontend/"
cp "$kit/templates/cart-image.html" "$frontend/templates/"
cp "$kit/static/js/cart-image.js" "$frontend/static/js/"
cp "$kit/static/styles/cart-image.css" "$frontend/static/styles/"

# 3. main.go: mount the routes (a no-op unless ENABLE_IMAGE_GENERATION=true and the address is set).
grep -q '^	var handler http.Handler = r$' "$frontend/main.go"
sed -i 's|^	var handler http.Handler = r$|	svc.mountImageGeneration(ctx, r, log)\n\n&|' "$frontend/main.go"

# 4. handlers.go: give every template the partial's data (nil while the feature is off).
grep -q '"assistant_enabled": assistantEnabled,' "$frontend/handlers.go"
sed -i 's|^\(\s*\)"assistant_enabled": assistantEnabled,$|&\n\1"image_generation":  imageGenerationPage(),|' "$frontend/handlers.go"

# 5. cart.html: the partial below the cart's total.
grep -q 'renderMoney .total_cost' "$frontend/templates/cart.html"
awk '{ print } /renderMoney .total_cost/ { getline; print; print "                    {{ if $.image_generation }}{{ template \"cart_image\" $.image_generation }}{{ end }}" }' \
  "$frontend/templates/cart.html" > "$frontend/templates/cart.html.new"
mv "$frontend/templates/cart.html.new" "$frontend/templates/cart.html"

echo "installed; now run ./genproto.sh in $frontend, then go build"

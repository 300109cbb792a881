// Package frontendkit holds the page part of the integration kit: the cart_image template partial
// (templates/) and its script and styles (static/), as the shop's frontend lays them out.
package frontendkit

import "embed"

// Files are templates/cart-image.html, static/js/cart-image.js and static/styles/cart-image.css.
//
//go:embed templates static
var Files embed.FS

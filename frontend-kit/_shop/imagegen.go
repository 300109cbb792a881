// Copy into the shop's src/frontend (see the kit's README): "Generate image" on the cart page,
// switched on by ENABLE_IMAGE_GENERATION=true with IMAGE_GENERATION_SERVICE_ADDR set.
package main

import (
	"context"
	"net"
	"os"
	"strings"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/GoogleCloudPlatform/microservices-demo/src/frontend/cartimage"
	pb "github.com/GoogleCloudPlatform/microservices-demo/src/frontend/genproto"
)

// imageGeneration is the feature's configuration; nil while it is switched off.
var imageGeneration *cartimage.Config

// mountImageGeneration connects to ImageGenerationService and adds the routes under /cart/image/,
// only when ENABLE_IMAGE_GENERATION is "true" and IMAGE_GENERATION_SERVICE_ADDR is set, so a shop
// deployed without the service starts exactly as before.
func (fe *frontendServer) mountImageGeneration(ctx context.Context, r *mux.Router, log logrus.FieldLogger) {
	addr := os.Getenv("IMAGE_GENERATION_SERVICE_ADDR")
	if addr == "" || strings.ToLower(os.Getenv("ENABLE_IMAGE_GENERATION")) != "true" {
		return
	}
	var conn *grpc.ClientConn
	mustConnGRPC(ctx, &conn, addr)
	cfg := cartimage.Config{
		Service:     imageGenerationClient{client: pb.NewImageGenerationServiceClient(conn)},
		SessionUser: sessionID,
		Prefix:      baseUrl + "/cart/image",
		ImagesURL:   imagesURL(addr),
		Logf:        log.Warnf,
	}
	r.PathPrefix(cfg.Prefix + "/").Handler(cartimage.Handler(cfg))
	imageGeneration = &cfg
	log.Infof("image generation enabled: %s", addr)
}

// imagesURL is the service's HTTP side port, where its local store's images are:
// IMAGE_GENERATION_IMAGES_URL, or port 8081 of the service's host.
func imagesURL(addr string) string {
	if u := os.Getenv("IMAGE_GENERATION_IMAGES_URL"); u != "" {
		return u
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return "http://" + net.JoinHostPort(host, "8081")
}

// imageGenerationPage is the data of the cart_image partial; nil (the partial is left out) while off.
func imageGenerationPage() *cartimage.PageData {
	if imageGeneration == nil {
		return nil
	}
	page := imageGeneration.Page(baseUrl + "/static")
	return &page
}

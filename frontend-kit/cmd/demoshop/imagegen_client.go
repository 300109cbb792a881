// The same adapter as _shop/imagegen_client.go (a test keeps them equal), on the kit's generated code:
// adapts the generated ImageGenerationService client to cartimage.Service.
package main

import (
	"context"

	"imagegenservice/frontend-kit/cartimage"
	pb "imagegenservice/frontend-kit/internal/genproto"
)

// imageGenerationClient calls ImageGenerationService with a generated gRPC client.
type imageGenerationClient struct {
	client pb.ImageGenerationServiceClient
}

func (c imageGenerationClient) GenerateCartImage(ctx context.Context, userID, style, backgroundURL string) (cartimage.Generation, error) {
	resp, err := c.client.GenerateCartImage(ctx, &pb.GenerateCartImageRequest{
		UserId:             userID,
		StylePreference:    style,
		BackgroundImageUrl: backgroundURL,
	})
	if err != nil {
		return cartimage.Generation{}, err
	}
	return cartimage.Generation{ID: resp.GetGenerationId(), Status: resp.GetStatus(), ImageURL: resp.GetImageUrl(),
		Variants: variants(resp.GetImageVariants())}, nil
}

func (c imageGenerationClient) GetImageGenerationStatus(ctx context.Context, generationID string) (cartimage.Status, error) {
	resp, err := c.client.GetImageGenerationStatus(ctx, &pb.GetStatusRequest{GenerationId: generationID})
	if err != nil {
		return cartimage.Status{}, err
	}
	return statusOf(resp), nil
}

func (c imageGenerationClient) CancelImageGeneration(ctx context.Context, generationID string) (cartimage.Status, error) {
	resp, err := c.client.CancelImageGeneration(ctx, &pb.CancelImageGenerationRequest{GenerationId: generationID})
	if err != nil {
		return cartimage.Status{}, err
	}
	return statusOf(resp), nil
}

func statusOf(resp *pb.GetStatusResponse) cartimage.Status {
	return cartimage.Status{
		Status:           resp.GetStatus(),
		Progress:         int(resp.GetProgress()),
		ImageURL:         resp.GetImageUrl(),
		Error:            resp.GetErrorMessage(),
		Variants:         variants(resp.GetImageVariants()),
		QueuePosition:    int(resp.GetQueuePosition()),
		EstimatedSeconds: int(resp.GetEstimatedSeconds()),
	}
}

func variants(list []*pb.ImageVariant) []cartimage.Variant {
	out := make([]cartimage.Variant, 0, len(list))
	for _, v := range list {
		out = append(out, cartimage.Variant{Width: int(v.GetWidth()), URL: v.GetUrl(), MimeType: v.GetMimeType()})
	}
	return out
}

func (c imageGenerationClient) UploadBackground(ctx context.Context, imageData string) (string, error) {
	resp, err := c.client.UploadBackground(ctx, &pb.UploadBackgroundRequest{ImageData: imageData})
	if err != nil {
		return "", err
	}
	return resp.GetImageUrl(), nil
}

func (c imageGenerationClient) ListStyles(ctx context.Context) ([]cartimage.Style, error) {
	resp, err := c.client.ListStyles(ctx, &pb.ListStylesRequest{})
	if err != nil {
		return nil, err
	}
	styles := make([]cartimage.Style, 0, len(resp.GetStyles()))
	for _, s := range resp.GetStyles() {
		styles = append(styles, cartimage.Style{Name: s.GetName(), Label: s.GetLabel()})
	}
	return styles, nil
}

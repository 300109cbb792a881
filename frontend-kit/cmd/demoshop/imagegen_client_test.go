package main

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"imagegenservice/frontend-kit/cartimage"
	pb "imagegenservice/frontend-kit/internal/genproto"
)

// imageService answers over real gRPC on loopback, as ImageGenerationService would.
type imageService struct {
	pb.UnimplementedImageGenerationServiceServer
	got *pb.GenerateCartImageRequest
}

func (s *imageService) GenerateCartImage(_ context.Context, req *pb.GenerateCartImageRequest) (*pb.GenerateCartImageResponse, error) {
	s.got = req
	if req.GetStylePreference() == "cubist" {
		return nil, status.Error(codes.InvalidArgument, "style_preference: unknown style 'cubist'")
	}
	return &pb.GenerateCartImageResponse{GenerationId: "g1", Status: "processing"}, nil
}

func (s *imageService) GetImageGenerationStatus(_ context.Context, req *pb.GetStatusRequest) (*pb.GetStatusResponse, error) {
	return &pb.GetStatusResponse{Status: "completed", Progress: 100, ImageUrl: "/cart/image/images/generated/" + req.GetGenerationId() + ".png"}, nil
}

func (s *imageService) CancelImageGeneration(_ context.Context, req *pb.CancelImageGenerationRequest) (*pb.GetStatusResponse, error) {
	if req.GetGenerationId() != "queued" {
		return nil, status.Error(codes.NotFound, "no generation with this id")
	}
	return &pb.GetStatusResponse{Status: "processing", QueuePosition: 12, EstimatedSeconds: 40,
		ImageVariants: []*pb.ImageVariant{{Width: 512, Url: "/v/x-w512.webp", MimeType: "image/webp"}}}, nil
}

func (s *imageService) UploadBackground(_ context.Context, req *pb.UploadBackgroundRequest) (*pb.UploadBackgroundResponse, error) {
	return &pb.UploadBackgroundResponse{Status: "success", ImageUrl: "/bg/" + req.GetImageData()}, nil
}

func TestAdapterOverGRPC(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	fake := &imageService{}
	pb.RegisterImageGenerationServiceServer(server, fake)
	go server.Serve(listener)
	defer server.Stop()
	conn, err := grpc.NewClient(listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := imageGenerationClient{client: pb.NewImageGenerationServiceClient(conn)}
	ctx := context.Background()

	gen, err := client.GenerateCartImage(ctx, "u1", "vintage", "/bg/x")
	if err != nil || gen.ID != "g1" || gen.Status != "processing" {
		t.Fatalf("generate = %+v, %v", gen, err)
	}
	if fake.got.GetUserId() != "u1" || fake.got.GetStylePreference() != "vintage" || fake.got.GetBackgroundImageUrl() != "/bg/x" {
		t.Errorf("service got %v", fake.got)
	}
	if _, err := client.GenerateCartImage(ctx, "u1", "cubist", ""); status.Code(err) != codes.InvalidArgument {
		t.Errorf("error code = %v, want InvalidArgument kept for the handlers", status.Code(err))
	}
	st, err := client.GetImageGenerationStatus(ctx, "g1")
	if err != nil || st.Status != "completed" || st.Progress != 100 || st.ImageURL != "/cart/image/images/generated/g1.png" {
		t.Errorf("status = %+v, %v", st, err)
	}
	st, err = client.CancelImageGeneration(ctx, "queued")
	want := cartimage.Variant{Width: 512, URL: "/v/x-w512.webp", MimeType: "image/webp"}
	if err != nil || st.QueuePosition != 12 || st.EstimatedSeconds != 40 || len(st.Variants) != 1 || st.Variants[0] != want {
		t.Errorf("cancel = %+v, %v", st, err)
	}
	if _, err := client.CancelImageGeneration(ctx, "other"); status.Code(err) != codes.NotFound {
		t.Errorf("cancel error code = %v, want NotFound kept for the handlers", status.Code(err))
	}
	url, err := client.UploadBackground(ctx, "QUJD")
	if err != nil || url != "/bg/QUJD" {
		t.Errorf("upload = %q, %v", url, err)
	}
}

// The shop's copy of the adapter (_shop/imagegen_client.go) is this file with the shop's import paths.
func TestAdapterIsTheShopsCopy(t *testing.T) {
	read := func(path string) string {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		// Past the leading comment, the files must be the same but for the two import paths.
		return text[strings.Index(text, "package main"):]
	}
	shop := read("../../_shop/imagegen_client.go")
	ours := read("imagegen_client.go")
	shop = strings.NewReplacer(
		"github.com/GoogleCloudPlatform/microservices-demo/src/frontend/cartimage", "imagegenservice/frontend-kit/cartimage",
		"github.com/GoogleCloudPlatform/microservices-demo/src/frontend/genproto", "imagegenservice/frontend-kit/internal/genproto",
	).Replace(shop)
	if shop != ours {
		t.Errorf("cmd/demoshop/imagegen_client.go and _shop/imagegen_client.go differ beyond their import paths")
	}
}

// Command demoshop serves a cart page that looks like Online Boutique's, with the kit's "Generate
// image" feature, against a CartService, a ProductCatalogService and ImageGenerationService.
// It is what `make shop` runs (through devstack/shop.py) and what the browser tests open.
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	frontendkit "imagegenservice/frontend-kit"
	"imagegenservice/frontend-kit/cartimage"
	pb "imagegenservice/frontend-kit/internal/genproto"
)

//go:embed templates static
var shopFiles embed.FS

const sessionCookie = "shop_session-id" // the shop's cookie name

// sampleCart is put into a new session's cart, so a newcomer has something to picture.
var sampleCart = []struct {
	id       string
	quantity int32
}{{"OLJCESPC7Z", 1}, {"6E92ZMYYFZ", 2}, {"0PUK6V6EV0", 1}, {"9SIQT8TOJO", 3}}

type shop struct {
	cart        pb.CartServiceClient
	catalog     pb.ProductCatalogServiceClient
	pictureBase string
	templates   *template.Template
	imageConfig cartimage.Config
}

type (
	ctxKeySession    struct{}
	ctxKeyNewSession struct{}
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8088", "address to serve the shop on")
	service := flag.String("service", "127.0.0.1:8080", "ImageGenerationService gRPC address")
	images := flag.String("images", "http://127.0.0.1:8081", "ImageGenerationService HTTP side port (local store images)")
	cartAddr := flag.String("cart", "127.0.0.1:7070", "CartService address")
	catalogAddr := flag.String("catalog", "127.0.0.1:3550", "ProductCatalogService address")
	pictures := flag.String("pictures", "http://127.0.0.1:8090", "base URL of product pictures")
	flag.Parse()

	s := &shop{
		cart:        pb.NewCartServiceClient(dial(*cartAddr)),
		catalog:     pb.NewProductCatalogServiceClient(dial(*catalogAddr)),
		pictureBase: strings.TrimRight(*pictures, "/"),
	}
	s.imageConfig = cartimage.Config{
		Service:     imageGenerationClient{client: pb.NewImageGenerationServiceClient(dial(*service))},
		SessionUser: sessionID,
		Prefix:      "/cart/image",
		ImagesURL:   *images,
		Logf:        log.Printf,
	}
	s.templates = template.Must(template.New("").Funcs(template.FuncMap{"money": money}).
		ParseFS(shopFiles, "templates/*.html"))
	template.Must(s.templates.ParseFS(frontendkit.Files, "templates/*.html"))

	kitStatic, _ := fs.Sub(frontendkit.Files, "static")
	ownStatic, _ := fs.Sub(shopFiles, "static")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/cart", http.StatusFound) })
	mux.HandleFunc("GET /cart", s.viewCart)
	mux.HandleFunc("POST /cart/empty", s.emptyCart)
	mux.Handle("/cart/image/", cartimage.Handler(s.imageConfig))
	mux.Handle("GET /static/shop/", http.StripPrefix("/static/shop/", http.FileServerFS(ownStatic)))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(kitStatic)))
	mux.HandleFunc("GET /_healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("demoshop: %v", err)
	}
	server := &http.Server{Handler: withSession(mux), ReadHeaderTimeout: 10 * time.Second}
	// The launcher reads this line to learn the address (the port may have been 0).
	fmt.Printf("demoshop listening on http://%s/cart\n", listener.Addr())
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		server.Shutdown(ctx)
	}()
	if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("demoshop: %v", err)
	}
}

func dial(addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("demoshop: %s: %v", addr, err)
	}
	return conn
}

// withSession gives every visitor a session id cookie, as the shop's ensureSessionID does.
func withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if c, err := r.Cookie(sessionCookie); err == nil && len(c.Value) == 32 {
			id = c.Value
		} else {
			raw := make([]byte, 16)
			rand.Read(raw)
			id = hex.EncodeToString(raw)
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			r = r.WithContext(context.WithValue(r.Context(), ctxKeyNewSession{}, true))
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKeySession{}, id)))
	})
}

func sessionID(r *http.Request) string {
	id, _ := r.Context().Value(ctxKeySession{}).(string)
	return id
}

type cartLine struct {
	Product  *pb.Product
	Picture  string
	Quantity int32
	Price    *pb.Money
}

func (s *shop) viewCart(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	user := sessionID(r)
	if isNew, _ := r.Context().Value(ctxKeyNewSession{}).(bool); isNew {
		for _, item := range sampleCart {
			if _, err := s.cart.AddItem(ctx, &pb.AddItemRequest{UserId: user, Item: &pb.CartItem{ProductId: item.id, Quantity: item.quantity}}); err != nil {
				s.fail(w, "could not fill the cart", err)
				return
			}
		}
	}
	cart, err := s.cart.GetCart(ctx, &pb.GetCartRequest{UserId: user})
	if err != nil {
		s.fail(w, "could not retrieve the cart", err)
		return
	}
	items := cart.GetItems()
	sort.Slice(items, func(i, j int) bool { return items[i].GetProductId() < items[j].GetProductId() })
	var lines []cartLine
	var totalNanos, count int64
	for _, item := range items {
		product, err := s.catalog.GetProduct(ctx, &pb.GetProductRequest{Id: item.GetProductId()})
		if err != nil {
			s.fail(w, "could not retrieve product "+item.GetProductId(), err)
			return
		}
		price := product.GetPriceUsd()
		lineNanos := (price.GetUnits()*1e9 + int64(price.GetNanos())) * int64(item.GetQuantity())
		totalNanos += lineNanos
		count += int64(item.GetQuantity())
		lines = append(lines, cartLine{
			Product:  product,
			Picture:  s.pictureBase + product.GetPicture(),
			Quantity: item.GetQuantity(),
			Price:    &pb.Money{CurrencyCode: "USD", Units: lineNanos / 1e9, Nanos: int32(lineNanos % 1e9)},
		})
	}
	shipping := &pb.Money{CurrencyCode: "USD", Units: 8, Nanos: 990000000}
	totalNanos += shipping.GetUnits()*1e9 + int64(shipping.GetNanos())
	page := s.imageConfig.Page("/static")
	err = s.templates.ExecuteTemplate(w, "cart", map[string]any{
		"items":            lines,
		"cart_size":        count,
		"shipping_cost":    shipping,
		"total_cost":       &pb.Money{CurrencyCode: "USD", Units: totalNanos / 1e9, Nanos: int32(totalNanos % 1e9)},
		"image_generation": &page,
	})
	if err != nil {
		log.Printf("demoshop: rendering the cart: %v", err)
	}
}

func (s *shop) emptyCart(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.cart.EmptyCart(ctx, &pb.EmptyCartRequest{UserId: sessionID(r)}); err != nil {
		s.fail(w, "could not empty the cart", err)
		return
	}
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}

func (s *shop) fail(w http.ResponseWriter, what string, err error) {
	log.Printf("demoshop: %s: %v", what, err)
	http.Error(w, what, http.StatusInternalServerError)
}

// money renders USD amounts as the shop does: $19.99.
func money(m *pb.Money) string {
	return fmt.Sprintf("$%d.%02d", m.GetUnits(), m.GetNanos()/10000000)
}

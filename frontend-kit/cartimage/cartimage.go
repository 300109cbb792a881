// Package cartimage adds "Generate image" to Online Boutique's cart: HTTP handlers that the shop's
// frontend mounts under /cart/image/, calling ImageGenerationService through a small interface.
//
// The package depends only on the standard library, grpc's status and genproto's errdetails (both in
// every grpc module graph), so a shop copies it into its frontend as it is; the shop's own generated
// client is adapted to Service in one file of its own (see _shop/imagegen_client.go), because a frontend binary can hold only one hipstershop.CartItem.
package cartimage

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Service is what the handlers need from ImageGenerationService. Errors are gRPC status errors.
type Service interface {
	// GenerateCartImage starts a picture of the user's cart (read by the service from CartService).
	GenerateCartImage(ctx context.Context, userID, style, backgroundURL string) (Generation, error)
	// GetImageGenerationStatus reports a generation's progress.
	GetImageGenerationStatus(ctx context.Context, generationID string) (Status, error)
	// UploadBackground stores a background (plain base64 or a data: URL) and returns its URL.
	UploadBackground(ctx context.Context, imageData string) (imageURL string, err error)
	// ListStyles returns the service's styles, in its order; the first is its default.
	ListStyles(ctx context.Context) ([]Style, error)
	// CancelImageGeneration stops a generation that has not started drawing and reports its status.
	CancelImageGeneration(ctx context.Context, generationID string) (Status, error)
}

// Generation is the service's answer to GenerateCartImage.
type Generation struct {
	ID       string
	Status   string // "processing" or "completed"
	ImageURL string
	Variants []Variant // smaller copies of ImageURL, narrowest first (a cached answer's)
}

// Status is the service's answer to GetImageGenerationStatus.
type Status struct {
	Status   string // "processing", "completed", "failed" or "not_found"
	Progress int
	ImageURL string // the full picture (the download)
	Error    string
	Variants []Variant // smaller copies of ImageURL, narrowest first
	// QueuePosition is the generation's place in the shop-wide queue (1 = next), 0 when not queued.
	QueuePosition int
	// EstimatedSeconds is the service's estimate of the time left, 0 when it has none.
	EstimatedSeconds int
}

// Variant is a smaller copy of a finished picture, for pages that show it smaller.
type Variant struct {
	Width    int    `json:"width"`
	URL      string `json:"url"`
	MimeType string `json:"mime_type"`
}

// Style is one look the shopper can pick, as the service's ListStyles answers it.
type Style struct {
	Name  string
	Label string
}

// FallbackStyles is what the page offers while the service has never answered ListStyles: its default.
var FallbackStyles = []Style{{Name: "", Label: "Standard"}}

const (
	stylesTTL   = 5 * time.Minute  // the service's styles change with a release, not while it runs
	stylesRetry = 10 * time.Second // after a failed ListStyles, pages use what is known for this long
	stylesWait  = 2 * time.Second  // a page render waits at most this long for ListStyles
)

// styleCache holds the styles last read with ListStyles; one fetch at a time, never blocking a render twice.
type styleCache struct {
	mu       sync.Mutex
	styles   []Style
	nextRead time.Time
	reading  bool
}

// get returns the cached styles, reading them first when due (FallbackStyles until the service answers).
func (c *styleCache) get(svc Service, logf func(string, ...any)) []Style {
	c.mu.Lock()
	styles, due := c.styles, !c.reading && !time.Now().Before(c.nextRead)
	if due {
		c.reading = true
	}
	c.mu.Unlock()
	if !due || svc == nil {
		return orFallback(styles)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stylesWait)
	defer cancel()
	fresh, err := svc.ListStyles(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading = false
	if err != nil || len(fresh) == 0 {
		logf("cartimage: ListStyles failed (showing %d known styles): %v", len(c.styles), err)
		c.nextRead = time.Now().Add(stylesRetry)
		return orFallback(c.styles)
	}
	c.styles, c.nextRead = fresh, time.Now().Add(stylesTTL)
	return fresh
}

func orFallback(styles []Style) []Style {
	if len(styles) == 0 {
		return FallbackStyles
	}
	return styles
}

// caches holds one styleCache per Config (Page takes a *Config the shop keeps for the process's life).
var (
	cachesMu sync.Mutex
	caches   = map[*Config]*styleCache{}
)

// Config wires the handlers to the shop.
type Config struct {
	// Service calls ImageGenerationService (required).
	Service Service
	// SessionUser returns the shop's session user of a request (the frontend's sessionID); required.
	// The user never comes from the browser.
	SessionUser func(*http.Request) string
	// Prefix is where the routes live, e.g. baseUrl + "/cart/image" (default "/cart/image").
	Prefix string
	// ImagesURL is the service's HTTP side port, e.g. "http://imagegenerationservice:8081". When set,
	// GET Prefix/images/... serves the local store's images through the frontend, so the service's
	// PUBLIC_BASE_URL can be Prefix itself. Empty: the route answers 404 (images come from a bucket).
	ImagesURL string
	// MaxUploadBytes bounds a background upload (default 10 MiB, the service's MAX_UPLOAD_BYTES).
	MaxUploadBytes int64
	// Timeout is the deadline of GenerateCartImage and GetImageGenerationStatus calls (default 10 s).
	Timeout time.Duration
	// UploadTimeout is the deadline of UploadBackground and of fetching an image (default 30 s).
	UploadTimeout time.Duration
	// MaxImageBytes bounds a picture relayed by GET Prefix/download/{id} (default 32 MiB).
	MaxImageBytes int64
	// Logf, when set, logs failures of the service (never the shopper's data).
	Logf func(format string, args ...any)
	// CancelKey keys the tokens that tie a generation to the session that started it, so only that
	// session can cancel it. Give every frontend replica the same key (32 random bytes); empty: a key
	// made at start, so a cancel reaching another replica is refused and the work simply runs on.
	CancelKey []byte
	// Client fetches images from ImagesURL and, for downloads, from the bucket (default: a client with
	// UploadTimeout that follows no redirects).
	Client *http.Client
}

// PageData is what the "cart_image" template partial needs.
type PageData struct {
	Prefix         string
	StaticBase     string
	Styles         []Style
	MaxUploadBytes int64
}

// Page returns the partial's data; staticBase is where the kit's JS and CSS are served from
// (the shop's baseUrl + "/static"). The styles come from the service's ListStyles, cached per Config.
func (c *Config) Page(staticBase string) PageData {
	cachesMu.Lock()
	cache, ok := caches[c]
	if !ok {
		cache = &styleCache{}
		caches[c] = cache
	}
	cfg := c.withDefaults()
	cachesMu.Unlock()
	styles := cache.get(cfg.Service, cfg.Logf)
	return PageData{Prefix: cfg.Prefix, StaticBase: staticBase, Styles: styles, MaxUploadBytes: cfg.MaxUploadBytes}
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "/cart/image"
	}
	c.Prefix = strings.TrimRight(c.Prefix, "/")
	c.ImagesURL = strings.TrimRight(c.ImagesURL, "/")
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 10 << 20
	}
	if c.MaxImageBytes <= 0 {
		c.MaxImageBytes = 32 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.UploadTimeout <= 0 {
		c.UploadTimeout = 30 * time.Second
	}
	if len(c.CancelKey) == 0 {
		c.CancelKey = processKey
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout: c.UploadTimeout,
			// The service's URLs point at the object itself (its side port, a public or a signed URL).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

// Handler returns the handler of every route under cfg.Prefix; mount it for Prefix + "/".
func Handler(cfg Config) http.Handler {
	if cfg.Service == nil || cfg.SessionUser == nil {
		panic("cartimage: Config.Service and Config.SessionUser are required")
	}
	h := &handlers{cfg: cfg.withDefaults()}
	p := h.cfg.Prefix
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+p+"/generate", h.generate)
	mux.HandleFunc("POST "+p+"/background", h.background)
	mux.HandleFunc("GET "+p+"/status/{id}", h.status)
	mux.HandleFunc("GET "+p+"/images/{kind}/{name}", h.image)
	mux.HandleFunc("GET "+p+"/download/{id}", h.download)
	mux.HandleFunc("POST "+p+"/cancel/{id}", h.cancel)
	return mux
}

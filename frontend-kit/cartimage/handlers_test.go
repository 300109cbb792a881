package cartimage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeService records what the handlers sent and answers what the test says.
type fakeService struct {
	mu         sync.Mutex
	calls      int
	userID     string
	style      string
	background string
	statusID   string
	uploaded   string
	deadline   time.Duration
	generation Generation
	status     Status
	imageURL   string
	err        error
	styles     []Style
	stylesErr  error
	listed     int
	cancelled  []string
}

func (f *fakeService) CancelImageGeneration(ctx context.Context, id string) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	f.cancelled = append(f.cancelled, id)
	return f.status, f.err
}

func (f *fakeService) ListStyles(ctx context.Context) ([]Style, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listed++
	return f.styles, f.stylesErr
}

// refused is a status error as the service sends it: code, message, ErrorInfo(reason) and the other details.
func refused(code codes.Code, message, reason string, more ...protoadapt.MessageV1) error {
	st := status.New(code, message)
	details := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: Domain}}, more...)
	st, err := st.WithDetails(details...)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func violation(field, description string) *errdetails.BadRequest {
	return &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}}
}

func retryIn(seconds int64) *errdetails.RetryInfo {
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(seconds) * time.Second)}
}

func (f *fakeService) record(ctx context.Context) {
	f.calls++
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
}

func (f *fakeService) GenerateCartImage(ctx context.Context, userID, style, backgroundURL string) (Generation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	f.userID, f.style, f.background = userID, style, backgroundURL
	return f.generation, f.err
}

func (f *fakeService) GetImageGenerationStatus(ctx context.Context, id string) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	f.statusID = id
	return f.status, f.err
}

func (f *fakeService) UploadBackground(ctx context.Context, data string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	f.uploaded = data
	return f.imageURL, f.err
}

const session = "2f0c6a8e-session"

func newHandler(svc Service, mutate ...func(*Config)) http.Handler {
	cfg := Config{
		Service:        svc,
		SessionUser:    func(r *http.Request) string { return r.Header.Get("X-Test-Session") },
		MaxUploadBytes: 1024,
		Timeout:        3 * time.Second,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	return Handler(cfg)
}

func do(t *testing.T, h http.Handler, method, path, contentType string, body io.Reader) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-Test-Session", session)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var answer map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, rec.Body.String())
		}
	}
	return rec, answer
}

func TestGenerateSendsTheSessionUserNeverOneFromTheBrowser(t *testing.T) {
	svc := &fakeService{generation: Generation{ID: "gen-1", Status: "processing"}}
	rec, answer := do(t, newHandler(svc), "POST", "/cart/image/generate", "application/json",
		strings.NewReader(`{"style": "vintage", "background_url": "/cart/image/images/backgrounds/x.jpg", "user_id": "someone-else"}`))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("code = %d, want 202; body %s", rec.Code, rec.Body)
	}
	if svc.userID != session {
		t.Errorf("service got user %q, want the session user %q", svc.userID, session)
	}
	if svc.style != "vintage" || svc.background != "/cart/image/images/backgrounds/x.jpg" {
		t.Errorf("service got style %q background %q", svc.style, svc.background)
	}
	if answer["id"] != "gen-1" || answer["status"] != "processing" {
		t.Errorf("answer = %v", answer)
	}
}

func TestGenerateAlreadyDrawnAnswersTheImage(t *testing.T) {
	svc := &fakeService{generation: Generation{ID: "gen-2", Status: "completed", ImageURL: "/cart/image/images/generated/a.png"}}
	rec, answer := do(t, newHandler(svc), "POST", "/cart/image/generate", "application/json", strings.NewReader(`{}`))
	if rec.Code != http.StatusOK || answer["image_url"] != "/cart/image/images/generated/a.png" {
		t.Fatalf("code %d answer %v", rec.Code, answer)
	}
}

func TestGenerateCallHasADeadline(t *testing.T) {
	svc := &fakeService{generation: Generation{ID: "g", Status: "processing"}}
	do(t, newHandler(svc), "POST", "/cart/image/generate", "application/json", strings.NewReader(`{}`))
	if svc.deadline <= 0 || svc.deadline > 3*time.Second {
		t.Errorf("deadline left = %v, want within the configured 3s", svc.deadline)
	}
}

func TestWithoutASessionNothingIsCalled(t *testing.T) {
	svc := &fakeService{}
	h := newHandler(svc)
	for _, path := range []string{"/cart/image/generate", "/cart/image/background"} {
		req := httptest.NewRequest("POST", path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without session: code %d, want 401", path, rec.Code)
		}
	}
	if svc.calls != 0 {
		t.Errorf("service called %d times", svc.calls)
	}
}

func TestGenerateRefusesBadJSON(t *testing.T) {
	for name, body := range map[string]string{
		"empty":           "",
		"truncated":       `{"style": "vin`,
		"array":           `["vintage"]`,
		"style not text":  `{"style": 5}`,
		"style too long":  `{"style": "` + strings.Repeat("x", 65) + `"}`,
		"url too long":    `{"background_url": "` + strings.Repeat("x", 2049) + `"}`,
		"body over limit": `{"style": "` + strings.Repeat(" ", 20000) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			svc := &fakeService{}
			rec, answer := do(t, newHandler(svc), "POST", "/cart/image/generate", "application/json", strings.NewReader(body))
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("code = %d, want 400", rec.Code)
			}
			if msg, _ := answer["error"].(string); !strings.Contains(msg, "could not be read") {
				t.Errorf("error = %q", msg)
			}
			if svc.calls != 0 {
				t.Errorf("service was called")
			}
		})
	}
}

func TestServiceErrorsBecomeHTTPStatusesAndShortMessages(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		code     int
		contains string
		hidden   string
	}{
		{"invalid argument", refused(codes.InvalidArgument, "style_preference: unknown style 'cubist'; choose one of: modern", "INVALID_FIELD", violation("style_preference", "unknown style 'cubist'; choose one of: modern")), 400, "Unknown style 'cubist'", "style_preference"},
		{"invalid without a field", refused(codes.InvalidArgument, "the request is not a valid protobuf message for this method", "MALFORMED_REQUEST"), 400, "The request was refused.", "protobuf"},
		{"empty cart", refused(codes.FailedPrecondition, "the cart of user 'u1' is empty", "EMPTY_CART"), 409, "Your cart is empty", "u1"},
		{"failed precondition, not the cart", refused(codes.FailedPrecondition, "the cart is empty", "SOMETHING_ELSE"), 409, "cannot be made right now", "empty"},
		{"failed precondition without details", status.Error(codes.FailedPrecondition, "the cart is empty"), 409, "cannot be made right now", "empty"},
		{"unknown product", refused(codes.NotFound, "product 'NOSUCH' is not in the product catalog", "PRODUCT_NOT_FOUND"), 404, "no longer in the shop", "NOSUCH"},
		{"busy", refused(codes.ResourceExhausted, "too many image generations are in progress; try again shortly", "GENERATE_BUSY", retryIn(5)), 429, "try again in a moment", ""},
		{"busy without details", status.Error(codes.ResourceExhausted, "too many image generations for this shopper; try again in 412 seconds"), 429, "try again in a moment", "412"},
		{"rate limited", refused(codes.ResourceExhausted, "too many image generations for this shopper; try again in 412 seconds", "RATE_LIMITED", retryIn(412)), 429, "please try again in 7 minutes.", "412"},
		{"rate limited briefly", refused(codes.ResourceExhausted, "too many image generations for this shopper; try again in 40 seconds", "RATE_LIMITED", retryIn(40)), 429, "please try again in 40 seconds.", ""},
		{"shutting down", refused(codes.ResourceExhausted, "the service is shutting down; try again shortly", "SHUTTING_DOWN", retryIn(2)), 429, "try again in a moment", ""},
		{"peer down", status.Error(codes.Unavailable, "cart service (cartservice:7070) is unavailable: cannot connect"), 503, "unavailable right now", "cartservice:7070"},
		{"slow", status.Error(codes.DeadlineExceeded, "deadline exceeded"), 504, "taking too long", ""},
		{"internal", status.Error(codes.Internal, "traceback: KeyError"), 502, "failed unexpectedly", "KeyError"},
		{"not a gRPC error", errors.New("dial tcp: secret-host"), 502, "failed unexpectedly", "secret-host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &fakeService{err: tc.err}
			rec, answer := do(t, newHandler(svc), "POST", "/cart/image/generate", "application/json", strings.NewReader(`{"style": "modern"}`))
			if rec.Code != tc.code {
				t.Fatalf("code = %d, want %d", rec.Code, tc.code)
			}
			msg, _ := answer["error"].(string)
			if !strings.Contains(msg, tc.contains) {
				t.Errorf("error = %q, want it to contain %q", msg, tc.contains)
			}
			if tc.hidden != "" && strings.Contains(rec.Body.String(), tc.hidden) {
				t.Errorf("answer shows %q to the shopper: %s", tc.hidden, rec.Body)
			}
			if tc.code == http.StatusTooManyRequests && rec.Header().Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
			want := map[string]string{"rate limited": "412", "shutting down": "2", "busy": "5", "busy without details": "5"}[tc.name]
			if want != "" && rec.Header().Get("Retry-After") != want {
				t.Errorf("Retry-After = %q, want %s (the service's RetryInfo, else 5)", rec.Header().Get("Retry-After"), want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status Status
		code   int
		want   map[string]any
	}{
		{"processing", Status{Status: "processing", Progress: 42}, 200, map[string]any{"status": "processing", "progress": 42.0}},
		{"completed", Status{Status: "completed", Progress: 100, ImageURL: "/cart/image/images/generated/a.png"}, 200,
			map[string]any{"status": "completed", "image_url": "/cart/image/images/generated/a.png"}},
		{"failed", Status{Status: "failed", Error: "the image could not be saved; please try again in a moment"}, 200,
			map[string]any{"status": "failed", "error": "the image could not be saved; please try again in a moment"}},
		{"not found", Status{Status: "not_found"}, 404, map[string]any{"status": "not_found"}},
		{"unexpected", Status{Status: "sideways"}, 502, map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &fakeService{status: tc.status}
			rec, answer := do(t, newHandler(svc), "GET", "/cart/image/status/gen-7", "", nil)
			if rec.Code != tc.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if svc.statusID != "gen-7" {
				t.Errorf("asked for %q", svc.statusID)
			}
			for k, v := range tc.want {
				if answer[k] != v {
					t.Errorf("%s = %v, want %v", k, answer[k], v)
				}
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("status answers must not be cached")
			}
		})
	}
}

func TestStatusOfAMalformedIDIsNotAskedFor(t *testing.T) {
	svc := &fakeService{}
	for _, id := range []string{"a%20b", strings.Repeat("x", 129), "x.y"} {
		rec, answer := do(t, newHandler(svc), "GET", "/cart/image/status/"+id, "", nil)
		if rec.Code != http.StatusNotFound || answer["status"] != "not_found" {
			t.Errorf("%q: code %d answer %v", id, rec.Code, answer)
		}
	}
	if svc.calls != 0 {
		t.Errorf("service called %d times", svc.calls)
	}
}

func multipartBody(t *testing.T, field, filename string, content []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("note", "ignored")
	if field != "" {
		part, err := w.CreateFormFile(field, filename)
		if err != nil {
			t.Fatal(err)
		}
		part.Write(content)
	}
	w.Close()
	return w.FormDataContentType(), &buf
}

func TestBackgroundFormUploadIsSentAsBase64(t *testing.T) {
	photo := []byte("\x89PNG\r\n\x1a\n not really, the service judges the content")
	svc := &fakeService{imageURL: "/cart/image/images/backgrounds/abc.png"}
	contentType, body := multipartBody(t, "background", "beach.png", photo)
	rec, answer := do(t, newHandler(svc), "POST", "/cart/image/background", contentType, body)
	if rec.Code != http.StatusOK || answer["image_url"] != "/cart/image/images/backgrounds/abc.png" {
		t.Fatalf("code %d answer %v", rec.Code, answer)
	}
	if svc.uploaded != base64.StdEncoding.EncodeToString(photo) {
		t.Errorf("service got %q", svc.uploaded)
	}
}

func TestBackgroundDataURLIsPassedOn(t *testing.T) {
	dataURL := "data:image/png;base64,iVBORw0KGgo="
	svc := &fakeService{imageURL: "/cart/image/images/backgrounds/abc.png"}
	rec, _ := do(t, newHandler(svc), "POST", "/cart/image/background", "application/json",
		strings.NewReader(`{"image_data": "`+dataURL+`"}`))
	if rec.Code != http.StatusOK || svc.uploaded != dataURL {
		t.Fatalf("code %d, service got %q", rec.Code, svc.uploaded)
	}
}

func TestBackgroundRefusals(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1025)
	for _, tc := range []struct {
		name     string
		body     func() (string, io.Reader)
		code     int
		contains string
	}{
		{"file over the limit", func() (string, io.Reader) { return multipartBody(t, "background", "big.jpg", big) }, 413, "larger than"},
		{"data URL over the limit", func() (string, io.Reader) {
			return "application/json", strings.NewReader(`{"image_data": "` + strings.Repeat("A", 2000) + `"}`)
		}, 413, "larger than"},
		{"no file field", func() (string, io.Reader) { return multipartBody(t, "", "", nil) }, 400, "Choose a picture"},
		{"another field", func() (string, io.Reader) { return multipartBody(t, "photo", "a.jpg", []byte("abc")) }, 400, "Choose a picture"},
		{"empty file", func() (string, io.Reader) { return multipartBody(t, "background", "a.jpg", nil) }, 400, "Choose a picture"},
		{"empty data URL", func() (string, io.Reader) { return "application/json", strings.NewReader(`{"image_data": ""}`) }, 400, "Choose a picture"},
		{"bad JSON", func() (string, io.Reader) { return "application/json", strings.NewReader(`{"image_data": `) }, 400, "could not be read"},
		{"broken multipart", func() (string, io.Reader) {
			return "multipart/form-data; boundary=xyz", strings.NewReader("--xyz\r\nContent-Disposition: form-data; name=\"background\"; filename=\"a\"\r\n\r\nabc")
		}, 400, "could not be read"},
		{"multipart without boundary", func() (string, io.Reader) { return "multipart/form-data", strings.NewReader("x") }, 400, "could not be read"},
		{"raw bytes", func() (string, io.Reader) { return "image/png", strings.NewReader("x") }, 415, "form upload or a data URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &fakeService{imageURL: "/x"}
			contentType, body := tc.body()
			rec, answer := do(t, newHandler(svc), "POST", "/cart/image/background", contentType, body)
			if rec.Code != tc.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if msg, _ := answer["error"].(string); !strings.Contains(msg, tc.contains) {
				t.Errorf("error = %q, want %q", msg, tc.contains)
			}
			if svc.calls != 0 {
				t.Errorf("service was called")
			}
		})
	}
}

func TestBackgroundRefusedByTheServiceShowsItsReason(t *testing.T) {
	svc := &fakeService{err: refused(codes.InvalidArgument, "image_data: is not a PNG, JPEG or WebP image", "INVALID_FIELD", violation("image_data", "is not a PNG, JPEG or WebP image"))}
	contentType, body := multipartBody(t, "background", "notes.txt", []byte("hello"))
	rec, answer := do(t, newHandler(svc), "POST", "/cart/image/background", contentType, body)
	if rec.Code != http.StatusBadRequest || answer["error"] != "This file is not a PNG, JPEG or WebP image." {
		t.Fatalf("code %d answer %v", rec.Code, answer)
	}
}

func TestImageRoute(t *testing.T) {
	const name = "abcdefghijklmnop1234.png"
	upstreamHits := 0
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits++
		if r.URL.Path != "/images/generated/"+name {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Write([]byte("PNGDATA"))
	}))
	defer upstream.Close()
	h := newHandler(&fakeService{}, func(c *Config) { c.ImagesURL = upstream.URL + "/" })

	rec, _ := do(t, h, "GET", "/cart/image/images/generated/"+name, "", nil)
	if rec.Code != 200 || rec.Body.String() != "PNGDATA" || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("code %d type %q body %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("cache header not passed on: %q", rec.Header().Get("Cache-Control"))
	}

	rec, _ = do(t, h, "GET", "/cart/image/images/backgrounds/abcdefghijklmnop9999.jpg", "", nil)
	if rec.Code != 404 {
		t.Errorf("missing image: code %d, want 404", rec.Code)
	}

	hits := upstreamHits
	for _, path := range []string{
		"/cart/image/images/secrets/abcdefghijklmnop1234.png",
		"/cart/image/images/generated/short.png",
		"/cart/image/images/generated/abcdefghijklmnop1234.exe",
		"/cart/image/images/generated/..%2f..%2fetc%2fpasswd",
	} {
		rec, _ := do(t, h, "GET", path, "", nil)
		if rec.Code != 404 {
			t.Errorf("%s: code %d, want 404", path, rec.Code)
		}
	}
	if upstreamHits != hits {
		t.Errorf("a refused name reached the service")
	}
}

func TestImageRouteWhenTheServiceIsDownOrNotConfigured(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	rec, answer := do(t, newHandler(&fakeService{}, func(c *Config) { c.ImagesURL = downURL }), "GET",
		"/cart/image/images/generated/abcdefghijklmnop1234.png", "", nil)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(answer["error"].(string), "cannot be shown") {
		t.Errorf("service down: code %d answer %v", rec.Code, answer)
	}
	rec, _ = do(t, newHandler(&fakeService{}), "GET", "/cart/image/images/generated/abcdefghijklmnop1234.png", "", nil)
	if rec.Code != http.StatusNotFound {
		t.Errorf("no ImagesURL: code %d, want 404", rec.Code)
	}
}

// bucket serves one object the way Cloud Storage does, on a path and with a content type; it records
// the query of every request (a signed URL's).
func bucket(t *testing.T, path, contentType string, body []byte) (*httptest.Server, *[]string) {
	t.Helper()
	var queries []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(body)
	}))
	t.Cleanup(server.Close)
	return server, &queries
}

func TestDownloadOfABucketPictureIsAnAttachmentFromTheShop(t *testing.T) {
	server, queries := bucket(t, "/shop-images/generated/abcdefghijklmnop1234.jpg", "image/jpeg", []byte("JPEGDATA"))
	for _, url := range []string{
		server.URL + "/shop-images/generated/abcdefghijklmnop1234.jpg",                                        // public
		server.URL + "/shop-images/generated/abcdefghijklmnop1234.jpg?X-Goog-Signature=abc&X-Goog-Expires=60", // signed
	} {
		svc := &fakeService{status: Status{Status: "completed", Progress: 100, ImageURL: url}}
		rec, _ := do(t, newHandler(svc), "GET", "/cart/image/download/gen-7?style=vintage", "", nil)
		if rec.Code != 200 || rec.Body.String() != "JPEGDATA" {
			t.Fatalf("%s: code %d body %q", url, rec.Code, rec.Body)
		}
		if svc.statusID != "gen-7" {
			t.Errorf("status asked for %q", svc.statusID)
		}
		want := map[string]string{
			"Content-Type":           "image/jpeg",
			"Content-Disposition":    `attachment; filename=my-cart-vintage.jpg`,
			"Content-Length":         "8",
			"X-Content-Type-Options": "nosniff",
		}
		for header, value := range want {
			if got := rec.Header().Get(header); got != value {
				t.Errorf("%s: %s = %q, want %q", url, header, got, value)
			}
		}
	}
	if (*queries)[1] != "X-Goog-Signature=abc&X-Goog-Expires=60" {
		t.Errorf("the signed URL's query was not sent as it is: %q", (*queries)[1])
	}
}

func TestDownloadOfALocalStorePictureGoesThroughTheSidePort(t *testing.T) {
	server, _ := bucket(t, "/images/generated/abcdefghijklmnop1234.png", "image/png", []byte("PNGDATA"))
	svc := &fakeService{status: Status{Status: "completed", ImageURL: "/cart/image/images/generated/abcdefghijklmnop1234.png"}}
	rec, _ := do(t, newHandler(svc, func(c *Config) { c.ImagesURL = server.URL }), "GET",
		"/cart/image/download/gen-7?style=not-a-style%0d%0aX:%20y", "", nil)
	if rec.Code != 200 || rec.Body.String() != "PNGDATA" {
		t.Fatalf("code %d body %q", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Content-Disposition"); got != "attachment; filename=my-cart-picture.png" {
		t.Errorf("Content-Disposition %q: an unknown style must not reach the header", got)
	}
}

func TestDownloadRefusals(t *testing.T) {
	server, _ := bucket(t, "/b/page.html", "text/html", []byte("<html>"))
	big, _ := bucket(t, "/b/big.png", "image/png", bytes.Repeat([]byte("x"), 2048))
	cases := []struct {
		name   string
		status Status
		err    error
		code   int
	}{
		{"still drawing", Status{Status: "processing", Progress: 40}, nil, 404},
		{"failed", Status{Status: "failed", Error: "no"}, nil, 404},
		{"unknown", Status{Status: "not_found"}, nil, 404},
		{"service down", Status{}, status.Error(codes.Unavailable, "connection refused"), 503},
		{"not a picture", Status{Status: "completed", ImageURL: server.URL + "/b/page.html"}, nil, 502},
		{"too large", Status{Status: "completed", ImageURL: big.URL + "/b/big.png"}, nil, 502},
		{"not http", Status{Status: "completed", ImageURL: "file:///etc/passwd"}, nil, 502},
		{"gs uri", Status{Status: "completed", ImageURL: "gs://bucket/generated/abcdefghijklmnop1234.png"}, nil, 502},
		{"local, no side port", Status{Status: "completed", ImageURL: "/cart/image/images/generated/abcdefghijklmnop1234.png"}, nil, 502},
		{"missing object", Status{Status: "completed", ImageURL: server.URL + "/b/gone.png"}, nil, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := &fakeService{status: c.status, err: c.err}
			rec, answer := do(t, newHandler(svc, func(c *Config) { c.MaxImageBytes = 1024 }), "GET", "/cart/image/download/gen-7", "", nil)
			if rec.Code != c.code || answer["error"] == nil || rec.Header().Get("Content-Disposition") != "" {
				t.Errorf("code %d (want %d), answer %v, disposition %q", rec.Code, c.code, answer, rec.Header().Get("Content-Disposition"))
			}
		})
	}
	svc := &fakeService{}
	rec, _ := do(t, newHandler(svc), "GET", "/cart/image/download/bad%20id", "", nil)
	if rec.Code != 404 || svc.calls != 0 {
		t.Errorf("malformed id: code %d, %d calls", rec.Code, svc.calls)
	}
}

func TestDownloadFollowsNoRedirect(t *testing.T) {
	target, _ := bucket(t, "/x.png", "image/png", []byte("PNG"))
	redirecting := httptest.NewServer(http.RedirectHandler(target.URL+"/x.png", http.StatusFound))
	defer redirecting.Close()
	svc := &fakeService{status: Status{Status: "completed", ImageURL: redirecting.URL + "/b/x.png"}}
	rec, _ := do(t, newHandler(svc), "GET", "/cart/image/download/gen-7", "", nil)
	if rec.Code != http.StatusBadGateway {
		t.Errorf("redirect: code %d, want 502", rec.Code)
	}
}

func TestRoutesAndMethods(t *testing.T) {
	h := newHandler(&fakeService{}, func(c *Config) { c.Prefix = "/shop/cart/image/" })
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/shop/cart/image/generate", http.StatusMethodNotAllowed},
		{"POST", "/shop/cart/image/status/x", http.StatusMethodNotAllowed},
		{"GET", "/shop/cart/image/nothing", http.StatusNotFound},
		{"POST", "/shop/cart/image/generate", http.StatusAccepted},
	} {
		rec, _ := do(t, h, tc.method, tc.path, "application/json", strings.NewReader(`{}`))
		if rec.Code != tc.code {
			t.Errorf("%s %s: code %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
}

func TestPageData(t *testing.T) {
	svc := &fakeService{styles: []Style{{"modern", "Modern"}, {"vintage", "Vintage"}}}
	cfg := Config{Service: svc, Prefix: "/base/cart/image/"}
	page := cfg.Page("/base/static")
	if page.Prefix != "/base/cart/image" || page.StaticBase != "/base/static" || page.MaxUploadBytes != 10<<20 {
		t.Errorf("page = %+v", page)
	}
	if len(page.Styles) != 2 || page.Styles[0].Name != "modern" {
		t.Errorf("styles = %v", page.Styles)
	}
	cfg.Page("/base/static")
	if svc.listed != 1 {
		t.Errorf("ListStyles called %d times for two pages, want 1 (cached)", svc.listed)
	}
}

func TestPageStylesWhenTheServiceIsDown(t *testing.T) {
	svc := &fakeService{stylesErr: status.Error(codes.Unavailable, "connection refused")}
	cfg := Config{Service: svc}
	for _, want := range []int{1, 1} { // the second render does not wait on the service again
		page := cfg.Page("/static")
		if len(page.Styles) != 1 || page.Styles[0].Name != "" {
			t.Errorf("styles = %v, want the fallback (the service's default)", page.Styles)
		}
		if svc.listed != want {
			t.Errorf("ListStyles called %d times, want %d", svc.listed, want)
		}
	}
	noService := Config{}
	if page := noService.Page("/static"); len(page.Styles) != 1 {
		t.Errorf("without a service: styles = %v", page.Styles)
	}
}

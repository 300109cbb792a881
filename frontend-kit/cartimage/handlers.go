package cartimage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

const maxGenerateBody = 16 << 10

var (
	// A generation id as the service makes them; anything else is never sent to it.
	generationID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	// A style name as the service makes them, for a download's file name.
	styleName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	// The local store's object names (imagegen/stores/__init__.py OBJECT_NAME).
	objectName = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}\.(png|jpg|webp)$`)
	imageKinds = map[string]bool{"generated": true, "backgrounds": true}
)

type handlers struct {
	cfg Config
}

type generateRequest struct {
	Style         string `json:"style"`
	BackgroundURL string `json:"background_url"`
}

type generateResponse struct {
	ID       string    `json:"id"`
	Status   string    `json:"status"`
	ImageURL string    `json:"image_url,omitempty"`
	Variants []Variant `json:"variants,omitempty"`
	// CancelToken is what POST Prefix/cancel/{id} needs from this session (see cancelToken).
	CancelToken string `json:"cancel_token"`
}

type statusResponse struct {
	Status           string    `json:"status"`
	Progress         int       `json:"progress"`
	ImageURL         string    `json:"image_url,omitempty"`
	Error            string    `json:"error,omitempty"`
	Variants         []Variant `json:"variants,omitempty"`
	QueuePosition    int       `json:"queue_position,omitempty"`
	EstimatedSeconds int       `json:"estimated_seconds,omitempty"`
}

type backgroundResponse struct {
	ImageURL string `json:"image_url"`
}

// generate handles POST Prefix/generate {"style": "...", "background_url": "..."}.
func (h *handlers) generate(w http.ResponseWriter, r *http.Request) {
	user := h.cfg.SessionUser(r)
	if user == "" {
		writeError(w, http.StatusUnauthorized, "Your shopping session has expired; reload the page.")
		return
	}
	var req generateRequest
	body := http.MaxBytesReader(w, r.Body, maxGenerateBody)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "The request could not be read; reload the page and try again.")
		return
	}
	if len(req.Style) > 64 || len(req.BackgroundURL) > 2048 {
		writeError(w, http.StatusBadRequest, "The request could not be read; reload the page and try again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	gen, err := h.cfg.Service.GenerateCartImage(ctx, user, req.Style, req.BackgroundURL)
	if err != nil {
		h.writeServiceError(w, "GenerateCartImage", err)
		return
	}
	code := http.StatusAccepted
	if gen.Status == "completed" {
		code = http.StatusOK
	}
	writeJSON(w, code, generateResponse{ID: gen.ID, Status: gen.Status, ImageURL: gen.ImageURL,
		Variants: gen.Variants, CancelToken: h.cancelToken(user, gen.ID)})
}

// status handles GET Prefix/status/{id}.
func (h *handlers) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !generationID.MatchString(id) {
		writeJSON(w, http.StatusNotFound, statusResponse{Status: "not_found", Error: "This picture is not known; generate a new one."})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	st, err := h.cfg.Service.GetImageGenerationStatus(ctx, id)
	if err != nil {
		h.writeServiceError(w, "GetImageGenerationStatus", err)
		return
	}
	h.writeStatus(w, id, st)
}

// writeStatus answers with a generation's status as the page reads it.
func (h *handlers) writeStatus(w http.ResponseWriter, id string, st Status) {
	answer := statusResponse{Status: st.Status, Progress: st.Progress, ImageURL: st.ImageURL, Error: st.Error,
		Variants: st.Variants, QueuePosition: max(0, st.QueuePosition), EstimatedSeconds: max(0, st.EstimatedSeconds)}
	switch st.Status {
	case "not_found":
		answer.Error = "This picture has expired or is not known; generate a new one."
		writeJSON(w, http.StatusNotFound, answer)
	case "processing", "completed", "failed":
		writeJSON(w, http.StatusOK, answer)
	default:
		h.cfg.Logf("cartimage: unexpected status %q of generation %s", st.Status, id)
		writeError(w, http.StatusBadGateway, "Image generation answered something unexpected; please try again.")
	}
}

// background handles POST Prefix/background: a multipart form with the file in "background", or
// JSON {"image_data": "data:image/...;base64,..."} as FileReader.readAsDataURL gives it.
func (h *handlers) background(w http.ResponseWriter, r *http.Request) {
	if h.cfg.SessionUser(r) == "" {
		writeError(w, http.StatusUnauthorized, "Your shopping session has expired; reload the page.")
		return
	}
	limitMB := fmt.Sprintf("%g MB", float64(h.cfg.MaxUploadBytes)/(1<<20))
	tooLarge := "The picture is larger than " + limitMB + "; choose a smaller one."
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var data string
	switch mediaType {
	case "multipart/form-data":
		r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxUploadBytes+64<<10)
		reader, err := r.MultipartReader()
		if err != nil {
			writeError(w, http.StatusBadRequest, "The upload could not be read; choose the picture again.")
			return
		}
		raw, err := readFilePart(reader, "background", h.cfg.MaxUploadBytes)
		switch {
		case errors.Is(err, errTooLarge) || isMaxBytes(err):
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		case errors.Is(err, errNoFile):
			writeError(w, http.StatusBadRequest, "Choose a picture to upload.")
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "The upload could not be read; choose the picture again.")
			return
		}
		data = base64.StdEncoding.EncodeToString(raw)
	case "application/json":
		r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxUploadBytes*4/3+64<<10)
		var req struct {
			ImageData string `json:"image_data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			if isMaxBytes(err) {
				writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
				return
			}
			writeError(w, http.StatusBadRequest, "The upload could not be read; choose the picture again.")
			return
		}
		// base64 of the largest picture, plus room for a "data:image/...;base64," header.
		if int64(len(req.ImageData)) > (h.cfg.MaxUploadBytes+2)/3*4+256 {
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		if req.ImageData == "" {
			writeError(w, http.StatusBadRequest, "Choose a picture to upload.")
			return
		}
		data = req.ImageData
	default:
		writeError(w, http.StatusUnsupportedMediaType, "Send the picture as a form upload or a data URL.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.UploadTimeout)
	defer cancel()
	imageURL, err := h.cfg.Service.UploadBackground(ctx, data)
	if err != nil {
		if r, _ := readRefusal(err); r.code == codes.InvalidArgument && r.problem != "" {
			// The service's field violation says what is wrong with the picture ("is not a PNG, ...").
			writeError(w, http.StatusBadRequest, "This file "+strings.TrimSuffix(r.problem, ".")+".")
			return
		}
		h.writeServiceError(w, "UploadBackground", err)
		return
	}
	writeJSON(w, http.StatusOK, backgroundResponse{ImageURL: imageURL})
}

var (
	errTooLarge = errors.New("file too large")
	errNoFile   = errors.New("no file")
)

// readFilePart returns the bytes of the form's file field, refusing more than limit bytes.
func readFilePart(reader *multipart.Reader, field string, limit int64) ([]byte, error) {
	for {
		part, err := reader.NextPart()
		if err == io.EOF {
			return nil, errNoFile
		}
		if err != nil {
			return nil, err
		}
		if part.FormName() != field || part.FileName() == "" {
			part.Close()
			continue
		}
		defer part.Close()
		raw, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(raw)) > limit {
			return nil, errTooLarge
		}
		if len(raw) == 0 {
			return nil, errNoFile
		}
		return raw, nil
	}
}

func isMaxBytes(err error) bool {
	var maxErr *http.MaxBytesError
	return errors.As(err, &maxErr)
}

// image handles GET Prefix/images/{kind}/{name}: the local store's images, fetched from the side port.
func (h *handlers) image(w http.ResponseWriter, r *http.Request) {
	kind, name := r.PathValue("kind"), r.PathValue("name")
	upstream, ok := h.localImage(kind, name)
	if !ok {
		writeError(w, http.StatusNotFound, "no such image")
		return
	}
	h.relay(w, r, upstream, "")
}

// download handles GET Prefix/download/{id}?style=...: the finished picture of a generation, saved by
// the browser (Content-Disposition: attachment). The picture's URL comes from the service, never from
// the browser: the local store's through ImagesURL, a bucket's (public or signed) fetched as it is. A
// browser ignores the download attribute of a link to another origin, so a bucket's URL cannot be the
// download link itself.
func (h *handlers) download(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !generationID.MatchString(id) {
		writeError(w, http.StatusNotFound, "This picture is not known; generate a new one.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	st, err := h.cfg.Service.GetImageGenerationStatus(ctx, id)
	if err != nil {
		h.writeServiceError(w, "GetImageGenerationStatus", err)
		return
	}
	if st.Status != "completed" || st.ImageURL == "" {
		writeError(w, http.StatusNotFound, "This picture has expired or is not ready; generate a new one.")
		return
	}
	upstream, ok := h.upstreamOf(st.ImageURL)
	if !ok {
		h.cfg.Logf("cartimage: generation %s has an image URL the kit cannot fetch", id)
		writeError(w, http.StatusBadGateway, "The picture cannot be downloaded right now; please try again.")
		return
	}
	style := "picture"
	if s := r.URL.Query().Get("style"); styleName.MatchString(s) {
		style = s
	}
	h.relay(w, r, upstream, "my-cart-"+style)
}

// localImage is the side port's URL of a local store image, if kind and name are ones it serves.
func (h *handlers) localImage(kind, name string) (string, bool) {
	if h.cfg.ImagesURL == "" || !imageKinds[kind] || !objectName.MatchString(name) {
		return "", false
	}
	return h.cfg.ImagesURL + "/images/" + url.PathEscape(kind) + "/" + url.PathEscape(name), true
}

// upstreamOf is where the kit fetches a picture the service names: the side port for the local store's
// URLs (Prefix/images/...), the URL itself for a bucket's http(s) URL.
func (h *handlers) upstreamOf(imageURL string) (string, bool) {
	if rest, found := strings.CutPrefix(imageURL, h.cfg.Prefix+"/images/"); found {
		kind, name, _ := strings.Cut(rest, "/")
		return h.localImage(kind, name)
	}
	parsed, err := url.Parse(imageURL)
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" || parsed.User != nil {
		return "", false
	}
	return imageURL, true
}

// imageTypes are the pictures the kit relays, with the extension a download gets.
var imageTypes = map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}

// relay answers with the picture at upstream; a non-empty attachment makes it a download of that name.
func (h *handlers) relay(w http.ResponseWriter, r *http.Request, upstream, attachment string) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.UploadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstream, nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "no such image")
		return
	}
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		// err names the whole URL, and a signed URL's query is a credential: log its host and path only.
		h.cfg.Logf("cartimage: fetching %s%s: %v", req.URL.Host, req.URL.Path, errors.Unwrap(err))
		writeError(w, http.StatusServiceUnavailable, "The picture cannot be shown right now; please try again.")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		code := http.StatusBadGateway
		if resp.StatusCode == http.StatusNotFound {
			code = http.StatusNotFound
		}
		writeError(w, code, "no such image")
		return
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	extension, isImage := imageTypes[mediaType]
	if !isImage || resp.ContentLength > h.cfg.MaxImageBytes {
		h.cfg.Logf("cartimage: %s%s answered %q, %d bytes: not a picture to relay", req.URL.Host, req.URL.Path, mediaType, resp.ContentLength)
		writeError(w, http.StatusBadGateway, "The picture cannot be shown right now; please try again.")
		return
	}
	w.Header().Set("Content-Type", mediaType)
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	if v := resp.Header.Get("Cache-Control"); v != "" {
		w.Header().Set("Cache-Control", v)
	}
	if attachment != "" {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": attachment + extension}))
		w.Header().Set("Cache-Control", "private, no-store")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	io.Copy(w, io.LimitReader(resp.Body, h.cfg.MaxImageBytes))
}

// writeServiceError answers a failed call with an HTTP status and a message a shopper can read.
func (h *handlers) writeServiceError(w http.ResponseWriter, rpc string, err error) {
	code, message, retryAfter := httpError(err)
	if code >= 500 {
		h.cfg.Logf("cartimage: %s failed: %v", rpc, err)
	}
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeError(w, code, message)
}

// waitText says a wait in words: "40 seconds", "1 minute", "7 minutes" (rounded up).
func waitText(seconds int) string {
	if seconds < 60 {
		return strconv.Itoa(seconds) + " seconds"
	}
	minutes := (seconds + 59) / 60
	if minutes == 1 {
		return "1 minute"
	}
	return strconv.Itoa(minutes) + " minutes"
}

// httpError maps a gRPC error of ImageGenerationService to an HTTP status, a shopper's message and, for
// 429, the seconds of Retry-After; it decides from the code and the details, never from the message.
func httpError(err error) (int, string, int) {
	r, ok := readRefusal(err)
	if !ok {
		return http.StatusBadGateway, "Image generation failed unexpectedly; please try again.", 0
	}
	switch r.code {
	case codes.InvalidArgument:
		return http.StatusBadRequest, capitalised(r.problem, "The request was refused."), 0
	case codes.FailedPrecondition:
		if r.reason == "EMPTY_CART" {
			return http.StatusConflict, "Your cart is empty: add a product before generating a picture.", 0
		}
		return http.StatusConflict, "This picture cannot be made right now; please try again.", 0
	case codes.NotFound:
		if r.reason == "PRODUCT_NOT_FOUND" {
			return http.StatusNotFound, "A product in your cart is no longer in the shop; remove it and try again.", 0
		}
		return http.StatusNotFound, "This picture is not known; generate a new one.", 0
	case codes.ResourceExhausted:
		seconds := int((r.retryAfter + time.Second - 1) / time.Second)
		if r.reason == "RATE_LIMITED" && seconds > 0 {
			return http.StatusTooManyRequests, "You have asked for many pictures in a short time; please try again in " +
				waitText(seconds) + ".", seconds
		}
		if seconds <= 0 {
			seconds = 5
		}
		return http.StatusTooManyRequests, "Many pictures are being made right now; please try again in a moment.", seconds
	case codes.Unavailable, codes.Canceled:
		return http.StatusServiceUnavailable, "Image generation is unavailable right now; please try again later.", 0
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout, "Image generation is taking too long to answer; please try again.", 0
	default:
		return http.StatusBadGateway, "Image generation failed unexpectedly; please try again.", 0
	}
}

// capitalised is text with a capital first letter, or fallback when text is empty.
func capitalised(text, fallback string) string {
	if text == "" {
		return fallback
	}
	return strings.ToUpper(text[:1]) + text[1:]
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, message string) {
	writeJSON(w, code, map[string]string{"error": message})
}

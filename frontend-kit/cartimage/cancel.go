package cartimage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// processKey keys cancel tokens when the shop sets no CancelKey.
var processKey = func() []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
}()

// cancelToken ties a generation to the session that started it: the service's CancelImageGeneration
// takes only an id, and the status route gives nobody a way to tell whose generation an id is.
func (h *handlers) cancelToken(user, id string) string {
	mac := hmac.New(sha256.New, h.cfg.CancelKey)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// cancel handles POST Prefix/cancel/{id}?token=...: stops the session's own generation if it has not
// started drawing. The token is in the query so navigator.sendBeacon, which sends no custom headers,
// can call it as the shopper leaves the page.
func (h *handlers) cancel(w http.ResponseWriter, r *http.Request) {
	user := h.cfg.SessionUser(r)
	if user == "" {
		writeError(w, http.StatusUnauthorized, "Your shopping session has expired; reload the page.")
		return
	}
	id := r.PathValue("id")
	token := r.URL.Query().Get("token")
	if !generationID.MatchString(id) {
		writeError(w, http.StatusNotFound, "This picture is not known; generate a new one.")
		return
	}
	if !hmac.Equal([]byte(token), []byte(h.cancelToken(user, id))) {
		writeError(w, http.StatusForbidden, "This picture was not started from your session.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	st, err := h.cfg.Service.CancelImageGeneration(ctx, id)
	if status.Code(err) == codes.Unimplemented {
		// A service older than cancelling: the picture is still made, which the shopper should know.
		writeError(w, http.StatusNotImplemented, "This picture cannot be cancelled; it will be ready in a moment.")
		return
	}
	if err != nil {
		h.writeServiceError(w, "CancelImageGeneration", err)
		return
	}
	h.writeStatus(w, id, st)
}

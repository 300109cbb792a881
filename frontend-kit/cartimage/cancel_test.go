package cartimage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// startedBy generates as the session user and returns the id and cancel token the page receives.
func startedBy(t *testing.T, h http.Handler, user string) (string, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "/cart/image/generate", strings.NewReader(`{"style":"modern"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Session", user)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var answer generateResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.CancelToken == "" {
		t.Fatalf("generate answered %d %q: no cancel token", rec.Code, rec.Body.String())
	}
	return answer.ID, answer.CancelToken
}

func TestCancelStopsOnlyTheSessionsOwnGeneration(t *testing.T) {
	other := Config{CancelKey: []byte("another replica's key")}
	cases := []struct {
		name      string
		user      string // who asks to cancel ("" = no session)
		id        string // "" = the started generation
		token     string // "" = the token generate gave; "-" = none
		key       []byte // a different key at cancel time (another replica without the shared key)
		err       error
		wantCode  int
		wantCalls int
	}{
		{name: "own generation", user: session, wantCode: 200, wantCalls: 1},
		{name: "another session with the token", user: "someone-else", wantCode: 403},
		{name: "no token", user: session, token: "-", wantCode: 403},
		{name: "forged token", user: session, token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", wantCode: 403},
		{name: "token of another id", user: session, id: "gen-2", wantCode: 403},
		{name: "malformed id", user: session, id: "../x", wantCode: 404},
		{name: "no session", user: "", wantCode: 401},
		{name: "another replica's key", user: session, key: other.CancelKey, wantCode: 403},
		{name: "service refuses", user: session, err: refused(codes.NotFound, "no generation", "GENERATION_NOT_FOUND"),
			wantCode: 404, wantCalls: 1},
		{name: "service without cancelling", user: session, err: refused(codes.Unimplemented, "unknown method", "UNIMPLEMENTED"),
			wantCode: 501, wantCalls: 1},
		{name: "service down", user: session, err: refused(codes.Unavailable, "down", "UNAVAILABLE"), wantCode: 503, wantCalls: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := &fakeService{generation: Generation{ID: "gen-1", Status: "processing"},
				status: Status{Status: "failed", Error: "cancelled"}}
			key := []byte("shared key of every replica")
			id, token := startedBy(t, newHandler(svc, func(c *Config) { c.CancelKey = key }), session)
			if tc.key != nil {
				key = tc.key
			}
			svc.err = tc.err
			if tc.id != "" {
				id = tc.id
			}
			switch tc.token {
			case "-":
				token = ""
			case "":
			default:
				token = tc.token
			}
			req := httptest.NewRequest("POST", "/cart/image/cancel/"+url.PathEscape(id)+"?token="+url.QueryEscape(token), nil)
			req.Header.Set("X-Test-Session", tc.user)
			rec := httptest.NewRecorder()
			newHandler(svc, func(c *Config) { c.CancelKey = key }).ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("code %d (%s), want %d", rec.Code, rec.Body.String(), tc.wantCode)
			}
			if got := len(svc.cancelled); got != tc.wantCalls {
				t.Fatalf("CancelImageGeneration called %d times, want %d", got, tc.wantCalls)
			}
			if tc.wantCalls == 1 && svc.cancelled[0] != "gen-1" {
				t.Errorf("cancelled %q, want gen-1", svc.cancelled[0])
			}
			if tc.wantCode == 200 {
				var st statusResponse
				json.Unmarshal(rec.Body.Bytes(), &st)
				if st.Status != "failed" || st.Error != "cancelled" {
					t.Errorf("answer %+v, want the service's status", st)
				}
			}
		})
	}
}

func TestStatusCarriesQueuePositionEstimateAndVariants(t *testing.T) {
	cases := []struct {
		name   string
		status Status
		want   string
	}{
		{name: "queued", status: Status{Status: "processing", QueuePosition: 12, EstimatedSeconds: 40},
			want: `{"status":"processing","progress":0,"queue_position":12,"estimated_seconds":40}`},
		{name: "not queued, no estimate", status: Status{Status: "processing", Progress: 30},
			want: `{"status":"processing","progress":30}`},
		{name: "negative numbers are dropped", status: Status{Status: "processing", QueuePosition: -1, EstimatedSeconds: -5},
			want: `{"status":"processing","progress":0}`},
		{name: "completed with a variant", status: Status{Status: "completed", Progress: 100, ImageURL: "https://b/x.jpg",
			Variants: []Variant{{Width: 512, URL: "https://b/x-w512.webp", MimeType: "image/webp"}}},
			want: `{"status":"completed","progress":100,"image_url":"https://b/x.jpg","variants":[{"width":512,"url":"https://b/x-w512.webp","mime_type":"image/webp"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := do(t, newHandler(&fakeService{status: tc.status}), "GET", "/cart/image/status/gen-1", "", nil)
			if got := rec.Body.String(); rec.Code != 200 || got != tc.want+"\n" {
				t.Fatalf("got %d %s, want %s", rec.Code, got, tc.want)
			}
		})
	}
}

package bench

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dynogrid/dynogrid/router/loadgen"
)

// TestHAProxyAsRouterAddsTheRoutersHeaders checks the peer BenchmarkCPU calls HAProxy
// with the router's headers: each request reaches the backend with the five headers
// dyno-router adds, a well-formed X-Request-Id of the client's kept and any other
// replaced, as the router does.
func TestHAProxyAsRouterAddsTheRoutersHeaders(t *testing.T) {
	requireHAProxy(t)
	got := make(chan http.Header, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer backend.Close()
	p := startHAProxyAsRouter(t, []*loadgen.Backend{{Addr: backend.Listener.Addr().String()}}, -1)
	_, port, _ := strings.Cut(p.addr, ":")
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	for _, tc := range []struct {
		name, sentID string
		keepsID      bool
	}{
		{"no request ID", "", false},
		{"a well-formed request ID", "abcdefghij0123456789+/=-", true},
		{"a request ID too short", "short", false},
		{"a request ID with a space", "abcdefghij 0123456789", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
			req.Header.Set("X-Forwarded-For", "192.0.2.7")
			if tc.sentID != "" {
				req.Header.Set("X-Request-Id", tc.sentID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := <-got

			id := h.Get("X-Request-Id")
			if tc.keepsID && id != tc.sentID {
				t.Errorf("X-Request-Id = %q, want the client's %q", id, tc.sentID)
			}
			if !tc.keepsID && !uuid.MatchString(id) {
				t.Errorf("X-Request-Id = %q, want a new UUID", id)
			}
			start, ok := strings.CutPrefix(h.Get("X-Request-Start"), "t=")
			if us, err := strconv.ParseInt(start, 10, 64); !ok || err != nil || us < 1e15 {
				t.Errorf("X-Request-Start = %q, want t=<Unix microseconds>", h.Get("X-Request-Start"))
			}
			if xff := strings.Join(h.Values("X-Forwarded-For"), ", "); xff != "192.0.2.7, 127.0.0.1" {
				t.Errorf("X-Forwarded-For = %q, want the client's list with its address appended", xff)
			}
			if proto := h.Get("X-Forwarded-Proto"); proto != "http" {
				t.Errorf("X-Forwarded-Proto = %q, want http", proto)
			}
			if fp := h.Get("X-Forwarded-Port"); fp != port {
				t.Errorf("X-Forwarded-Port = %q, want %s", fp, port)
			}
		})
	}
}

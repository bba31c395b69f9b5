package router

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestProfilesServedToLoopbackOnly: the metrics address may be the host's own, for the
// autoscaler; Go's profiles there answer loopback clients only, /metrics everyone.
func TestProfilesServedToLoopbackOnly(t *testing.T) {
	t.Parallel()
	r, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	h := r.metricsHandler()
	for _, tc := range []struct {
		path, remote string
		want         int
	}{
		{"/debug/pprof/", "127.0.0.1:5000", http.StatusOK},
		{"/debug/pprof/", "[::1]:5000", http.StatusOK},
		{"/debug/pprof/", "192.0.2.7:5000", http.StatusForbidden},
		{"/debug/pprof/profile?seconds=1", "192.0.2.7:5000", http.StatusForbidden},
		{"/debug/pprof/trace?seconds=1", "10.0.0.2:5000", http.StatusForbidden},
		{"/metrics", "192.0.2.7:5000", http.StatusOK},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.RemoteAddr = tc.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("GET %s from %s: %d, want %d", tc.path, tc.remote, rec.Code, tc.want)
		}
	}
}

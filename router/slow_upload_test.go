package router

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSlowUploadBeyondThePrefetch: a body longer than the prefetch streams to the dyno,
// which then waits on the client. A client that stops sending is cut off after the body
// timeout (408), and one the dyno is still waiting for when the request timeout passes
// is answered 408 too, its timeout: neither is the app's H12, and the dyno is free for
// the next request at once.
func TestSlowUploadBeyondThePrefetch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		bodyIdle, response time.Duration
	}{
		{"client stops sending", 300 * time.Millisecond, time.Minute},
		{"dyno still waits for the body at the request timeout", time.Minute, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				io.WriteString(w, strings.Repeat("x", int(min(n, 1))))
			})
			tr := startRouter(t, func(c *Config) {
				c.BodyPrefetch = 1024
				c.BodyReadTimeout = tc.bodyIdle
				c.RequestTimeout = tc.response
			})
			tr.SetApp("su", []Instance{b.instance("web.1")})
			c, err := net.Dial("tcp", tr.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// More than the prefetch, then nothing.
			io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: su.localhost\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("b", 4096))
			start := time.Now()
			if s, err := readStatus(c); s != http.StatusRequestTimeout {
				t.Fatalf("slow upload: status %d (%v), want 408", s, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("408 came after %s", d)
			}
			waitFor(t, "the 408 logged as the client's", func() bool { return tr.logHas("status=408", `path="/upload"`) })
			if tr.logHas("code=H12") {
				t.Fatal("a slow upload was charged to the app as H12")
			}
			if resp, _ := tr.do(t, "GET", "su.localhost", "/next", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("next request: %d", resp.StatusCode)
			}
		})
	}
}

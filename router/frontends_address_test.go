package router

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// A client of a dual-stack listener is named by its IPv4 or IPv6 address, on both front ends.
func TestBothFrontEndsNameTheClientAlikeOnADualStackListener(t *testing.T) {
	t.Parallel()
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) []string {
		ln, err := net.Listen("tcp", "[::]:0")
		if err != nil {
			t.Skip("no IPv6:", err)
		}
		t.Cleanup(func() { ln.Close() })
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		forwarded := make(chan http.Header, 1)
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { forwarded <- r.Header })
		tr := startFrontEnd(t, loop, func(c *Config) { c.Listener = ln })
		tr.SetApp("ds", []Instance{b.instance("web.1")})
		var seen []string
		for _, host := range []string{"127.0.0.1", "::1"} {
			answer := exchange(t, net.JoinHostPort(host, port), "GET /"+host+" HTTP/1.1\r\nHost: ds.localhost\r\n\r\n", "GET")
			if !strings.HasPrefix(answer, "200 ") {
				t.Fatalf("over %s: %s", host, answer)
			}
			waitFor(t, "the request logged", func() bool { return accessLineFor(tr, "/"+host) != "" })
			h, fwd := <-forwarded, accessField(t, accessLineFor(tr, "/"+host), "fwd")
			if h.Get("X-Forwarded-For") != host || h.Get("X-Forwarded-Port") != port || fwd != host {
				t.Errorf("over %s: X-Forwarded-For %q, X-Forwarded-Port %q, logged fwd=%q; want %s, %s, %s",
					host, h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Port"), fwd, host, port, host)
			}
			seen = append(seen, host+": X-Forwarded-For: "+h.Get("X-Forwarded-For")+"; logged fwd="+fwd)
		}
		return seen
	})
	sameLines(t, "client address", g, l)
}

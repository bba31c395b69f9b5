package router

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// A client's faults (408, H27, 413, 431) and an HTTP/1.0 request are answered alike on both front ends.
func TestBothFrontEndsAnswerClientErrorsAlike(t *testing.T) {
	t.Parallel()
	type seen struct {
		answers, lines []string
		metrics        map[string]float64
	}
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) seen {
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
		tr := startFrontEnd(t, loop, func(c *Config) {
			c.BodyReadTimeout = 200 * time.Millisecond
			c.MaxBodyBytes = 1000
			c.MaxHeaderBytes = 1024
		})
		tr.SetApp("ce", []Instance{b.instance("web.1")})
		var s seen
		answered := func(what, answer string) { s.answers = append(s.answers, what+": "+answer) }
		// The body stops coming.
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "POST /slowbody HTTP/1.1\r\nHost: ce.localhost\r\nContent-Length: 10\r\n\r\nabc")
		answered("body too slow", readAnswer(br, "POST"))
		// The client half-closes mid-body.
		c, br = clientConnTo(t, tr.Addr())
		io.WriteString(c, "POST /cutbody HTTP/1.1\r\nHost: ce.localhost\r\nContent-Length: 10\r\n\r\nabc")
		c.(*net.TCPConn).CloseWrite()
		answered("body cut short", readAnswer(br, "POST"))
		answered("body too large", exchange(t, tr.Addr(), "POST /big HTTP/1.1\r\nHost: ce.localhost\r\nContent-Length: 5000\r\n\r\n", "POST"))
		answered("head too large", exchange(t, tr.Addr(), "GET /hdr HTTP/1.1\r\nHost: ce.localhost\r\nX-Big: "+strings.Repeat("x", 6000)+"\r\n\r\n", "GET"))
		// The event loop hands this connection to the goroutine server at its second request.
		c, br = clientConnTo(t, tr.Addr())
		io.WriteString(c, "GET /first HTTP/1.1\r\nHost: ce.localhost\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n"+
			"GET /second HTTP/1.0\r\nHost: ce.localhost\r\nX-Forwarded-For: 8.8.8.8\r\n\r\n")
		answered("HTTP/1.1", readAnswer(br, "GET"))
		answered("then HTTP/1.0", readAnswer(br, "GET"))
		waitFor(t, "every request logged (but the one whose head was too large)", func() bool { return len(accessLines(tr)) == 5 })
		waitAppIdle(t, tr, "ce")
		for _, l := range accessLines(tr) {
			s.lines = append(s.lines, withoutTimings(l))
		}
		slices.Sort(s.lines)
		s.metrics = routerMetrics(t, tr.Router)
		return s
	})
	sameLines(t, "answer", g.answers, l.answers)
	sameLines(t, "access line (sorted)", g.lines, l.lines)
	sameMetrics(t, g.metrics, l.metrics)
}

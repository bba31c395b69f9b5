package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A dyno that closes its idle kept-alive connections gets each request on a new one, on both front ends.
func TestBothFrontEndsRedialADynoThatClosesIdleConnections(t *testing.T) {
	t.Parallel()
	const requests = 10
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) []string {
		var closed atomic.Int32
		addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			defer func() { c.Close(); closed.Add(1) }()
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				c.SetReadDeadline(time.Now().Add(30 * time.Millisecond)) // its idle timeout
			}
		})
		tr := startFrontEnd(t, loop, nil)
		tr.SetApp("ki", []Instance{rawInstance(addr, "web.1")})
		for i := range requests {
			answer := exchange(t, tr.Addr(), "GET /ki HTTP/1.1\r\nHost: ki.localhost\r\n\r\n", "GET")
			if !strings.HasPrefix(answer, "200 ") {
				t.Errorf("request %d: %s", i, answer)
			}
			waitFor(t, "the dyno closed its idle connection", func() bool { return closed.Load() == int32(i+1) })
		}
		if n := conns(); n != requests {
			t.Errorf("the dyno got %d connections for %d requests, each after the last closed, want %d", n, requests, requests)
		}
		waitFor(t, "every request logged", func() bool { return len(accessLines(tr)) == requests })
		var lines []string
		for _, l := range accessLines(tr) {
			lines = append(lines, withoutTimings(l))
		}
		return lines
	})
	sameLines(t, "access line", g, l)
}

// A dyno connect that times out after the client half-closed ends alike on both front ends.
func TestBothFrontEndsFailADialAfterTheClientHalfClosedAlike(t *testing.T) {
	type seen struct{ answer, line, up string }
	g, l := onBothFrontEnds(t, func(t *testing.T, loop bool) seen {
		addr := hangingAddr(t)
		tr := startFrontEnd(t, loop, func(c *Config) {
			c.ConnectTimeout = time.Second
			c.DownBackoff, c.MaxDownBackoff = time.Hour, time.Hour
		})
		tr.SetApp("hc", []Instance{rawInstance(addr, "web.1")})
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "GET /hc HTTP/1.1\r\nHost: hc.localhost\r\n\r\n")
		waitFor(t, "the dial under way", func() bool { return tr.appStats("hc").Busy == 1 })
		c.(*net.TCPConn).CloseWrite()
		s := seen{answer: readAnswer(br, "GET")}
		waitFor(t, "the request logged", func() bool { return accessLineFor(tr, "/hc") != "" })
		s.line = withoutTimings(accessLineFor(tr, "/hc"))
		s.up = fmt.Sprintf("dynos up: %d", tr.appStats("hc").Up)
		return s
	})
	if g != l {
		t.Errorf("the dial failed differently:\n  goroutine server: %+v\n  event loop:       %+v", g, l)
	}
}

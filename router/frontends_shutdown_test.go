package router

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// A shutdown closes at once a connection silent for longer than http1.NewConnGrace, on both front ends.
func TestBothFrontEndsCloseAnOldSilentConnectionAtShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a connection to outlive http1.NewConnGrace")
	}
	t.Parallel()
	// Both front ends at once, so that one wait ages both connections.
	type side struct {
		name string
		stop func() error
		c    net.Conn
		br   *bufio.Reader
	}
	var sides []side
	for _, loop := range []bool{false, true} {
		b := newBackend(t, nil)
		tr, stop := runFrontEnd(t, loop, func(c *Config) {
			c.HeaderReadTimeout = 30 * time.Second
			c.ShutdownTimeout = 10 * time.Second
		})
		tr.SetApp("gr", []Instance{b.instance("web.1")})
		c, br := clientConnTo(t, tr.Addr())
		sides = append(sides, side{frontEndName(loop), stop, c, br})
	}
	time.Sleep(http1.NewConnGrace + 500*time.Millisecond)
	stopped := make(chan error, len(sides))
	for _, s := range sides {
		s.c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := s.br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: the silent connection ended before the shutdown: %v", s.name, err)
		}
		go func() { stopped <- s.stop() }()
	}
	for _, s := range sides {
		expectClosed(t, s.c, s.br, 3*time.Second, s.name+": a connection silent since before the grace, at shutdown")
	}
	for range sides {
		if err := <-stopped; err != nil {
			t.Errorf("router Run: %v", err)
		}
	}
}

// A shutdown serves the queued requests on the dyno's kept-alive connection, on both front ends.
func TestBothFrontEndsDrainTheQueueOnKeptDynoConnections(t *testing.T) {
	t.Parallel()
	onBothFrontEnds(t, func(t *testing.T, loop bool) struct{} {
		b, order, release := blockingBackend(t)
		tr, stop := runFrontEnd(t, loop, func(c *Config) { c.ShutdownTimeout = 10 * time.Second })
		tr.SetApp("dk", []Instance{b.instance("web.1")})
		// A kept-alive client connection of another app, idle: it closes once the front
		// end is shutting down.
		tr.SetApp("other", []Instance{newBackend(t, nil).instance("web.1")})
		idle, idleBr := clientConnTo(t, tr.Addr())
		io.WriteString(idle, "GET / HTTP/1.1\r\nHost: other.localhost\r\n\r\n")
		if resp, _ := readResp(t, idleBr, "GET"); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("a request of the other app: %d, close=%v", resp.StatusCode, resp.Close)
		}
		// The dyno holds the first request on the connection it then keeps; four wait.
		releaseFirst := holdAtTheDyno(t, tr, order, release, "dk.localhost", "/first")
		var readers []*bufio.Reader
		for range 4 {
			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, "GET /queued HTTP/1.1\r\nHost: dk.localhost\r\n\r\n")
			readers = append(readers, br)
		}
		waitFor(t, "four requests waiting", func() bool { return tr.waiting("dk") == 4 })
		conns := b.conns.Load()
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		expectClosed(t, idle, idleBr, 5*time.Second, "an idle connection at shutdown")
		releaseFirst()
		for i, br := range readers {
			if answer := readAnswer(br, "GET"); !strings.HasPrefix(answer, "200 OK close=true ") {
				t.Errorf("queued request %d: %s", i, answer)
			}
		}
		if err := <-stopped; err != nil {
			t.Errorf("router Run: %v", err)
		}
		if n := b.conns.Load() - conns; n != 0 {
			t.Errorf("the dyno got %d new connections for the queued requests, want none", n)
		}
		served := 0
		for _, l := range accessLines(tr) {
			if strings.Contains(l, `path="/queued"`) && accessField(t, l, "at") == "info" && accessField(t, l, "status") == "200" {
				served++
			}
		}
		if served != 4 {
			t.Errorf("%d queued requests logged as served, want 4:\n%s", served, strings.Join(accessLines(tr), "\n"))
		}
		return struct{}{}
	})
}

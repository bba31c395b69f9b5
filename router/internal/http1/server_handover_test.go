package http1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/internal/sysconn"
)

// connServer returns a server with no listener, for connections handed over
// (ServeConn), and shuts it down when the test ends.
func connServer(t *testing.T, h Handler, headerTimeout time.Duration) *Server {
	t.Helper()
	s := NewServer(nil, h, Config{
		HeaderReadTimeout: headerTimeout,
		IdleTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		BodyReadTimeout:   5 * time.Second,
		MaxHeaderBytes:    32 << 10,
		Logger:            hclog.NewNullLogger(),
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// handover connects a client to s over loopback: the client sends first, which the
// test reads of the server's end, as an event loop would, before it hands that end and
// those bytes to s. The bytes' buffer is overwritten once ServeConn returns, as a
// loop reusing it would.
func handover(t *testing.T, s *Server, first string, wrap bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, br := dial(t, ln.Addr().String())
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, first); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadFull(sc, buf[:len(first)])
	if err != nil {
		sc.Close()
		t.Fatalf("reading the client's first bytes: %v", err)
	}
	_ = sc.SetReadDeadline(time.Time{})
	if wrap {
		sc = sysconn.Wrap(sc)
	}
	s.ServeConn(sc, buf[:n])
	for i := range buf {
		buf[i] = 'x'
	}
	return c, br
}

// echoBody answers each request with its method, path and body; a request to /park
// parks briefly and answers with what Park returned.
func echoBody(w *Response, req *http.Request) {
	if req.URL.Path == "/park" {
		var woken atomic.Int32
		switch w.Park(time.Now().Add(20*time.Millisecond), &woken) {
		case Woken:
			io.WriteString(w, "woken")
		case Left:
			io.WriteString(w, "left")
		case Unwatched:
			io.WriteString(w, "unwatched")
		}
		return
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	io.WriteString(w, req.Method+" "+req.URL.Path+" "+string(body))
}

// A connection handed over with what was read of it gets each request answered, its
// body read whole, and is kept alive, whether the bytes read hold part of a head, a
// head, a body or the next request; on a server that serves only such connections and
// on one that accepts its own.
func TestServeConnServesWhatWasReadFirst(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("b", 10000)
	parkFilling := "GET /park HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
	parkFilling = strings.Replace(parkFilling, "X-Pad: ", "X-Pad: "+strings.Repeat("p", readerSize-len(parkFilling)), 1)
	cases := []struct {
		name      string
		first     string // read before the handover
		expect100 bool   // the client waits for 100 Continue before it sends rest
		rest      string // sent after the handover
		wrap      bool   // the connection is handed over as a sysconn.Conn
		want      []string
	}{
		{name: "part of a head", first: "GET /a HTTP/1.1\r\nHo", rest: "st: x\r\n\r\n", want: []string{"GET /a "}},
		{name: "part of a start line", first: "G", rest: "ET /a HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{"GET /a "}},
		{name: "a head", first: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{"GET /a "}},
		{name: "a head, wrapped", first: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", wrap: true, want: []string{"GET /a "}},
		{name: "blank lines and a head", first: "\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{"GET /a "}},
		{name: "a head and its body", first: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", want: []string{"POST /a hello"}},
		{name: "a head and part of its body", first: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello", rest: "world", want: []string{"POST /a helloworld"}},
		{name: "a head and part of a chunked body", first: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", rest: "lo\r\n0\r\n\r\n", want: []string{"POST /a hello"}},
		{name: "more than a read buffer", first: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n" + long, want: []string{"POST /a " + long}},
		{name: "a head that waits for 100 Continue", first: "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", expect100: true, rest: "hello", want: []string{"POST /a hello"}},
		{name: "two pipelined requests", first: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", want: []string{"GET /a ", "POST /b hi"}},
		{name: "a request and part of the next", first: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n", rest: "Host: x\r\n\r\n", want: []string{"GET /a ", "GET /b "}},
		// Park sees the bytes handed over: with the next request among them, the client
		// cannot be watched; once they are read, it can.
		{name: "a request to park and the next", first: "GET /park HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{"unwatched", "GET /b "}},
		{name: "a request to park filling a read buffer, and the next", first: parkFilling + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{"unwatched", "GET /b "}},
		{name: "a request to park", first: "GET /park HTTP/1.1\r\nHost: x\r\n\r\n", want: []string{"woken"}},
	}
	servers := []struct {
		name  string
		start func(t *testing.T) *Server
	}{
		{"handed over only", func(t *testing.T) *Server { return connServer(t, handlerFunc(echoBody), 5*time.Second) }},
		{"serving too", func(t *testing.T) *Server { s, _ := startServer(t, handlerFunc(echoBody)); return s }},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			s := srv.start(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					c, br := handover(t, s, tc.first, tc.wrap)
					if tc.expect100 {
						if code, _ := read(t, br); code != http.StatusContinue {
							t.Fatalf("got %d, want 100", code)
						}
					}
					io.WriteString(c, tc.rest)
					for _, want := range tc.want {
						if code, body := read(t, br); code != 200 || body != want {
							t.Fatalf("got %d %q, want 200 %q", code, body, want)
						}
					}
					// Kept alive: the park request left no read deadline behind either.
					io.WriteString(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
					if code, body := read(t, br); code != 200 || body != "GET /again " {
						t.Fatalf("got %d %q on the kept-alive connection", code, body)
					}
				})
			}
		})
	}
}

// A client whose request waits parked on a handed-over connection is seen leaving.
func TestServeConnParkSeesTheClientLeave(t *testing.T) {
	t.Parallel()
	parked := make(chan ParkResult, 1)
	s := connServer(t, handlerFunc(func(w *Response, req *http.Request) {
		var woken atomic.Int32
		parked <- w.Park(time.Now().Add(10*time.Second), &woken)
	}), 5*time.Second)
	c, br := handover(t, s, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", false)
	c.Close()
	if got := <-parked; got != Left {
		t.Fatalf("Park returned %d, want Left (%d)", got, Left)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a response came after the client left")
	}
}

// The header timeout applies to a head handed over in part, from the handover.
func TestServeConnHeaderTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	s := connServer(t, echo{}, timeout)
	start := time.Now()
	_, br := handover(t, s, "GET /a HTTP/1.1\r\nHost: x\r\n", false)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection was not closed (%v)", err)
	}
	if d := time.Since(start); d < timeout {
		t.Fatalf("closed after %s, before the header timeout", d)
	}
}

// Shutdown of a server that only has handed-over connections closes the idle ones at
// once and lets a busy one finish its response, which closes its connection.
func TestServeConnShutdown(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	h := handlerFunc(func(w *Response, req *http.Request) {
		if req.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, req.URL.Path)
	})
	s := NewServer(nil, h, Config{
		HeaderReadTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		BodyReadTimeout:   5 * time.Second,
		MaxHeaderBytes:    32 << 10,
		Logger:            hclog.NewNullLogger(),
	})
	if err := s.Serve(); err == nil {
		t.Fatal("Serve with no listener returned nil")
	}

	idle, idleBR := handover(t, s, "GET /idle HTTP/1.1\r\nHost: x\r\n\r\n", false)
	if code, body := read(t, idleBR); code != 200 || body != "/idle" {
		t.Fatalf("got %d %q", code, body)
	}
	testutil.WaitFor(t, 5*time.Second, "the first connection idle", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for cc := range s.conns {
			if cc.remote == idle.LocalAddr().String() {
				return cc.state.Load() == connIdle
			}
		}
		return false
	})
	_, busyBR := handover(t, s, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", false)
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Fatalf("the idle connection was not closed (%v)", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a response was under way", err)
	default:
	}
	close(release)
	resp, err := http.ReadResponse(busyBR, nil)
	if err != nil {
		t.Fatalf("the busy connection's response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "/slow" || !resp.Close {
		t.Fatalf("got %d %q (close %v), want 200 \"/slow\" closing the connection", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// A connection handed over once Shutdown began is closed unanswered.
func TestServeConnAfterShutdown(t *testing.T) {
	t.Parallel()
	s := connServer(t, echo{}, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_, br := handover(t, s, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", false)
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read %q (%v), want the connection closed", b, err)
	}
}

// Shutdown does not wait for an accept loop that never ran.
func TestShutdownWithoutServe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, echo{}, Config{Logger: hclog.NewNullLogger()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("shutdown: %v, context: %v", err, ctx.Err())
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the listener is still open (%v)", err)
	}
	// Serve after Shutdown returns at once.
	if err := s.Serve(); err != nil {
		t.Fatalf("serve after shutdown: %v", err)
	}
}

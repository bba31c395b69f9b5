package http1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// echo answers each request with its method and path, or 404 for /missing.
type echo struct{}

func (echo) ServeHTTP1(w *Response, req *http.Request) {
	if req.URL.Path == "/missing" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	io.WriteString(w, req.Method+" "+req.URL.Path)
}

func startServer(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, h, Config{
		HeaderReadTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		BodyReadTimeout:   5 * time.Second,
		MaxHeaderBytes:    32 << 10,
		Logger:            hclog.NewNullLogger(),
	})
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func read(t *testing.T, br *bufio.Reader) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return resp.StatusCode, string(body)
}

// Pipelined requests on one kept-alive connection are answered in order.
func TestServerPipelines(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, echo{})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET /1", "POST /2", "GET /3"} {
		if code, body := read(t, br); code != 200 || body != want {
			t.Fatalf("got %d %q, want 200 %q", code, body, want)
		}
	}
}

// A request with ambiguous framing gets 400 and the connection closes: nothing after
// it is read as a request.
func TestServerRefusesAmbiguousFraming(t *testing.T) {
	t.Parallel()
	handled := make(chan string, 2)
	_, addr := startServer(t, handlerFunc(func(w *Response, req *http.Request) {
		handled <- req.URL.Path
		w.WriteHeader(http.StatusNoContent)
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	if code, _ := read(t, br); code != http.StatusBadRequest {
		t.Fatalf("got %d, want 400", code)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection stayed open after a refused request (%v)", err)
	}
	select {
	case p := <-handled:
		t.Fatalf("the handler saw %s", p)
	default:
	}
}

type handlerFunc func(*Response, *http.Request)

func (f handlerFunc) ServeHTTP1(w *Response, req *http.Request) { f(w, req) }

// A connection that once sent a large head must not keep a buffer that size while it
// idles, or many idle connections hold many times the memory they need.
func TestIdleConnectionKeepsNoLargeHeadBuffer(t *testing.T) {
	t.Parallel()
	s, addr := startServer(t, echo{})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /missing HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("a", 30000)+"\r\n\r\n")
	if code, _ := read(t, br); code != 404 {
		t.Fatalf("got %d", code)
	}
	var cc *clientConn
	testutil.WaitFor(t, 5*time.Second, "connection idle", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for k := range s.conns {
			cc = k
		}
		return cc != nil && cc.state.Load() == connIdle
	})
	if n := cap(cc.head); n > 4096 {
		t.Fatalf("idle connection keeps a %d-byte head buffer", n)
	}
}

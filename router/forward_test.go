package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Whether a request whose forward failed may still be routed: never twice to a dyno
// unless its method allows it, and never with a body that is gone.
func TestResendable(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	lost := io.ErrUnexpectedEOF
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	mem := &bodySource{mem: []byte("x")}
	streamed := &bodySource{rest: strings.NewReader("x")}
	lent := &bodySource{rest: strings.NewReader("x")}
	lent.lent.Store(true)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name     string
		method   string
		ctx      context.Context
		body     *bodySource
		notOwner bool
		wrote    bool
		err      error
		want     bool
	}{
		{"handed back", "POST", nil, mem, true, true, nil, true},
		{"refused, nothing written", "POST", nil, mem, false, false, refused, true},
		// The transport's second try, after the first went out on a kept-alive
		// connection that failed, was refused: the peer may have the request.
		{"refused after a write", "POST", nil, mem, false, true, refused, false},
		{"refused after a write, idempotent", "PUT", nil, mem, false, true, refused, true},
		{"lost, idempotent", "GET", nil, mem, false, true, lost, true},
		{"lost", "POST", nil, mem, false, true, lost, false},
		{"timed out", "GET", nil, mem, false, true, timeout, false},
		{"lost, streamed body unread", "POST", nil, streamed, false, true, lost, true},
		{"streamed body read by the peer", "POST", nil, lent, true, true, nil, false},
		{"the client left", "GET", gone, mem, true, false, refused, false},
	} {
		ctx := c.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		req, _ := http.NewRequestWithContext(ctx, c.method, "http://app/", nil)
		if got := resendable(req, c.body, c.notOwner, c.wrote, c.err); got != c.want {
			t.Errorf("%s: resendable %v, want %v", c.name, got, c.want)
		}
	}
}

// A POST with an Idempotency-Key goes to a peer on a kept-alive connection that fails
// once the request is written; the peer transport tries it again on a new connection,
// which the peer, now gone, refuses. The peer may have the request: it is answered
// H10 at once, not held to be served here once the dynos are taken over.
func TestForwardWrittenThenRefusedIsNotRouted(t *testing.T) {
	t.Parallel()
	peer := listen(t)
	got := make(chan string, 2)
	go func() {
		c, err := peer.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		got <- req.Method
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if req, err = http.ReadRequest(br); err == nil {
			io.Copy(io.Discard, req.Body)
			got <- req.Method
		}
		peer.Close() // gone, with the request
	}()
	tr := startRouter(t, nil)
	forwardApp(tr, "twice", peer.Addr().String())
	tr.cluster.addrs["peer"] = peer.Addr().String()
	if resp, body := tr.do(t, "GET", "twice.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("the first forward: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	resp, _ := tr.do(t, "POST", "twice.localhost", "/pay", strings.NewReader("once"), http.Header{"Idempotency-Key": {"k1"}})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a POST the peer may have got: %d, want H10's 503", resp.StatusCode)
	}
	if held := time.Since(start); held >= takeoverWait/2 {
		t.Errorf("the POST was held %s, to be served again here", held.Round(time.Millisecond))
	}
	if m := <-got + " " + <-got; m != "GET POST" {
		t.Errorf("the peer got %s", m)
	}
}

package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests of the router's client side (router/internal/http1) through a running router,
// with raw client connections.

// clientConnTo dials the router; reads and writes fail after 10 s.
func clientConnTo(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readResp reads one response and its body off br.
func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(b)
}

// expectClosed fails the test unless the router closes c (a read ends with EOF or a
// reset) within the time given; what names the connection.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader, within time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b, err := br.ReadByte()
	switch {
	case err == nil:
		t.Fatalf("%s: read a byte %q instead of the end", what, b)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("%s: still open after %s", what, within)
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		io.WriteString(w, "got "+string(body))
	})
	tr := startRouter(t, func(c *Config) { c.MaxBodyBytes = 1000 })
	tr.SetApp("ex", []Instance{b.instance("web.1")})

	t.Run("forwarded", func(t *testing.T) {
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "POST /up HTTP/1.1\r\nHost: ex.localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		// The client sends nothing more until the router says to.
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("waiting for 100 Continue: %v", err)
		}
		if resp.StatusCode != 100 {
			t.Fatalf("got %d before the body was sent, want 100", resp.StatusCode)
		}
		io.WriteString(c, "hello")
		resp, body := readResp(t, br, "POST")
		if resp.StatusCode != 200 || body != "got hello" {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, "got hello")
		}
		// The connection carries another request.
		io.WriteString(c, "GET /again HTTP/1.1\r\nHost: ex.localhost\r\n\r\n")
		if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("second request: %d", resp.StatusCode)
		}
	})
	// Requests answered without forwarding get no 100: the client must not send a body
	// nobody reads. The connection closes after the answer, as the router cannot know
	// whether the body follows.
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"unknown host", "POST / HTTP/1.1\r\nHost: nope.localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 404},
		{"body too large", "POST / HTTP/1.1\r\nHost: ex.localhost\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n", 413},
		{"other expectation", "POST / HTTP/1.1\r\nHost: ex.localhost\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\n", 417},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, tc.head)
			resp, _ := readResp(t, br, "POST")
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d, want %d (and no 100 before it)", resp.StatusCode, tc.status)
			}
			expectClosed(t, c, br, 5*time.Second, "connection after a refused expectation")
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(bodies, "|") != "hello|" {
		t.Fatalf("dyno saw bodies %q, want only the forwarded request's (and the GET's)", bodies)
	}
}

func TestHTTP10Clients(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			// No length: flushed, so the router gets it chunked.
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			return
		}
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "fixed")
	})
	tr := startRouter(t, nil)
	tr.SetApp("old", []Instance{b.instance("web.1")})

	t.Run("no keep-alive, no length", func(t *testing.T) {
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "GET /stream HTTP/1.0\r\nHost: old.localhost\r\n\r\n")
		resp, body := readResp(t, br, "GET")
		if resp.StatusCode != 200 || body != "part1,part2" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 || !resp.Close {
			t.Fatalf("HTTP/1.0 response framed by length %d, encoding %q, close %v; want delimited by the close",
				resp.ContentLength, resp.TransferEncoding, resp.Close)
		}
		expectClosed(t, c, br, 5*time.Second, "connection")
	})
	t.Run("no keep-alive, length", func(t *testing.T) {
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "GET /fixed HTTP/1.0\r\nHost: old.localhost\r\n\r\n")
		resp, body := readResp(t, br, "GET")
		if resp.StatusCode != 200 || body != "fixed" || resp.ContentLength != 5 {
			t.Fatalf("got %d %q length %d", resp.StatusCode, body, resp.ContentLength)
		}
		// (http.ReadResponse takes "Connection: close" out of the header into Close.)
		if !resp.Close {
			t.Fatalf("HTTP/1.0 response without Connection: close")
		}
		expectClosed(t, c, br, 5*time.Second, "connection")
	})
	t.Run("keep-alive", func(t *testing.T) {
		c, br := clientConnTo(t, tr.Addr())
		for i := 0; i < 2; i++ {
			io.WriteString(c, "GET /fixed HTTP/1.0\r\nHost: old.localhost\r\nConnection: keep-alive\r\n\r\n")
			resp, body := readResp(t, br, "GET")
			if resp.StatusCode != 200 || body != "fixed" {
				t.Fatalf("request %d: got %d %q", i, resp.StatusCode, body)
			}
			if got := resp.Header.Get("Connection"); !strings.EqualFold(got, "keep-alive") {
				t.Fatalf("request %d: Connection: %q, want keep-alive", i, got)
			}
		}
		// Without a length the response can only end with the connection.
		io.WriteString(c, "GET /stream HTTP/1.0\r\nHost: old.localhost\r\nConnection: keep-alive\r\n\r\n")
		resp, body := readResp(t, br, "GET")
		if body != "part1,part2" || !resp.Close || len(resp.TransferEncoding) != 0 {
			t.Fatalf("got %q, close %v, encoding %q", body, resp.Close, resp.TransferEncoding)
		}
		expectClosed(t, c, br, 5*time.Second, "connection")
	})
	t.Run("HEAD", func(t *testing.T) {
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "HEAD /stream HTTP/1.0\r\nHost: old.localhost\r\nConnection: keep-alive\r\n\r\n")
		resp, _ := readResp(t, br, "HEAD")
		if resp.StatusCode != 200 {
			t.Fatalf("HEAD: %d", resp.StatusCode)
		}
		io.WriteString(c, "GET /fixed HTTP/1.0\r\nHost: old.localhost\r\n\r\n")
		if resp, body := readResp(t, br, "GET"); body != "fixed" {
			t.Fatalf("after HEAD: %d %q", resp.StatusCode, body)
		}
	})
}

// TestUnreadBodyThenNextRequest: a body the router answers without forwarding is read
// past, and the connection serves the next request; one too long to read past closes it.
func TestUnreadBodyThenNextRequest(t *testing.T) {
	t.Parallel()
	b, seen := recordingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("nb", []Instance{b.instance("web.1")})
	// The bodies look like requests: if the router did not read past them, the dyno
	// would get /smuggled.
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: nb.localhost\r\n\r\n"
	chunked := strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n" + smuggled + "\r\n0\r\nT: 1\r\n\r\n"
	for _, tc := range []struct{ name, req string }{
		{"length", "POST / HTTP/1.1\r\nHost: nope.localhost\r\nContent-Length: " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled},
		{"chunked", "POST / HTTP/1.1\r\nHost: nope.localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked},
	} {
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, tc.req)
		if resp, _ := readResp(t, br, "POST"); resp.StatusCode != 404 {
			t.Fatalf("%s: unknown host: %d", tc.name, resp.StatusCode)
		}
		io.WriteString(c, "POST /next HTTP/1.1\r\nHost: nb.localhost\r\nContent-Length: 2\r\n\r\nok")
		if resp, _ := readResp(t, br, "POST"); resp.StatusCode != 200 {
			t.Fatalf("%s: next request: %d", tc.name, resp.StatusCode)
		}
	}
	// A body past the discard limit is not read: the connection closes after the answer.
	// (The client sends less than the router reads past and lingers on, so that the
	// close is no reset that could destroy the answer in flight.)
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: nope.localhost\r\nContent-Length: 10000000\r\n\r\n")
	go func() {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 6; i++ {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	if resp, _ := readResp(t, br, "POST"); resp.StatusCode != 404 {
		t.Fatalf("long body: %d", resp.StatusCode)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection with a long unread body still open: %v", err)
	}
	if got := seen(); strings.Join(got, "|") != "POST /next=ok|POST /next=ok" {
		t.Fatalf("dyno saw %q", got)
	}
}

// TestDynoHeadersCannotSplitResponses: a dyno's header value with a CR, a LF or a
// NUL, or a folded line, must not become a header or a response of its own.
func TestDynoHeadersCannotSplitResponses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, head string }{
		{"bare CR", "HTTP/1.1 200 OK\r\nX-A: a\rInjected: yes\r\nContent-Length: 2\r\n\r\n"},
		{"CR CR LF", "HTTP/1.1 200 OK\r\nX-A: a\r\r\nInjected: yes\r\nContent-Length: 2\r\n\r\n"},
		{"NUL", "HTTP/1.1 200 OK\r\nX-A: a\x00Injected: yes\r\nContent-Length: 2\r\n\r\n"},
		{"folded", "HTTP/1.1 200 OK\r\nX-A: a\r\n Injected: yes\r\nContent-Length: 2\r\n\r\n"},
		{"CR in reason", "HTTP/1.1 200 OK\rInjected: yes\r\nContent-Length: 2\r\n\r\n"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 50\r\n\r\n"},
		{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				http.ReadRequest(br)
				io.WriteString(c, tc.head+"okHTTP/1.1 200 OK\r\nInjected: yes\r\nContent-Length: 0\r\n\r\n")
				c.Close()
			})
			tr := startRouter(t, nil)
			tr.SetApp("sp", []Instance{rawInstance(addr, "web.1")})
			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: sp.localhost\r\n\r\n")
			resp, body := readResp(t, br, "GET")
			for k, vs := range resp.Header {
				for _, v := range vs {
					if strings.Contains(k, "Injected") || strings.Contains(v, "\r") || strings.Contains(v, "\n") {
						t.Fatalf("client got header %q: %q", k, v)
					}
				}
			}
			t.Logf("client got %d %q", resp.StatusCode, body)
			switch {
			case resp.StatusCode == 502 && strings.Contains(body, "H17"):
				waitFor(t, "H17 logged", func() bool { return tr.logHas("code=H17") })
			case resp.StatusCode == 200 && body == "ok":
			default:
				t.Fatalf("got %d %q, want 502 H17 or the sanitised 200", resp.StatusCode, body)
			}
			// Nothing the dyno sent after its response reaches the client.
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\n")
			if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 404 || resp.Header.Get("Injected") != "" {
				t.Fatalf("next response: %d %v", resp.StatusCode, resp.Header)
			}
		})
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	const idle = 300 * time.Millisecond
	tr := startRouter(t, func(c *Config) { c.IdleTimeout = idle; c.HeaderReadTimeout = 5 * time.Second })
	tr.SetApp("idle", []Instance{b.instance("web.1")})
	c, br := clientConnTo(t, tr.Addr())
	start := time.Now() // the idle time starts after the response, so after this
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: idle.localhost\r\n\r\n")
	if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	expectClosed(t, c, br, 5*time.Second, "idle connection")
	if waited := time.Since(start); waited < idle {
		t.Fatalf("idle connection closed after %s, before the idle timeout %s", waited, idle)
	}
	// A connection that sends nothing at all is closed after the header read timeout,
	// not the idle timeout.
	tr2 := startRouter(t, func(c *Config) { c.IdleTimeout = time.Minute; c.HeaderReadTimeout = idle })
	c2, br2 := clientConnTo(t, tr2.Addr())
	expectClosed(t, c2, br2, 5*time.Second, "silent new connection")
}

// TestShutdownClosesIdleAtOnce: on shutdown, keep-alive connections waiting for a
// request are closed at once, while a request in flight finishes (with Connection:
// close) and Run returns when it has.
func TestShutdownClosesIdleAtOnce(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}
	b, b2 := newBackend(t, h), newBackend(t, h)
	ln := listen(t)
	r, err := New(Config{Listener: ln, EventLoop: eventLoopByDefault(), ShutdownTimeout: 20 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.SetApp("sd", []Instance{b.instance("web.1"), b2.instance("web.2")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()

	idle, idleBr := clientConnTo(t, r.Addr())
	io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: sd.localhost\r\n\r\n")
	if resp, _ := readResp(t, idleBr, "GET"); resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	busy, busyBr := clientConnTo(t, r.Addr())
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: sd.localhost\r\n\r\n")
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatalf("the slow request never reached a dyno")
	}

	stopAt := time.Now()
	cancel()
	expectClosed(t, idle, idleBr, 3*time.Second, "idle keep-alive connection during shutdown")
	t.Logf("idle connection closed %s after shutdown began", time.Since(stopAt))
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	resp, body := readResp(t, busyBr, "GET")
	if resp.StatusCode != 200 || body != "/slow" {
		t.Fatalf("request in flight: %d %q", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Fatalf("response during shutdown lacks Connection: close")
	}
	expectClosed(t, busy, busyBr, 3*time.Second, "busy connection after its response")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after the last request")
	}
}

// TestClientLeavingWithBodyWhileQueued: H27 for a client that leaves while queued is in
// TestCodes; here the client leaves after sending a request with a body, and after a
// stray CRLF, which some clients send after a body (RFC 9112 2.2 lets servers skip it):
// neither may stop the router from noticing.
func TestClientLeavingWithBodyWhileQueued(t *testing.T) {
	t.Parallel()
	for name, tail := range map[string]string{"body": "", "stray CRLF": "\r\n"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, order, release := blockingBackend(t)
			tr := startRouter(t, nil)
			tr.SetApp("lv", []Instance{b.instance("web.1")})
			done := make(chan struct{})
			go func() { defer close(done); tr.do(t, "GET", "lv.localhost", "/held", nil, nil) }()
			<-order
			c, _ := clientConnTo(t, tr.Addr())
			io.WriteString(c, "POST /gone HTTP/1.1\r\nHost: lv.localhost\r\nContent-Length: 4\r\n\r\nbody"+tail)
			waitFor(t, "queued", func() bool { return tr.waiting("lv") == 1 })
			c.Close()
			var free sync.Once
			t.Cleanup(func() { free.Do(func() { close(release) }) }) // should the wait fail
			waitFor(t, "the request of the client that left out of the queue", func() bool { return tr.waiting("lv") == 0 })
			free.Do(func() { close(release) })
			<-done
			waitFor(t, "H27 log", func() bool { return tr.logHas("code=H27", `path="/gone"`) })
			if n := b.served.Load(); n != 1 {
				t.Fatalf("dyno served %d requests; the abandoned one must never reach it", n)
			}
		})
	}
}

// TestExpectIgnoredOnHTTP10: RFC 9110 10.1.1: "A server that receives a 100-continue
// expectation in an HTTP/1.0 request MUST ignore that expectation."
func TestExpectIgnoredOnHTTP10(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, "got "+string(body))
	})
	tr := startRouter(t, nil)
	tr.SetApp("ex10", []Instance{b.instance("web.1")})
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "POST / HTTP/1.0\r\nHost: ex10.localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
	resp, body := readResp(t, br, "POST")
	if resp.StatusCode != 200 || body != "got hello" {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, "got hello")
	}
}

// TestSlowReaderDoesNotHoldDyno: a client that sends a request and never reads the
// response must not keep the dyno busy for ever: the router stops writing to it after a
// while, settles the dyno's response and serves the next request.
func TestSlowReaderDoesNotHoldDyno(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("x"), 1<<20)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "ok")
			return
		}
		for i := 0; i < 64; i++ {
			if _, err := w.Write(big); err != nil {
				return
			}
		}
	})
	tr := startRouter(t, func(c *Config) { c.RequestTimeout = 500 * time.Millisecond; c.MaxQueueWait = 5 * time.Second })
	tr.SetApp("sr", []Instance{b.instance("web.1")})
	c, _ := clientConnTo(t, tr.Addr())
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: sr.localhost\r\n\r\n")
	waitFor(t, "dyno busy", func() bool { return b.inflight.Load() == 1 })
	start := time.Now()
	resp, body := tr.do(t, "GET", "sr.localhost", "/small", nil, nil)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("next request after %s: %d %q, want 200 (the dyno is held by a client that does not read)",
			time.Since(start), resp.StatusCode, body)
	}
}

// TestPipelinedWhileQueued: requests pipelined behind one that waits in the queue (whose
// connection is watched for the client leaving) are all served, in order.
func TestPipelinedWhileQueued(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("pq", []Instance{b.instance("web.1")})
	done := make(chan struct{})
	go func() { defer close(done); tr.do(t, "GET", "pq.localhost", "/held", nil, nil) }()
	<-order
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "POST /1 HTTP/1.1\r\nHost: pq.localhost\r\nContent-Length: 1\r\n\r\nx")
	waitFor(t, "queued", func() bool { return tr.waiting("pq") == 1 })
	// The second request arrives while the first is watched.
	io.WriteString(c, "GET /2 HTTP/1.1\r\nHost: pq.localhost\r\n\r\nGET /3 HTTP/1.1\r\nHost: pq.localhost\r\n\r\n")
	close(release)
	<-done
	for _, want := range []string{"/1", "/2", "/3"} {
		resp, body := readResp(t, br, "GET")
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
}

// TestPipelinedPartialHeadTimesOut: a head that never completes is dropped after the
// header read timeout, however it starts (blank lines before it) and whatever read
// came before it on the connection (a body prefetch, which clears its deadline).
func TestPipelinedPartialHeadTimesOut(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	tr := startRouter(t, func(c *Config) {
		c.HeaderReadTimeout = 300 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	tr.SetApp("ph", []Instance{b.instance("web.1")})
	for _, tc := range []struct{ name, raw string }{
		{"after a body, blank lines", "POST /1 HTTP/1.1\r\nHost: ph.localhost\r\nContent-Length: 2\r\n\r\nok\r\n\r\nGET /2 HTTP/1.1\r\n"},
		{"after a body, LF lines", "POST /1 HTTP/1.1\r\nHost: ph.localhost\r\nContent-Length: 2\r\n\r\nok\n\nGET /2 HTTP/1.1\r\n"},
		{"after a body", "POST /1 HTTP/1.1\r\nHost: ph.localhost\r\nContent-Length: 2\r\n\r\nokGET /2 HTTP/1.1\r\n"},
		{"blank lines", "GET /1 HTTP/1.1\r\nHost: ph.localhost\r\n\r\n\r\n\r\nGET /2 HTTP/1.1\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, tc.raw)
			if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
				t.Fatalf("first request: %d", resp.StatusCode)
			}
			expectClosed(t, c, br, 5*time.Second, "connection with a partial head")
		})
	}
	// A head that starts after the connection idled gets the header read timeout, not
	// what is left of the (longer) idle timeout.
	tr2 := startRouter(t, func(c *Config) {
		c.HeaderReadTimeout = 300 * time.Millisecond
		c.IdleTimeout = time.Minute
	})
	tr2.SetApp("ph", []Instance{b.instance("web.1")})
	for _, start := range []string{"GET /2 HTTP/1.1\r\n", "\r\n\r\nGET /2 HTTP/1.1\r\n", "\n\nGET /2 HTTP/1.1\r\n"} {
		c, br := clientConnTo(t, tr2.Addr())
		io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: ph.localhost\r\n\r\n")
		if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("first request: %d", resp.StatusCode)
		}
		io.WriteString(c, start)
		expectClosed(t, c, br, 5*time.Second, fmt.Sprintf("partial head %q after idling", start))
	}
}

// TestUnderscoreHeadersDoNotReachDyno: Rack servers (Thin, the example app's) and CGI
// turn '-' into '_' in header names, so "Content_Length" is Content-Length to Thin (a
// GET with it makes Thin wait for a body) and "X_Forwarded_For" can stand in for the
// router's own headers (Puma's CVE-2024-45614). Header names that mean a framing or
// router-set header once '_' reads as '-' must not reach the dyno.
func TestUnderscoreHeadersDoNotReachDyno(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	tr := startRouter(t, nil)
	tr.SetApp("us", []Instance{b.instance("web.1")})
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: us.localhost\r\nContent_Length: 10\r\nTransfer_Encoding: chunked\r\n"+
		"X_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Proto: https\r\nX_Request_Id: forged-forged-forged-forged\r\n"+
		"X_Request_Start: t=1\r\nX-Forwarded_Port: 1\r\nX_Ok: kept\r\n\r\n")
	if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	h := <-got
	for k := range h {
		if n := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-")); n != k && ownHeaders[n] {
			t.Errorf("dyno got %s: %q, which Rack reads as %s", k, h[k], n)
		}
	}
	if h.Get("X_Ok") != "kept" {
		t.Errorf("dyno did not get X_Ok, an underscore header that stands for no header of the router's: %v", h)
	}
}

// TestResponseTrailersRelayed: a dyno's trailer fields reach the client after the last
// chunk, sanitised like headers.
func TestResponseTrailersRelayed(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "7")
		w.Header().Set(http.TrailerPrefix+"Set-Cookie", "session=stolen") // forbidden in a trailer
	})
	tr := startRouter(t, nil)
	tr.SetApp("tl", []Instance{b.instance("web.1")})
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: tl.localhost\r\n\r\n")
	resp, body := readResp(t, br, "GET")
	if resp.StatusCode != 200 || body != "part1,part2" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Trailer.Get("X-Sum") != "42" || resp.Trailer.Get("X-Late") != "7" || resp.Trailer.Get("Set-Cookie") != "" {
		t.Fatalf("trailer %v, want X-Sum: 42 and X-Late: 7, no Set-Cookie", resp.Trailer)
	}
	// The connection is still in step.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: tl.localhost\r\n\r\n")
	if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "part1,part2" {
		t.Fatalf("second request: %d %q", resp.StatusCode, body)
	}
}

// a response after which the router will close the connection (unread body) must say
// "Connection: close" (RFC 9110 10.1.1 SHOULD; net/http did).
func TestCloseAnnouncedWhenBodyLeftUnread(t *testing.T) {
	t.Parallel()
	tr := startRouter(t, nil)
	t.Run("expect", func(t *testing.T) {
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: nope.localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		resp, _ := readResp(t, br, "POST")
		expectClosed(t, c, br, 5*time.Second, "connection")
		if !resp.Close {
			t.Errorf("404 to an Expect request the router then closes lacks Connection: close; header %v", resp.Header)
		}
	})
	t.Run("large body", func(t *testing.T) {
		c, br := clientConnTo(t, tr.Addr())
		go func() {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: nope.localhost\r\nContent-Length: 1000000\r\n\r\n")
			c.Write(make([]byte, 1000000))
		}()
		resp, _ := readResp(t, br, "POST")
		expectClosed(t, c, br, 5*time.Second, "connection")
		if !resp.Close {
			t.Errorf("404 with 1 MB unread body, then closed, lacks Connection: close; header %v", resp.Header)
		}
	})
}

// TestForwardedBodyNotReadAfterResponse: in cluster mode, a streamed body forwarded to
// a peer router that answers before reading it is not read after the response (the
// peer's transport would otherwise read the client's buffer behind the serve loop's
// back: the race detector, which `make test` runs on this package, reports it). The
// connection then either closes or serves the next request in step.
func TestForwardedBodyNotReadAfterResponse(t *testing.T) {
	t.Parallel()
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401) // answers without reading the body
	}))
	defer peer.Close()
	tr := startRouter(t, nil)
	forwardApp(tr, "fw", peer.Listener.Addr().String())
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: fw.localhost\r\nContent-Length: 300000\r\n\r\n")
	c.Write(make([]byte, 100000))
	if resp, _ := readResp(t, br, "POST"); resp.StatusCode != 401 {
		t.Fatalf("got %d, want the peer's 401", resp.StatusCode)
	}
	c.Write(make([]byte, 200000))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: fw.localhost\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	switch {
	case err == nil && resp.StatusCode != 401:
		t.Fatalf("next request on the connection got %d, want 401", resp.StatusCode)
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("connection neither closed nor answered the next request: %v", err)
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("next response unreadable (connection out of step?): %v", err)
	}
}

// TestForwardedUpgradeOutlivesHeaderTimeout: a connection hijacked by the forward path
// (cluster mode, a WebSocket forwarded to the router owning the app's dynos) starts
// without the header read deadline of its request, as net/http's Hijack did.
func TestForwardedUpgradeOutlivesHeaderTimeout(t *testing.T) {
	t.Parallel()
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw) // echo
	}))
	defer peer.Close()
	tr := startRouter(t, func(c *Config) { c.HeaderReadTimeout = time.Second })
	forwardApp(tr, "fw", peer.Listener.Addr().String())
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: fw.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for i := 0; i < 4; i++ {
		time.Sleep(500 * time.Millisecond)
		io.WriteString(c, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "ping\n" {
			t.Fatalf("echo %d after %v: %q %v", i, time.Duration(i+1)*500*time.Millisecond, line, err)
		}
	}
}

// TestClientGoneGetsNoAnswer: a client that half-closes after its request
// (shutdown(SHUT_WR), as `nc -N` does) and waits in the queue is counted as gone (H27)
// and gets no answer at all, never a default 200 for a request no dyno saw.
func TestClientGoneGetsNoAnswer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	defer close(release)
	tr := startRouter(t, nil)
	tr.SetApp("hc", []Instance{b.instance("web.1")})
	busy, _ := clientConnTo(t, tr.Addr())
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: hc.localhost\r\n\r\n")
	waitFor(t, "dyno busy", func() bool { return b.inflight.Load() == 1 })
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "GET /queued HTTP/1.1\r\nHost: hc.localhost\r\n\r\n")
	c.(interface{ CloseWrite() error }).CloseWrite()
	waitFor(t, "H27 logged", func() bool { return tr.logHas("H27") })
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, _ := io.ReadAll(br)
	if len(got) > 0 {
		t.Fatalf("client counted as gone (H27) got a response:\n%s", got)
	}
}

// slowAccept hands over each accepted connection 200 ms late, as a descheduled accept
// loop would.
type slowAccept struct {
	net.Listener
	accepted chan struct{}
}

func (l *slowAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- struct{}{}
		time.Sleep(200 * time.Millisecond)
	}
	return c, err
}

// TestConnAcceptedAsShutdownStartsIsServed: a connection the accept loop took just
// before shutdown began is served, as drainAcceptQueue intends for queued connections.
func TestConnAcceptedAsShutdownStartsIsServed(t *testing.T) {
	t.Parallel()
	inner := listen(t)
	ln := &slowAccept{Listener: inner, accepted: make(chan struct{}, 1)}
	b := newBackend(t, nil)
	r, err := New(Config{Listener: ln, EventLoop: eventLoopByDefault(), Logger: testLogger(t), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	r.SetApp("sd", []Instance{b.instance("web.1")})
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: sd.localhost\r\n\r\n")
	<-ln.accepted
	cancel()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Errorf("request on a connection accepted as shutdown began: %v", err)
	} else if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	<-done
}

// TestNo1xxToHTTP10Clients: the forward path relays a peer's 1xx through ReverseProxy to
// response.WriteHeader; an HTTP/1.0 client gets none (RFC 9110 15.2: it would read it as
// the final answer), and an HTTP/1.1 client one 100 Continue at most.
func TestNo1xxToHTTP10Clients(t *testing.T) {
	t.Parallel()
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // net/http answers Expect with 100 Continue here
		io.WriteString(w, "ok")
	}))
	defer peer.Close()
	tr := startRouter(t, nil)
	forwardApp(tr, "fw", peer.Listener.Addr().String())
	for _, proto := range []string{"HTTP/1.0", "HTTP/1.1"} {
		c, _ := clientConnTo(t, tr.Addr())
		io.WriteString(c, "POST / "+proto+"\r\nHost: fw.localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, _ := io.ReadAll(c)
		if n := strings.Count(string(got), " 100 Continue"); proto == "HTTP/1.0" && n > 0 || n > 1 {
			t.Errorf("%s client got %d 100 Continue:\n%s", proto, n, got)
		}
		if !bytes.HasSuffix(got, []byte("ok")) || proto == "HTTP/1.0" && !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) {
			t.Errorf("%s client did not get the peer's 200 ok:\n%s", proto, got)
		}
	}
}

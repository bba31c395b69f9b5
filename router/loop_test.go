package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The router's whole suite runs on the event loop, and again on the goroutine server
// (DYNO_ROUTER_EVENT_LOOP=0); these tests are about what only the loop does.

func startLoopRouter(t *testing.T, mod func(*Config)) *testRouter {
	t.Helper()
	return startRouter(t, func(c *Config) {
		c.EventLoop = true
		if mod != nil {
			mod(c)
		}
	})
}

// A connection served by the loop whose next request the loop does not serve (HTTP/1.0,
// a chunked body, Expect) goes on in the goroutine server with the bytes the loop read
// of it, pipelined requests included, and every request is answered in order.
func TestLoopHandsAConnectionOverWithWhatItRead(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s=%d", r.Method, r.URL.Path, len(body))
	})
	tr := startLoopRouter(t, nil)
	tr.SetApp("ho", []Instance{b.instance("web.1")})
	for name, tc := range map[string]struct {
		second string
		want   string // the second answer's body
	}{
		"HTTP/1.0":      {"GET /second HTTP/1.0\r\nHost: ho.localhost\r\nConnection: keep-alive\r\n\r\n", "GET /second=0"},
		"chunked body":  {"POST /second HTTP/1.1\r\nHost: ho.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "POST /second=5"},
		"expect":        {"POST /second HTTP/1.1\r\nHost: ho.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", "POST /second=5"},
		"unknown host":  {"GET /second HTTP/1.1\r\nHost: nobody.localhost\r\n\r\n", ""},
		"large body":    {"POST /second HTTP/1.1\r\nHost: ho.localhost\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000), "POST /second=70000"},
		"partial head":  {"GET /second HTTP/1.1\r\nHost: ho.loc", "GET /second=0"},
		"HTTP/1.0 only": {"GET /second HTTP/1.0\r\nHost: ho.localhost\r\n\r\n", "GET /second=0"},
	} {
		t.Run(name, func(t *testing.T) {
			c, br := clientConnTo(t, tr.Addr())
			first := "GET /first HTTP/1.1\r\nHost: ho.localhost\r\n\r\n"
			if _, err := io.WriteString(c, first+tc.second); err != nil {
				t.Fatal(err)
			}
			if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "GET /first=0" {
				t.Fatalf("first: %d %q", resp.StatusCode, body)
			}
			switch name {
			case "expect":
				if resp, _ := readResp(t, br, "POST"); resp.StatusCode != http.StatusContinue {
					t.Fatalf("expect: %d, want 100 Continue", resp.StatusCode)
				}
				io.WriteString(c, "hello")
			case "partial head":
				io.WriteString(c, "alhost\r\n\r\n")
			}
			resp, body := readResp(t, br, strings.Fields(tc.second)[0])
			switch {
			case tc.want == "":
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("second: %d %q, want 404", resp.StatusCode, body)
				}
			case resp.StatusCode != 200 || body != tc.want:
				t.Fatalf("second: %d %q, want 200 %q", resp.StatusCode, body, tc.want)
			}
			if name == "HTTP/1.0 only" {
				return // closed after the answer
			}
			io.WriteString(c, "GET /third HTTP/1.1\r\nHost: ho.localhost\r\n\r\n")
			if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "GET /third=0" {
				t.Fatalf("third: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// Requests of the loop and of the goroutine server wait in the app's one FIFO queue.
func TestLoopAndGoroutineRequestsShareOneQueue(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	tr := startLoopRouter(t, nil)
	tr.SetApp("one", []Instance{b.instance("web.1")})
	var wg sync.WaitGroup
	send := func(path string, proto string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, br := clientConnTo(t, tr.Addr())
			fmt.Fprintf(c, "GET %s %s\r\nHost: one.localhost\r\n\r\n", path, proto)
			if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
				t.Errorf("%s: %d", path, resp.StatusCode)
			}
		}()
	}
	send("/0", "HTTP/1.1")
	if got := <-order; got != "/0" {
		t.Fatalf("first request %s", got)
	}
	for i := 1; i <= 6; i++ {
		proto := "HTTP/1.1" // the loop's
		if i%2 == 0 {
			proto = "HTTP/1.0" // the goroutine server's
		}
		send(fmt.Sprintf("/%d", i), proto)
		waitFor(t, fmt.Sprintf("request %d queued", i), func() bool { return tr.waiting("one") == i })
	}
	close(release)
	for i := 1; i <= 6; i++ {
		if got := <-order; got != fmt.Sprintf("/%d", i) {
			t.Fatalf("request %d reached the dyno as %s: not one FIFO queue", i, got)
		}
	}
	wg.Wait()
}

// A response larger than what the loop buffers for a client reaches a client that reads
// it slowly whole: the loop reads the dyno at the client's pace.
func TestLoopRelaysALargeResponseAtTheClientsPace(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	for _, chunked := range []bool{false, true} {
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			if !chunked {
				w.Header().Set("Content-Length", fmt.Sprint(size))
			}
			chunk := strings.Repeat("z", 64<<10)
			for n := 0; n < size; n += len(chunk) {
				io.WriteString(w, chunk)
			}
		})
		tr := startLoopRouter(t, nil)
		tr.SetApp("big", []Instance{b.instance("web.1")})
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: big.localhost\r\n\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n := 0
		for {
			m, err := resp.Body.Read(buf)
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("chunked %v: after %d bytes: %v", chunked, n, err)
			}
			if n%(1<<20) < 4096 {
				runtime.Gosched() // a slow reader: the router's buffers fill
			}
		}
		if n != size {
			t.Errorf("chunked %v: got %d bytes, want %d", chunked, n, size)
		}
	}
}

// The loop waits in epoll_pwait holding a processor of the runtime: it brings one of its
// own, so that the router's other goroutines keep what they had (one, here), and gives
// it back when it stops.
func TestLoopBringsAProcessorOfItsOwn(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) }) // after the router stopped
	t.Cleanup(func() {
		if n := runtime.GOMAXPROCS(0); n != 1 {
			t.Errorf("GOMAXPROCS %d once the router stopped, want 1 again", n)
		}
	})
	b := newBackend(t, nil)
	tr := startLoopRouter(t, nil)
	tr.SetApp("p", []Instance{b.instance("web.1")})
	if resp, _ := tr.do(t, "GET", "p.localhost", "/", nil, nil); resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("GOMAXPROCS %d with the event loop running, want 2", n)
	}
}

func TestLoopRefusedInClusterMode(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Listen: "127.0.0.1:0", EventLoop: true, Cluster: true, ConsulAddr: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "-event-loop") {
		t.Errorf("New: %v, want the event loop refused in cluster mode", err)
	}
}

// A small body the loop waits for before it takes a dyno: one that does not arrive in
// -body-timeout is answered 408, one whose client leaves is H27, and neither reaches
// the dyno.
func TestLoopSmallBodyTooSlowOrCutShort(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	tr := startLoopRouter(t, func(c *Config) { c.BodyReadTimeout = 200 * time.Millisecond })
	tr.SetApp("sb", []Instance{b.instance("web.1")})
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: sb.localhost\r\nContent-Length: 10\r\n\r\nabc")
	if resp, _ := readResp(t, br, "POST"); resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("slow body: %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
	c2, _ := clientConnTo(t, tr.Addr())
	io.WriteString(c2, "POST /cut HTTP/1.1\r\nHost: sb.localhost\r\nContent-Length: 10\r\n\r\nabc")
	c2.(*net.TCPConn).CloseWrite()
	waitFor(t, "H27 logged", func() bool { return tr.logHas("code=H27", `path="/cut"`) })
	if n := b.served.Load(); n != 0 {
		t.Errorf("the dyno served %d requests of bodies that never came whole", n)
	}
}

// A listener that is not TCP is served by the goroutine server, with a warning: the loop
// takes a TCP socket of its own.
func TestLoopLeavesAListenerThatIsNotTCPToTheGoroutineServer(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := startLoopRouter(t, func(c *Config) { c.Listener = struct{ net.Listener }{c.Listener} })
	tr.SetApp("wrapped", []Instance{b.instance("web.1")})
	if resp, body := tr.do(t, "GET", "wrapped.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if !tr.logHas("the event loop serves a TCP listener only") {
		t.Error("no warning that the event loop does not serve this listener")
	}
}

// When -shutdown-timeout ends with requests left, the loop ends them as H27: the one at
// its dyno (whose connection it closes) and the one still queued (docs/router.md, "Where
// the two differ").
func TestLoopEndsWhatIsLeftAtTheShutdownTimeoutAsH27(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	defer close(release)
	tr, stop := runFrontEnd(t, true, func(c *Config) { c.ShutdownTimeout = 300 * time.Millisecond })
	tr.SetApp("left", []Instance{b.instance("web.1")})
	go exchange(t, tr.Addr(), "GET /held HTTP/1.1\r\nHost: left.localhost\r\n\r\n", "GET")
	waitFor(t, "/held at the dyno", func() bool { return len(order) == 1 })
	go exchange(t, tr.Addr(), "GET /queued HTTP/1.1\r\nHost: left.localhost\r\n\r\n", "GET")
	waitFor(t, "/queued waiting", func() bool { return tr.waiting("left") == 1 })
	if err := stop(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("router Run: %v", err)
	}
	for _, p := range []string{"/held", "/queued"} {
		if !tr.logHas(`path="`+p+`"`, "code=H27", "status=499") {
			t.Errorf("%s: no H27 with status 499 logged:\n%s", p, tr.logs.String())
		}
	}
}

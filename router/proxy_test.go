package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestProxyHeadersAndBody(t *testing.T) {
	t.Parallel()
	var seen http.Header
	var seenHost string
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		seenHost = r.Host
		w.Header().Set("X-Dyno", "yes")
		io.WriteString(w, "hello "+r.URL.RequestURI())
	})
	tr := startRouter(t, nil)
	tr.SetApp("myapp", []Instance{b.instance("web.1")})

	before := time.Now().UnixMicro()
	resp, body := tr.do(t, "GET", "myapp.localhost", "/a/b?c=d", nil, http.Header{"X-Forwarded-For": {"10.0.0.1"}})
	if resp.StatusCode != 200 || body != "hello /a/b?c=d" || resp.Header.Get("X-Dyno") != "yes" {
		t.Fatalf("got %d %q %v, want 200 and the dyno's answer", resp.StatusCode, body, resp.Header)
	}
	if seenHost != "myapp.localhost" {
		t.Errorf("dyno saw Host %q", seenHost)
	}
	id := seen.Get("X-Request-Id")
	if len(id) != 36 {
		t.Errorf("X-Request-Id %q is not a generated UUID", id)
	}
	var start int64
	if _, err := fmt.Sscanf(seen.Get("X-Request-Start"), "t=%d", &start); err != nil || start < before || start > time.Now().UnixMicro() {
		t.Errorf("X-Request-Start %q is not the arrival time in Unix microseconds", seen.Get("X-Request-Start"))
	}
	if got := seen.Get("X-Forwarded-For"); got != "10.0.0.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want the client's chain plus its address", got)
	}
	if seen.Get("X-Forwarded-Proto") != "http" || seen.Get("X-Forwarded-Port") == "" {
		t.Errorf("X-Forwarded-Proto %q Port %q", seen.Get("X-Forwarded-Proto"), seen.Get("X-Forwarded-Port"))
	}
	waitFor(t, "log line", func() bool {
		return tr.logHas("at=info", "method=GET", `path="/a/b?c=d"`, "host=myapp.localhost", "request_id="+id, "dyno=web.1", "queue=0", "wait=", "service=", "status=200", "bytes=14")
	})
}

// TestResponseHopByHopHeadersDropped: a dyno's hop-by-hop response headers (Connection
// and those it names, Keep-Alive, Proxy-*, Upgrade) do not reach the client, its other
// headers do, whether the response takes the dyno's header whole or copies it next to
// one of the router's own (X-Dyno-Router-Stale while the table is stale).
func TestResponseHopByHopHeadersDropped(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Secret")
		h.Set("X-Secret", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "h2c")
		h.Add("X-Kept", "a")
		h.Add("X-Kept", "b")
		io.WriteString(w, "ok")
	})
	tr := startRouter(t, nil)
	tr.SetApp("myapp", []Instance{b.instance("web.1")})
	for _, stale := range []bool{false, true} {
		tr.setStale(stale, errors.New("test"))
		resp, body := tr.do(t, "GET", "myapp.localhost", "/", nil, nil)
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("stale %v: got %d %q", stale, resp.StatusCode, body)
		}
		for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
			if v, ok := resp.Header[k]; ok {
				t.Errorf("stale %v: the client got the dyno's hop-by-hop %s: %q", stale, k, v)
			}
		}
		if got := resp.Header.Values("X-Kept"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Errorf("stale %v: X-Kept %q, want the dyno's two values", stale, got)
		}
		if got := resp.Header.Get(StaleHeader); stale != (got == "true") {
			t.Errorf("stale %v: %s %q", stale, StaleHeader, got)
		}
	}
}

func TestRequestIDKeptWhenSane(t *testing.T) {
	t.Parallel()
	ids := make(chan string, 2)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { ids <- r.Header.Get("X-Request-Id") })
	tr := startRouter(t, nil)
	tr.SetApp("a", []Instance{b.instance("web.1")})
	for _, tc := range []struct {
		sent string
		keep bool
	}{
		{"abcdefghij0123456789-+/=", true},
		{"short", false},
		{"has spaces in it which are not allowed", false},
		{strings.Repeat("x", 201), false},
	} {
		tr.do(t, "GET", "a.localhost", "/", nil, http.Header{"X-Request-Id": {tc.sent}})
		got := <-ids
		if (got == tc.sent) != tc.keep {
			t.Errorf("client id %q: dyno saw %q (keep=%v)", tc.sent, got, tc.keep)
		}
	}
}

func TestOneRequestPerDynoUnderConcurrency(t *testing.T) {
	t.Parallel()
	var backends []*backend
	var insts []Instance
	for i := 1; i <= 3; i++ {
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * time.Millisecond)
			io.WriteString(w, "ok")
		})
		backends = append(backends, b)
		insts = append(insts, b.instance(fmt.Sprintf("web.%d", i)))
	}
	tr := startRouter(t, nil)
	tr.SetApp("busy", insts)
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for c := 0; c < 20; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				req, _ := http.NewRequest("GET", tr.url+"/", nil)
				req.Host = "busy.localhost"
				resp, err := testClient.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- resp.Status
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request failed: %s", e)
	}
	total := 0
	for _, b := range backends {
		total += int(b.served.Load())
		if b.served.Load() == 0 {
			t.Errorf("a dyno served nothing")
		}
		if c := b.conns.Load(); c > 3 {
			t.Errorf("dyno got %d connections; keep-alive should reuse one", c)
		}
	}
	if total != 200 {
		t.Errorf("dynos served %d requests, want 200", total)
	}
}

// blockingBackend holds every request until release is closed, recording arrival order.
func blockingBackend(t *testing.T) (*backend, chan string, chan struct{}) {
	order := make(chan string, 100)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		order <- r.URL.Path
		<-release
		io.WriteString(w, r.URL.Path)
	})
	return b, order, release
}

func TestFIFOOrder(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("fifo", []Instance{b.instance("web.1")})

	var wg sync.WaitGroup
	send := func(path string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", tr.url+path, nil)
			req.Host = "fifo.localhost"
			resp, err := testClient.Do(req)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return
			}
			resp.Body.Close()
		}()
	}
	send("/0")
	if got := <-order; got != "/0" {
		t.Fatalf("first request %s", got)
	}
	for i := 1; i <= 6; i++ {
		send(fmt.Sprintf("/%d", i))
		waitFor(t, fmt.Sprintf("request %d queued", i), func() bool { return tr.waiting("fifo") == i })
	}
	close(release)
	for i := 1; i <= 6; i++ {
		if got := <-order; got != fmt.Sprintf("/%d", i) {
			t.Fatalf("request %d reached the dyno as %s: not FIFO", i, got)
		}
	}
	wg.Wait()
	waitFor(t, "queue log", func() bool { return tr.logHas("path=\"/6\"", "queue=5") })
}

func TestCodes(t *testing.T) {
	t.Parallel()
	t.Run("unknown host is 404", func(t *testing.T) {
		t.Parallel()
		tr := startRouter(t, nil)
		resp, _ := tr.do(t, "GET", "nope.localhost", "/", nil, nil)
		if resp.StatusCode != 404 {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("H10 no dyno up", func(t *testing.T) {
		t.Parallel()
		tr := startRouter(t, nil)
		tr.SetApp("empty", nil)
		resp, body := tr.do(t, "GET", "empty.localhost", "/", nil, nil)
		if resp.StatusCode != 503 || !strings.Contains(body, "H10") {
			t.Fatalf("got %d %q, want 503 H10", resp.StatusCode, body)
		}
		waitFor(t, "H10 log", func() bool { return tr.logHas("at=error code=H10", `desc="App crashed"`, "status=503") })
	})
	t.Run("H14 no web dynos", func(t *testing.T) {
		t.Parallel()
		tr := startRouter(t, nil)
		tr.nomadApps.Store(&map[string]bool{"idle": true})
		tr.keepLines.Store(true)
		resp, body := tr.do(t, "GET", "idle.localhost", "/", nil, nil)
		if resp.StatusCode != 503 || !strings.Contains(body, "H14") {
			t.Fatalf("an app Nomad has with no web dyno in Consul: got %d %q, want 503 H14", resp.StatusCode, body)
		}
		waitFor(t, "H14 log", func() bool { return tr.logHas("at=error code=H14", `desc="No web dynos running"`, "status=503") })
		lines, _, _ := tr.logRings.ring("idle").since(0, 10)
		if len(lines) != 1 || !strings.Contains(lines[0].Line, "code=H14") {
			t.Fatalf("the app's router lines: %+v, want its H14", lines)
		}
		if resp, _ := tr.do(t, "GET", "other.localhost", "/", nil, nil); resp.StatusCode != 404 {
			t.Fatalf("a Host that names no app: %d, want 404", resp.StatusCode)
		}
	})
	t.Run("H80 maintenance", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, nil)
		tr := startRouter(t, nil)
		in := b.instance("web.1")
		in.Maintenance = true
		tr.SetApp("m", []Instance{in})
		resp, body := tr.do(t, "GET", "m.localhost", "/", nil, nil)
		if resp.StatusCode != 503 || !strings.Contains(body, "H80") || b.served.Load() != 0 {
			t.Fatalf("got %d %q (dyno served %d), want 503 H80", resp.StatusCode, body, b.served.Load())
		}
	})
	t.Run("H11 queue too deep", func(t *testing.T) {
		t.Parallel()
		b, order, release := blockingBackend(t)
		tr := startRouter(t, func(c *Config) { c.MaxQueueDepth = 1 })
		tr.SetApp("deep", []Instance{b.instance("web.1")})
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); tr.do(t, "GET", "deep.localhost", "/held", nil, nil) }()
			if i == 0 {
				<-order
			}
		}
		waitFor(t, "one queued", func() bool { return tr.waiting("deep") == 1 })
		resp, body := tr.do(t, "GET", "deep.localhost", "/third", nil, nil)
		close(release)
		wg.Wait()
		if resp.StatusCode != 503 || !strings.Contains(body, "H11") {
			t.Fatalf("got %d %q, want 503 H11", resp.StatusCode, body)
		}
	})
	t.Run("H11 waited too long", func(t *testing.T) {
		t.Parallel()
		b, order, release := blockingBackend(t)
		tr := startRouter(t, func(c *Config) { c.MaxQueueWait = 100 * time.Millisecond })
		tr.SetApp("slow", []Instance{b.instance("web.1")})
		done := make(chan struct{})
		go func() { defer close(done); tr.do(t, "GET", "slow.localhost", "/held", nil, nil) }()
		<-order
		start := time.Now()
		resp, body := tr.do(t, "GET", "slow.localhost", "/waits", nil, nil)
		close(release)
		<-done
		if resp.StatusCode != 503 || !strings.Contains(body, "H11") || time.Since(start) < 100*time.Millisecond {
			t.Fatalf("got %d %q after %s, want 503 H11 after 100ms", resp.StatusCode, body, time.Since(start))
		}
		if tr.waiting("slow") != 0 {
			t.Fatalf("queue not empty after H11")
		}
	})
	t.Run("H12 timeout keeps the dyno busy", func(t *testing.T) {
		t.Parallel()
		finish := make(chan struct{})
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				<-finish
			}
			io.WriteString(w, "late "+r.URL.Path)
		})
		tr := startRouter(t, func(c *Config) { c.RequestTimeout = 100 * time.Millisecond })
		in := b.instance("web.1")
		tr.SetApp("t", []Instance{in})
		resp, body := tr.do(t, "GET", "t.localhost", "/slow", nil, nil)
		if resp.StatusCode != 503 || !strings.Contains(body, "H12") {
			t.Fatalf("got %d %q, want 503 H12", resp.StatusCode, body)
		}
		// The dyno is still busy with /slow: the next request must wait for it.
		got := make(chan string, 1)
		go func() { _, body := tr.do(t, "GET", "t.localhost", "/next", nil, nil); got <- body }()
		waitFor(t, "next queued", func() bool { return tr.waiting("t") == 1 })
		if st := tr.appStats("t"); st.Busy != 1 || st.Idle != 0 || st.Waiting != 1 {
			t.Fatalf("while the dyno still answers /slow: %+v, want it busy and /next waiting", st)
		}
		close(finish)
		if g := <-got; g != "late /next" {
			t.Fatalf("next request got %q", g)
		}
		if c := b.conns.Load(); c != 1 {
			t.Errorf("dyno saw %d connections; the drained one should be reused", c)
		}
		waitFor(t, "H12 log", func() bool { return tr.logHas("at=error code=H12", "path=\"/slow\"", "status=503") })
	})
	t.Run("H12 per-app timeout from meta", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(150 * time.Millisecond) })
		tr := startRouter(t, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
		in := b.instance("web.1")
		in.Timeout = time.Second
		tr.SetApp("t", []Instance{in})
		resp, _ := tr.do(t, "GET", "t.localhost", "/", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200 under the app's own 1s timeout", resp.StatusCode)
		}
	})
	t.Run("H13 closed without response, never replayed", func(t *testing.T) {
		t.Parallel()
		addr, got := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			http.ReadRequest(br)
			c.Close()
		})
		tr := startRouter(t, nil)
		tr.SetApp("h13", []Instance{rawInstance(addr, "web.1")})
		resp, body := tr.do(t, "POST", "h13.localhost", "/", strings.NewReader("data"), nil)
		if resp.StatusCode != 503 || !strings.Contains(body, "H13") {
			t.Fatalf("got %d %q, want 503 H13", resp.StatusCode, body)
		}
		if n := got(); n != 1 {
			t.Fatalf("dyno got %d connections, want 1: a sent request must never be replayed", n)
		}
	})
	t.Run("H17 malformed response", func(t *testing.T) {
		t.Parallel()
		addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			http.ReadRequest(br)
			io.WriteString(c, "HTTP/1.1 abc OK\r\n\r\n")
			c.Close()
		})
		tr := startRouter(t, nil)
		tr.SetApp("h17", []Instance{rawInstance(addr, "web.1")})
		resp, body := tr.do(t, "GET", "h17.localhost", "/", nil, nil)
		if resp.StatusCode != 502 || !strings.Contains(body, "H17") {
			t.Fatalf("got %d %q, want 502 H17", resp.StatusCode, body)
		}
	})
	t.Run("H18 closed mid-response", func(t *testing.T) {
		t.Parallel()
		addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			http.ReadRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			c.Close()
		})
		tr := startRouter(t, nil)
		tr.SetApp("h18", []Instance{rawInstance(addr, "web.1")})
		req, _ := http.NewRequest("GET", tr.url+"/", nil)
		req.Host = "h18.localhost"
		resp, err := testClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatalf("client read a truncated response without error")
		}
		waitFor(t, "H18 log", func() bool { return tr.logHas("at=error code=H18", "status=200") })
		if s := tr.appStats("h18"); s.Busy != 0 {
			t.Fatalf("dyno still busy after H18: %+v", s)
		}
	})
	t.Run("H27 client gone while queued", func(t *testing.T) {
		t.Parallel()
		b, order, release := blockingBackend(t)
		tr := startRouter(t, nil)
		tr.SetApp("q", []Instance{b.instance("web.1")})
		done := make(chan struct{})
		go func() { defer close(done); tr.do(t, "GET", "q.localhost", "/held", nil, nil) }()
		<-order
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", tr.url+"/gone", nil)
		req.Host = "q.localhost"
		errc := make(chan error, 1)
		go func() {
			resp, err := testClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		waitFor(t, "queued", func() bool { return tr.waiting("q") == 1 })
		cancel()
		<-errc
		waitFor(t, "removed from queue", func() bool { return tr.waiting("q") == 0 })
		close(release)
		<-done
		waitFor(t, "H27 log", func() bool { return tr.logHas("at=error code=H27", `path="/gone"`) })
		if n := b.served.Load(); n != 1 {
			t.Fatalf("dyno served %d requests; the abandoned one must never reach it", n)
		}
	})
}

// rawBackend serves each connection with fn and counts connections.
func rawBackend(t *testing.T, fn func(net.Conn, *bufio.Reader)) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			go func() { defer c.Close(); fn(c, bufio.NewReader(c)) }()
		}
	}()
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func rawInstance(addr, name string) Instance {
	host, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	return Instance{ID: "raw-" + port, Dyno: name, Address: host, Port: p}
}

func TestRedispatchWhenRefused(t *testing.T) {
	t.Parallel()
	// A port with nothing listening: connections are refused.
	dead := refusingAddr(t)
	b := newBackend(t, nil)
	tr := startRouter(t, func(c *Config) { c.DownBackoff = time.Hour; c.MaxDownBackoff = time.Hour })
	tr.SetApp("r", []Instance{b.instance("web.2"), rawInstance(dead, "web.1")})
	for i := 0; i < 10; i++ {
		resp, _ := tr.do(t, "POST", "r.localhost", "/", strings.NewReader("body"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d, want 200 from the live dyno", i, resp.StatusCode)
		}
	}
	if s := tr.appStats("r"); s.Up != 1 || s.Dynos != 2 {
		t.Fatalf("stats %+v: the refusing dyno should be down", s)
	}
	if n := b.served.Load(); n != 10 {
		t.Fatalf("live dyno served %d, want 10", n)
	}
}

func TestRedispatchAfterStaleKeepAlive(t *testing.T) {
	t.Parallel()
	// The dyno closes each connection after answering without saying so: the router
	// must notice the dead kept-alive connection and dial again, not answer H13.
	var closed atomic.Int32
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		defer closed.Add(1)
		defer c.Close()
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(10 * time.Millisecond) // and closes a moment later, as an idle timeout would
	})
	tr := startRouter(t, nil)
	tr.SetApp("s", []Instance{rawInstance(addr, "web.1")})
	for i := 0; i < 5; i++ {
		resp, body := tr.do(t, "GET", "s.localhost", "/", nil, nil)
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		waitFor(t, "dyno closed", func() bool { return closed.Load() == int32(i+1) })
	}
}

func TestDynoRemovedWhileBusy(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("rm", []Instance{b.instance("web.1")})
	done := make(chan int, 1)
	go func() { resp, _ := tr.do(t, "GET", "rm.localhost", "/x", nil, nil); done <- resp.StatusCode }()
	<-order
	tr.SetApp("rm", nil)
	close(release)
	if s := <-done; s != 200 {
		t.Fatalf("in-flight request got %d after its dyno left; want 200", s)
	}
	waitFor(t, "dyno gone", func() bool { s := tr.appStats("rm"); return s.Dynos == 0 && s.Busy == 0 })
}

func TestNewDynoTakesQueuedRequest(t *testing.T) {
	t.Parallel()
	b1, order, release := blockingBackend(t)
	defer close(release)
	b2 := newBackend(t, nil)
	tr := startRouter(t, nil)
	tr.SetApp("grow", []Instance{b1.instance("web.1")})
	go tr.do(t, "GET", "grow.localhost", "/held", nil, nil)
	<-order
	got := make(chan int, 1)
	go func() { resp, _ := tr.do(t, "GET", "grow.localhost", "/q", nil, nil); got <- resp.StatusCode }()
	waitFor(t, "queued", func() bool { return tr.waiting("grow") == 1 })
	tr.SetApp("grow", []Instance{b1.instance("web.1"), b2.instance("web.2")})
	if s := <-got; s != 200 || b2.served.Load() != 1 {
		t.Fatalf("queued request got %d; new dyno served %d", s, b2.served.Load())
	}
}

func TestCustomDomain(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	tr := startRouter(t, func(c *Config) { c.Domain = "apps.test" })
	in := b.instance("web.1")
	in.Domains = []string{"www.Example.com"}
	tr.SetApp("shop", []Instance{in})
	for _, host := range []string{"shop.apps.test", "SHOP.apps.test:8080", "www.example.com", "www.example.com."} {
		if resp, _ := tr.do(t, "GET", host, "/", nil, nil); resp.StatusCode != 200 {
			t.Errorf("Host %q: status %d, want 200", host, resp.StatusCode)
		}
	}
	if resp, _ := tr.do(t, "GET", "shop.localhost", "/", nil, nil); resp.StatusCode != 404 {
		t.Errorf("other domain routed: %d", resp.StatusCode)
	}
}

func TestDynoFlappingWhileBusyGetsNoSecondRequest(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	tr := startRouter(t, nil)
	in := b.instance("web.1")
	tr.SetApp("flap", []Instance{in})
	done := make(chan struct{})
	go func() { defer close(done); tr.do(t, "GET", "flap.localhost", "/1", nil, nil) }()
	<-order
	tr.SetApp("flap", nil)
	tr.SetApp("flap", []Instance{in}) // back while its request runs
	got := make(chan string, 1)
	go func() { _, body := tr.do(t, "GET", "flap.localhost", "/2", nil, nil); got <- body }()
	waitFor(t, "second queued", func() bool { return tr.waiting("flap") == 1 })
	close(release)
	<-done
	if g := <-got; g != "/2" {
		t.Fatalf("second request got %q", g)
	}
}

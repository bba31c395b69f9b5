package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawRequest sends raw bytes to the router and returns the first response's status.
func rawRequest(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHeaderAndBodyLimits(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	tr := startRouter(t, func(c *Config) { c.MaxHeaderBytes = 4096; c.MaxBodyBytes = 1000; c.BodyPrefetch = 100 })
	tr.SetApp("lim", []Instance{b.instance("web.1")})

	if s, _ := rawRequest(t, tr.Addr(), "GET / HTTP/1.1\r\nHost: lim.localhost\r\nX-Big: "+strings.Repeat("a", 20000)+"\r\n\r\n"); s != 431 {
		t.Errorf("huge header: status %d, want 431", s)
	}
	if s, _ := rawRequest(t, tr.Addr(), "POST / HTTP/1.1\r\nHost: lim.localhost\r\nContent-Length: 5000\r\n\r\n"); s != 413 {
		t.Errorf("declared body over the limit: status %d, want 413", s)
	}
	chunk := strings.Repeat("x", 600)
	raw := "POST / HTTP/1.1\r\nHost: lim.localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"258\r\n" + chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n"
	if s, _ := rawRequest(t, tr.Addr(), raw); s != 413 {
		t.Errorf("chunked body over the limit: status %d, want 413", s)
	}
	if s, _ := rawRequest(t, tr.Addr(), "POST / HTTP/1.1\r\nHost: lim.localhost\r\nContent-Length: 900\r\n\r\n"+strings.Repeat("y", 900)); s != 200 {
		t.Errorf("body under the limit: status %d, want 200", s)
	}
}

func TestSmugglingCasesRejected(t *testing.T) {
	t.Parallel()
	b, seen := recordingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("sm", []Instance{b.instance("web.1")})
	head := "POST /x HTTP/1.1\r\nHost: sm.localhost\r\n"
	for _, tc := range []struct {
		name string
		raw  string
	}{
		{"two different Content-Lengths", head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"signed Content-Length", head + "Content-Length: +5\r\n\r\nhello"},
		{"negative Content-Length", head + "Content-Length: -1\r\n\r\n"},
		{"Content-Length list", head + "Content-Length: 5, 5\r\n\r\nhello"},
		{"unknown Transfer-Encoding", head + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"chunked not last", head + "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"two Transfer-Encoding headers", head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"space before colon", head + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk size", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
	} {
		s, body := rawRequest(t, tr.Addr(), tc.raw)
		if s < 400 || s > 501 {
			t.Errorf("%s: status %d %q, want a 4xx/501 rejection", tc.name, s, body)
		}
	}
	got := seen()
	for _, s := range got {
		if !strings.HasPrefix(s, "POST /x=") {
			t.Errorf("dyno saw %q", s)
		}
	}
	if len(got) > 1 {
		t.Errorf("dyno saw %d requests from rejected messages: %v", len(got), got)
	}

	// Content-Length with Transfer-Encoding, in either order or case, alone or after a
	// good request on the same connection: 400, and nothing reaches the dyno.
	smuggled := "GET /admin HTTP/1.1\r\nHost: sm.localhost\r\n\r\n"
	body := "0\r\n\r\n" + smuggled
	for _, raw := range []string{
		head + "Content-Length: " + itoa(len(body)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
		head + "transfer-encoding: chunked\r\ncontent-length: " + itoa(len(body)) + "\r\n\r\n" + body,
		"GET /ok HTTP/1.1\r\nHost: sm.localhost\r\n\r\n" + head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
	} {
		c, err := net.Dial("tcp", tr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		all, _ := io.ReadAll(c)
		c.Close()
		if !strings.Contains(string(all), "400 Bad Request") {
			t.Errorf("ambiguous framing answered %q, want 400", all)
		}
	}
	for _, s := range seen() {
		if s != "GET /ok=" {
			t.Errorf("dyno saw %q from an ambiguous request", s)
		}
	}
	waitFor(t, "rejection logged", func() bool { return tr.logHas("rejected a request with both Content-Length and Transfer-Encoding") })
}

func TestFramingFollowsPipelinedRequests(t *testing.T) {
	t.Parallel()
	b, seen := recordingBackend(t)
	tr := startRouter(t, nil)
	tr.SetApp("pl", []Instance{b.instance("web.1")})
	// Bodies that look like heads, split at every byte: the guard must frame them
	// exactly as Go does, and pass every request through.
	raw := "POST /a HTTP/1.1\r\nHost: pl.localhost\r\nContent-Length: 41\r\n\r\n" +
		"Content-Length: 1\r\nTransfer-Encoding: x\r\n" +
		"POST /b HTTP/1.1\r\nHost: pl.localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"1d;ext=1\r\nContent-Length: 5\r\n\r\nabcdefgh\r\n0\r\nTrailer-A: 1\r\n\r\n" +
		"GET /c HTTP/1.1\r\nHost: pl.localhost\r\nContent-Length: 0\r\n\r\n"
	c, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < len(raw); i++ {
		c.Write([]byte{raw[i]})
	}
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < 3; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("response %d: %d", i, resp.StatusCode)
		}
	}
	want := []string{"POST /a=Content-Length: 1\r\nTransfer-Encoding: x\r\n", "POST /b=Content-Length: 5\r\n\r\nabcdefgh", "GET /c="}
	if got := seen(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("dyno saw %q, want %q", got, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSlowClientsCannotStarveOthers(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	tr := startRouter(t, func(c *Config) {
		c.HeaderReadTimeout = 300 * time.Millisecond
		c.BodyReadTimeout = 300 * time.Millisecond
	})
	tr.SetApp("s", []Instance{b.instance("web.1")})
	// 50 slowloris connections that never finish their headers, and 5 that send a body
	// slowly: none of them may hold the only dyno.
	var slow []net.Conn
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", tr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: s.localhost\r\nX-Slow: ")
		slow = append(slow, c)
	}
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", tr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 10\r\n\r\nab")
		slow = append(slow, c)
	}
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		start := time.Now()
		resp, _ := tr.do(t, "GET", "s.localhost", "/", nil, nil)
		if resp.StatusCode != 200 || time.Since(start) > 200*time.Millisecond {
			t.Fatalf("normal request: %d after %s while slow clients wait", resp.StatusCode, time.Since(start))
		}
	}
	if n := b.served.Load(); n != 5 {
		t.Fatalf("dyno served %d requests; slow clients must not reach it", n)
	}
	// The router drops slow header senders after the header timeout.
	slow[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := slow[0].Read(make([]byte, 1024)); err == nil {
		// Go may answer 408 before closing; then the next read ends.
		if _, err := slow[0].Read(make([]byte, 1024)); err == nil {
			t.Fatalf("slowloris connection still open after the header timeout")
		}
	}
	s, err := readStatus(slow[50])
	if s != 408 {
		t.Errorf("slow body: status %d (%v), want 408", s, err)
	}
}

func readStatus(c net.Conn) (int, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func TestGracefulShutdownDrainsInFlightAndQueued(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	ln := listen(t)
	r, err := New(Config{Listener: ln, EventLoop: eventLoopByDefault(), ShutdownTimeout: 10 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.SetApp("d", []Instance{b.instance("web.1")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	tr := &testRouter{Router: r, url: "http://" + r.Addr()}
	results := make(chan int, 2)
	go func() { resp, _ := tr.do(t, "GET", "d.localhost", "/1", nil, nil); results <- resp.StatusCode }()
	<-order
	go func() { resp, _ := tr.do(t, "GET", "d.localhost", "/2", nil, nil); results <- resp.StatusCode }()
	waitFor(t, "second queued", func() bool { return tr.waiting("d") == 1 })
	cancel()
	// New connections are refused once shutdown began.
	waitFor(t, "listener closed", func() bool {
		c, err := net.Dial("tcp", r.Addr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	for i := 0; i < 2; i++ {
		if s := <-results; s != 200 {
			t.Errorf("request drained with status %d, want 200", s)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	b, order, release := blockingBackend(t)
	ml := listen(t)
	tr := startRouter(t, func(c *Config) { c.MetricsListener = ml })
	tr.SetApp("met", []Instance{b.instance("web.1")})
	go tr.do(t, "GET", "met.localhost", "/a", nil, nil)
	<-order
	go tr.do(t, "GET", "met.localhost", "/b", nil, nil)
	waitFor(t, "queued", func() bool { return tr.waiting("met") == 1 })
	m := scrape(t, ml.Addr().String())
	for _, want := range []string{`dyno_router_queue_depth{app="met"} 1`, `dyno_router_busy_dynos{app="met"} 1`, `dyno_router_dynos_up{app="met"} 1`} {
		if !contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	close(release)
	tr.do(t, "GET", "nope.localhost", "/", nil, nil)
	waitFor(t, "counted", func() bool {
		m := scrape(t, ml.Addr().String())
		return contains(m, `dyno_router_responses_total{app="met",code="",status="200"} 2`) &&
			contains(m, `dyno_router_responses_total{app="",code="",status="404"} 1`) &&
			contains(m, `dyno_router_queue_wait_seconds_count{app="met"} 2`) &&
			contains(m, "dyno_router_dispatch_seconds_count 2")
	})
}

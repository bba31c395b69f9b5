package router

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A request that waited is written to the dyno by the hand-off, over the kept-alive
// connection, whole: method, headers and body.
func TestQueuedRequestSentOnHandOff(t *testing.T) {
	t.Parallel()
	type seen struct{ method, path, body, header, length string }
	got := make(chan seen, 2)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, string(body), r.Header.Get("X-Custom"), r.Header.Get("Content-Length")}
		if r.URL.Path == "/first" {
			<-release
		}
		io.WriteString(w, r.URL.Path)
	})
	tr := startRouter(t, nil)
	tr.SetApp("handoff", []Instance{b.instance("web.1")})

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if resp, body := tr.do(t, "GET", "handoff.localhost", "/first", nil, nil); resp.StatusCode != 200 || body != "/first" {
			t.Errorf("first: %d %q", resp.StatusCode, body)
		}
	}()
	if s := <-got; s.path != "/first" {
		t.Fatalf("the dyno got %s first", s.path)
	}
	go func() {
		defer wg.Done()
		if resp, body := tr.do(t, "POST", "handoff.localhost", "/second", strings.NewReader("hello"), http.Header{"X-Custom": {"kept"}}); resp.StatusCode != 200 || body != "/second" {
			t.Errorf("second: %d %q", resp.StatusCode, body)
		}
	}()
	waitFor(t, "the second request queued", func() bool { return tr.waiting("handoff") == 1 })
	close(release)
	s := <-got
	if s != (seen{"POST", "/second", "hello", "kept", "5"}) {
		t.Errorf("the queued request reached the dyno as %+v", s)
	}
	wg.Wait()
	if n := b.conns.Load(); n != 1 {
		t.Errorf("the dyno saw %d connections; the hand-off should reuse the kept-alive one", n)
	}
}

// A client that leaves while its request is being handed a dyno either never reaches the
// dyno or leaves it busy until the dyno answered: either way the dyno is free again
// afterwards and never holds two requests (the backend fails the test if it does).
func TestClientLeavingDuringHandOff(t *testing.T) {
	t.Parallel()
	release := make(chan struct{}, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	tr := startRouter(t, nil)
	tr.SetApp("race", []Instance{b.instance("web.1")})
	for i := 0; i < 30; i++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, _ := tr.do(t, "GET", "race.localhost", "/hold", nil, nil); resp.StatusCode != 200 {
				t.Errorf("holding request: %d", resp.StatusCode)
			}
		}()
		waitFor(t, "the dyno busy", func() bool { return b.inflight.Load() == 1 })
		ctx, cancel := context.WithCancel(context.Background())
		left := make(chan struct{})
		go func() {
			defer close(left)
			req, _ := http.NewRequestWithContext(ctx, "GET", tr.url+"/queued", nil)
			req.Host = "race.localhost"
			if resp, err := testClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		waitFor(t, "a request queued", func() bool { return tr.waiting("race") == 1 })
		// Free the dyno and drop the queued client at about the same moment.
		release <- struct{}{}
		time.Sleep(time.Duration(i%5) * 50 * time.Microsecond)
		cancel()
		<-done
		<-left
		waitFor(t, "the dyno idle again", func() bool {
			st := tr.appStats("race")
			return st.Idle == 1 && st.Busy == 0
		})
	}
	if resp, body := tr.do(t, "GET", "race.localhost", "/after", nil, nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the races: %d %q", resp.StatusCode, body)
	}
}

// A queued POST whose queue wait runs out at the moment a dyno is handed to it is served:
// the hand-off may already have sent it, so answering H11 would hide work the dyno did.
// (When the wait wins the app's lock first, the request gets H11 and never reaches the
// dyno; the assertion holds either way, the sleeps only make the hand-off win.)
func TestQueueWaitRunningOutDuringHandOff(t *testing.T) {
	t.Parallel()
	var posted atomic.Int32
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		if r.URL.Path == "/pay" {
			posted.Add(1)
		}
		io.WriteString(w, "ok "+r.URL.Path)
	})
	tr := startRouter(t, func(c *Config) { c.MaxQueueWait = 200 * time.Millisecond })
	tr.SetApp("pay", []Instance{b.instance("web.1")})
	tr.mu.Lock()
	a := tr.apps["pay"]
	tr.mu.Unlock()

	done := make(chan struct{})
	go func() { defer close(done); tr.do(t, "GET", "pay.localhost", "/hold", nil, nil) }()
	waitFor(t, "busy", func() bool { return b.inflight.Load() == 1 })
	type res struct {
		code int
		body string
	}
	got := make(chan res, 1)
	go func() {
		resp, body := tr.do(t, "POST", "pay.localhost", "/pay", strings.NewReader("amount=1"), nil)
		got <- res{resp.StatusCode, body}
	}()
	waitFor(t, "queued", func() bool { return tr.waiting("pay") == 1 })
	queuedAt := time.Now()
	// Hold the app's lock: the releasing request queues on it first, the waiter (whose
	// timer fires at 200ms) second.
	a.mu.Lock()
	close(release)
	time.Sleep(50 * time.Millisecond) // /hold answered; relay blocks in release on a.mu
	time.Sleep(time.Until(queuedAt.Add(300 * time.Millisecond)))
	a.mu.Unlock()
	r := <-got
	<-done
	waitFor(t, "idle", func() bool { st := tr.appStats("pay"); return st.Idle == 1 })
	t.Logf("client got %d %q; the dyno ran /pay %d times", r.code, strings.TrimSpace(r.body), posted.Load())
	if r.code != 200 && posted.Load() != 0 {
		t.Errorf("the client was told %d but the dyno ran the POST", r.code)
	}
}

// A response that streams a chunk every 10 ms for 150 ms under an 80 ms timeout is not
// cut: the read deadline is renewed often enough for short timeouts too (renewing only
// every 100 ms, as long timeouts allow, would let it pass at 80 ms). The gaps leave the
// dyno 70 ms of slack on a loaded machine.
func TestStreamUnderShortTimeout(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for i := 0; i < 15; i++ {
			io.WriteString(w, "x")
			f.Flush()
			time.Sleep(10 * time.Millisecond)
		}
	})
	tr := startRouter(t, func(c *Config) { c.RequestTimeout = 80 * time.Millisecond })
	tr.SetApp("s", []Instance{b.instance("web.1")})
	req, _ := http.NewRequest("GET", tr.url+"/", nil)
	req.Host = "s.localhost"
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != 15 {
		t.Errorf("streamed body cut: %q, %v", body, err)
	}
}

// The timeout counts from when the request is sent: a dial slower than the app's
// timeout neither marks a healthy dyno down nor fails the request.
func TestSlowDialDoesNotEatTheTimeout(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	tr := startRouter(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond; c.MaxAttempts = 2 })
	tr.Router.dialer.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		time.Sleep(350 * time.Millisecond)
		return nil
	}
	tr.SetApp("d", []Instance{b.instance("web.1")})
	resp, body := tr.do(t, "GET", "d.localhost", "/", nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("got %d %q (the dyno served %d)", resp.StatusCode, strings.TrimSpace(body), b.served.Load())
	}
}

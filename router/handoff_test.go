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

// waitGate is a waitEnding hook that reports each queued request's wait ending (by its
// client leaving or its wait running out) on ended and, when hold is set, keeps that
// request from leaving the queue until the test closes proceed: meanwhile a dyno may be
// handed to it.
type waitGate struct {
	ended   chan *Code
	proceed chan struct{}
	hold    bool
}

func newWaitGate(hold bool) *waitGate {
	return &waitGate{ended: make(chan *Code, 1), proceed: make(chan struct{}), hold: hold}
}

func (g *waitGate) hooks() testHooks {
	return testHooks{waitEnding: func(app string, code *Code) {
		g.ended <- code
		if g.hold {
			<-g.proceed
		}
	}}
}

// A client that leaves while its request waits for a dyno never reaches the dyno when
// it left before a dyno was handed to it, and leaves the dyno busy until the dyno has
// answered when it left at the very moment the dyno was handed to it (the hand-off has
// sent the request already; the event loop, which sends no request ahead, gives the dyno
// to the next in line at once). Either way the dyno is free again afterwards and never
// holds two requests (the backend fails the test if it does).
func TestClientLeavingDuringHandOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// handedOver: the dyno is handed to the request after its client left and
		// before the request left the queue.
		handedOver bool
		served     int32
	}{
		{"client leaves before a dyno frees", false, 1},
		{"client leaves as the dyno is handed over", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/hold" {
					<-release
				}
				io.WriteString(w, "ok")
			})
			gate := newWaitGate(tc.handedOver)
			tr := startRouterHooked(t, nil, gate.hooks())
			tr.SetApp("race", []Instance{b.instance("web.1")})
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
			cancel()
			if code := <-gate.ended; code != H27 {
				t.Fatalf("the queued request's wait ended with %s, want H27", code.Name)
			}
			if !tc.handedOver {
				waitFor(t, "the request out of the queue", func() bool { return tr.waiting("race") == 0 })
			}
			close(release)
			if tc.handedOver {
				// The dyno freed and went to the request whose client has left.
				waitFor(t, "the dyno handed to the queued request", func() bool { return tr.waiting("race") == 0 })
				close(gate.proceed)
			}
			<-done
			<-left
			waitFor(t, "the dyno idle again", func() bool {
				st := tr.appStats("race")
				return st.Idle == 1 && st.Busy == 0
			})
			waitFor(t, "H27 logged", func() bool { return tr.logHas("code=H27", `path="/queued"`) })
			want := tc.served
			if tr.Router.cfg.EventLoop {
				want = 1 // nothing was sent ahead
			}
			if n := b.served.Load(); n != want {
				t.Errorf("the dyno served %d requests, want %d", n, want)
			}
			if resp, body := tr.do(t, "GET", "race.localhost", "/after", nil, nil); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("afterwards: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// A queued POST whose queue wait runs out at the moment a dyno is handed to it is served:
// the hand-off has already sent it, so answering H11 would hide work the dyno did.
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
	gate := newWaitGate(true)
	tr := startRouterHooked(t, func(c *Config) { c.MaxQueueWait = 100 * time.Millisecond }, gate.hooks())
	tr.SetApp("pay", []Instance{b.instance("web.1")})

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
	// The wait runs out; the request is held before it leaves the queue, and the dyno
	// frees and is handed to it meanwhile.
	if code := <-gate.ended; code != H11 {
		t.Fatalf("the queued request's wait ended with %s, want H11", code.Name)
	}
	close(release)
	waitFor(t, "the dyno handed to the waiting request", func() bool { return tr.waiting("pay") == 0 })
	close(gate.proceed)
	r := <-got
	<-done
	waitFor(t, "idle", func() bool { st := tr.appStats("pay"); return st.Idle == 1 })
	if r.code != 200 || strings.TrimSpace(r.body) != "ok /pay" || posted.Load() != 1 {
		t.Errorf("the client got %d %q and the dyno ran /pay %d times; want 200 and once", r.code, strings.TrimSpace(r.body), posted.Load())
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

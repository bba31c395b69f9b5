package router

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
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

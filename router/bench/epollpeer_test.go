package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

// TestEpollPeerQueuesOneRequestPerBackend checks both ways the Go epoll peer waits
// (on its thread, and parked in Go's poller through package evloop): every request of
// many concurrent clients is answered, no backend ever holds two at once, and each
// reaches its backend with the router's headers.
func TestEpollPeerQueuesOneRequestPerBackend(t *testing.T) {
	testutil.E2E(t, "builds and runs the Go epoll peer")
	for _, tc := range []struct {
		name  string
		start func(testing.TB, []*loadgen.Backend, int) *proc
	}{{"raw wait", startEpollPeerOn}, {"evloop", startEvloopPeerOn}} {
		t.Run(tc.name, func(t *testing.T) {
			var bs []*loadgen.Backend
			var overlaps, served atomic.Int64
			for range 2 {
				var inside atomic.Int64
				s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					defer inside.Add(-1)
					if r.Header.Get("X-Request-Id") == "" || r.Header.Get("X-Request-Start") == "" || r.Header.Get("X-Forwarded-For") == "" {
						http.Error(w, "missing the router's headers", http.StatusBadRequest)
						return
					}
					time.Sleep(2 * time.Millisecond) // a service time, so requests queue
					served.Add(1)
					fmt.Fprint(w, "ok")
				}))
				t.Cleanup(s.Close)
				bs = append(bs, &loadgen.Backend{Addr: s.Listener.Addr().String()})
			}
			p := tc.start(t, bs, -1)
			const clients, each = 8, 25
			var wg sync.WaitGroup
			errs := make(chan error, clients*each)
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						resp, err := http.Get("http://" + p.addr + "/")
						if err != nil {
							errs <- err
							continue
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK || string(body) != "ok" {
							errs <- fmt.Errorf("status %d, body %q", resp.StatusCode, body)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := overlaps.Load(); n != 0 {
				t.Errorf("a backend held two requests at once %d times", n)
			}
			if n := served.Load(); n != clients*each {
				t.Errorf("backends served %d requests, want %d", n, clients*each)
			}
		})
	}
}

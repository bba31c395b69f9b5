package router

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Under churn a dyno holds one request at a time and a lease settles once, on both front ends.
func TestBothFrontEndsKeepLeasesUnderChurn(t *testing.T) {
	t.Parallel()
	onBothFrontEnds(t, func(t *testing.T, loop bool) struct{} {
		var backends sync.Map // listener address -> *backend
		h := func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/slow": // over the request timeout: H12, and the late answer drained
				time.Sleep(250 * time.Millisecond)
			case "/close": // H13, counted out before the close (see closeHijacked)
				c, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					time.Sleep(5 * time.Millisecond)
					b, _ := backends.Load(c.LocalAddr().String())
					b.(*backend).closeHijacked(r, c)
				}
				return
			case "/big":
				w.Header().Set("Content-Length", "1048576")
				buf := make([]byte, 64<<10)
				for range 16 {
					if _, err := w.Write(buf); err != nil {
						return
					}
				}
				return
			default:
				time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			}
			io.WriteString(w, "ok")
		}
		b1, b2 := newBackend(t, h), newBackend(t, h)
		backends.Store(b1.srv.Listener.Addr().String(), b1)
		backends.Store(b2.srv.Listener.Addr().String(), b2)
		tr := startFrontEnd(t, loop, func(c *Config) {
			c.RequestTimeout = 150 * time.Millisecond
			c.MaxQueueWait = 2 * time.Second
			c.DownBackoff, c.MaxDownBackoff = 30*time.Millisecond, 60*time.Millisecond
		})
		// web.3 refuses connections, and keeps coming back from its back-off.
		i1, i2, i3 := b1.instance("web.1"), b2.instance("web.2"), rawInstance(refusingAddr(t), "web.3")
		tr.SetApp("ch", []Instance{i1, i2, i3})

		// The table changes under the traffic: web.2 leaves and comes back.
		stop := make(chan struct{})
		var churn sync.WaitGroup
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					tr.SetApp("ch", []Instance{i1, i2, i3})
					return
				case <-time.After(37 * time.Millisecond):
				}
				if i%2 == 0 {
					tr.SetApp("ch", []Instance{i1, i3})
				} else {
					tr.SetApp("ch", []Instance{i1, i2, i3})
				}
			}
		}()
		// Clients that read their answer, leave at once (queued or at the dyno), leave a
		// little later, half-close and read, or leave mid-body.
		paths := []string{"/a", "/a", "/a", "/slow", "/close", "/big"}
		var sent atomic.Int64
		var clients sync.WaitGroup
		deadline := time.Now().Add(4 * time.Second)
		for range 16 {
			clients.Add(1)
			go func() {
				defer clients.Done()
				for i := 0; i < 30 && time.Now().Before(deadline); i++ {
					c, err := net.Dial("tcp", tr.Addr())
					if err != nil {
						t.Errorf("dial: %v", err)
						return
					}
					c.SetDeadline(time.Now().Add(5 * time.Second))
					fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: ch.localhost\r\n\r\n", paths[rand.IntN(len(paths))])
					sent.Add(1)
					br := bufio.NewReader(c)
					switch rand.IntN(6) {
					case 0:
					case 1:
						time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
					case 2:
						c.(*net.TCPConn).CloseWrite()
						readAnswer(br, "GET")
					case 3:
						http.ReadResponse(br, &http.Request{Method: "GET"})
					default:
						readAnswer(br, "GET")
					}
					c.Close()
				}
			}()
		}
		clients.Wait()
		close(stop)
		churn.Wait()

		waitFor(t, "every dyno up idle, nothing waiting", func() bool {
			s := tr.appStats("ch")
			return s.Busy == 0 && s.Waiting == 0 && s.Idle == s.Up
		})
		if n1, n2 := b1.inflight.Load(), b2.inflight.Load(); n1 != 0 || n2 != 0 {
			t.Errorf("the dynos still hold requests: %d, %d", n1, n2)
		}
		var counted float64
		waitFor(t, "each request counted and logged", func() bool {
			counted = 0
			for k, v := range routerMetrics(t, tr.Router) {
				if strings.HasPrefix(k, "dyno_router_responses_total{") {
					counted += v
				}
			}
			return int64(counted) == sent.Load() && len(accessLines(tr)) == int(sent.Load())
		})
		t.Logf("%d requests sent, counted and logged; the dynos served %d and %d", sent.Load(), b1.served.Load(), b2.served.Load())
		for i := range 4 {
			if answer := exchange(t, tr.Addr(), "GET /after HTTP/1.1\r\nHost: ch.localhost\r\n\r\n", "GET"); !strings.HasPrefix(answer, "200 ") {
				t.Errorf("request %d after the churn: %s", i, answer)
			}
		}
		return struct{}{}
	})
}

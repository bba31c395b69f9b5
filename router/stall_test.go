package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestDynoSilentMidResponseGetsNoSecondRequest: a dyno that goes silent for the request
// timeout after part of its response (part of the head: H12; part of the body: H18) may
// still be at work on the request. It gets no other request until it is done with it
// and closes the connection, which the router's closed side asks it to.
func TestDynoSilentMidResponseGetsNoSecondRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, first, rest string
		status            int // what the client of the stalled request gets; 0: cut off
	}{
		{"part of a head", "HTTP/1.1 200 OK\r\n", "Content-Length: 2\r\n\r\nok", http.StatusServiceUnavailable},
		{"part of a body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234", "56789", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var inflight, overlaps atomic.Int32
			release := make(chan struct{})
			addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if inflight.Add(1) > 1 {
						overlaps.Add(1)
					}
					if req.URL.Path == "/stall" {
						io.WriteString(c, tc.first)
						<-release
						inflight.Add(-1) // done with the request: what is left is its last bytes
						io.WriteString(c, tc.rest)
						continue
					} else {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					}
					inflight.Add(-1)
				}
			})
			tr := startRouter(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond; c.MaxQueueWait = 10 * time.Second })
			tr.SetApp("st", []Instance{rawInstance(addr, "web.1")})

			c, br := clientConnTo(t, tr.Addr())
			io.WriteString(c, "GET /stall HTTP/1.1\r\nHost: st.localhost\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			switch {
			case tc.status != 0 && (err != nil || resp.StatusCode != tc.status):
				t.Fatalf("stalled request: %v %v, want %d", resp, err, tc.status)
			case tc.status == 0 && err == nil:
				if _, err := io.ReadAll(resp.Body); err == nil {
					t.Fatal("stalled request: the response was not cut off")
				}
			}
			// The next request waits for the dyno, however long it stays silent.
			next := make(chan int, 1)
			go func() {
				resp, _ := tr.do(t, "GET", "st.localhost", "/next", nil, nil)
				next <- resp.StatusCode
			}()
			waitFor(t, "the next request queued", func() bool { return tr.waiting("st") == 1 })
			select {
			case s := <-next:
				t.Fatalf("the next request was answered %d while the dyno was still at work", s)
			case <-time.After(3 * 300 * time.Millisecond): // three request timeouts: the dyno still silent
			}
			close(release)
			if s := <-next; s != http.StatusOK {
				t.Fatalf("next request after the dyno was done: %d", s)
			}
			if n := overlaps.Load(); n != 0 {
				t.Fatalf("the dyno held two requests at once %d times", n)
			}
		})
	}
}

// TestDynoStreamingAgainAfterSilenceIsCutOff: a dyno that went silent mid-response for
// the request timeout (H18) and then streams again, as an event stream does, is not
// held busy while it streams: the router closes the connection at its first new byte,
// its writes fail, and the next request is served.
func TestDynoStreamingAgainAfterSilenceIsCutOff(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stopped := make(chan struct{})
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path != "/events" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
			<-release
			// Streams until a write fails, never reading the request side.
			for i := 0; i < 1000; i++ {
				if _, err := io.WriteString(c, "5\r\nevent\r\n"); err != nil {
					close(stopped)
					return
				}
				time.Sleep(10 * time.Millisecond) // the stream's own pace
			}
			t.Error("the event stream's writes never failed")
			return
		}
	})
	tr := startRouter(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond; c.MaxQueueWait = 10 * time.Second })
	tr.SetApp("ev", []Instance{rawInstance(addr, "web.1")})
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "GET /events HTTP/1.1\r\nHost: ev.localhost\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err == nil {
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("the silent stream was not cut off")
		}
	}
	waitFor(t, "the H18 logged", func() bool { return tr.logHas("code=H18") })
	close(release)
	<-stopped
	if resp, _ := tr.do(t, "GET", "ev.localhost", "/next", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("next request: %d", resp.StatusCode)
	}
}

package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// openDescriptors is how many descriptors the process has open.
func openDescriptors(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open descriptors: %v", err)
	}
	return len(es) - 1 // the directory's own
}

// After many connections of every kind (served, queued and left, left mid-response, H12,
// H11, refused, handed to the goroutine server) come and go, the process holds no more
// descriptors or goroutines than before.
func TestLoopChurnLeavesNoDescriptorsOrGoroutines(t *testing.T) {
	// Not parallel: it counts the whole process's descriptors and goroutines.
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/big":
			w.Write(make([]byte, 512<<10))
			return
		}
		io.WriteString(w, "ok")
	})
	b2 := newBackend(t, nil)
	tr := startLoopRouter(t, func(c *Config) {
		c.RequestTimeout = 200 * time.Millisecond
		c.MaxQueueDepth = 20
		c.MaxQueueWait = 500 * time.Millisecond
	})
	tr.SetApp("lk", []Instance{b.instance("web.1"), b2.instance("web.2")})
	round := func() {
		var wg sync.WaitGroup
		for g := range 36 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", tr.Addr())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				get := func(path, proto string) {
					fmt.Fprintf(c, "GET %s %s\r\nHost: lk.localhost\r\n\r\n", path, proto)
					if resp, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err == nil {
						io.Copy(io.Discard, resp.Body)
					}
				}
				switch g % 6 {
				case 0: // kept alive for several requests
					for range 10 {
						get("/", "HTTP/1.1")
					}
				case 1: // a slow request (H12, or queued: H11), left early
					fmt.Fprintf(c, "GET /slow HTTP/1.1\r\nHost: lk.localhost\r\n\r\n")
					time.Sleep(50 * time.Millisecond)
				case 2: // a large response, left after a little of it
					fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: lk.localhost\r\n\r\n")
					br.Read(make([]byte, 1000))
				case 3: // a head refused
					io.WriteString(c, "GET / HTTP/1.1\r\nHost: lk.localhost\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
					io.Copy(io.Discard, br)
				case 4: // a slow request, waited for
					get("/slow", "HTTP/1.1")
				case 5: // HTTP/1.0: handed to the goroutine server
					get("/", "HTTP/1.0")
				}
			}()
		}
		wg.Wait()
	}
	settled := func() {
		waitFor(t, "the app idle", func() bool {
			s := tr.appStats("lk")
			return s.Busy == 0 && s.Waiting == 0
		})
	}
	round() // the connections kept to the dynos are made
	settled()
	fds0, gor0 := openDescriptors(t), runtime.NumGoroutine()
	for range 4 {
		round()
	}
	settled()
	testutil.WaitFor(t, 10*time.Second, "descriptors and goroutines back", func() error {
		fds, gor := openDescriptors(t), runtime.NumGoroutine()
		if fds > fds0+2 || gor > gor0+2 {
			return fmt.Errorf("descriptors %d -> %d, goroutines %d -> %d", fds0, fds, gor0, gor)
		}
		t.Logf("after 4 rounds of 36 clients: descriptors %d -> %d, goroutines %d -> %d", fds0, fds, gor0, gor)
		return nil
	})
}

package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The event loop serves every connection on one thread: busy connections (a fast
// download, endless responses, pipelining clients, hostile dynos) must take turns with
// the others. Each test times small requests to another app meanwhile; none is parallel,
// so that the timings are the loop's.

// fairnessWindow is how long small requests are timed while the load runs.
const fairnessWindow = 1500 * time.Millisecond

// fairP99 bounds the 99th percentile of the small requests' latency under the load:
// generous for a loaded CI machine (three times that under the race detector), well
// below the seconds a loop that does not take turns makes them wait.
var fairP99 = func() time.Duration {
	if underRace {
		return 600 * time.Millisecond
	}
	return 200 * time.Millisecond
}()

// probeLatencies sends small requests for host one after another on one kept-alive
// connection to addr for d, and returns their latencies, sorted. A request not answered
// within 2 s ends the probe and is counted as failed.
func probeLatencies(t *testing.T, addr, host string, d time.Duration) (lat []time.Duration, failed int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := "GET /probe HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	for end := time.Now().Add(d); time.Now().Before(end); {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		t0 := time.Now()
		if _, err := io.WriteString(c, req); err != nil {
			failed++
			break
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			failed++
			break
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			failed++
			break
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(lat)
	return lat, failed
}

// percentile is the p-th (0 to 1) of sorted latencies.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

// expectFair probes app "small" of tr for fairnessWindow and fails the test unless its
// requests were answered promptly while load (named) runs.
func expectFair(t *testing.T, tr *testRouter, load string) {
	t.Helper()
	lat, failed := probeLatencies(t, tr.Addr(), "small.localhost", fairnessWindow)
	p99 := percentile(lat, .99)
	t.Logf("%s: %d small requests, p50 %v p99 %v max %v, %d failed", load, len(lat),
		percentile(lat, .5), p99, percentile(lat, 1), failed)
	if failed > 0 || len(lat) < 10 || p99 > fairP99 {
		t.Errorf("another app's requests while %s: %d answered, %d not within 2 s, p99 %v (want at most %v)",
			load, len(lat), failed, p99, fairP99)
	}
}

// smallApp serves app "small" on tr with a dyno that answers "ok".
func smallApp(t *testing.T, tr *testRouter) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr.SetApp("small", []Instance{b.instance("web.1")})
}

// One fast download does not hold up another app's requests: the loop takes turns.
func TestLoopFastDownloadDoesNotStallOthers(t *testing.T) {
	const total = 4 << 30 // more than the download gets through in the window
	stop := make(chan struct{})
	big := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		w.Header().Set("Content-Length", strconv.Itoa(total))
		for n := 0; n < total; n += len(chunk) {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	tr := startLoopRouter(t, nil)
	tr.SetApp("big", []Instance{big.instance("web.1")})
	smallApp(t, tr)

	c, _ := clientConnTo(t, tr.Addr())
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: big.localhost\r\n\r\n")
	var got atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // reads as fast as it can until its connection closes
		defer wg.Done()
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		c.Close()
		wg.Wait()
	}()
	waitFor(t, "the download under way", func() bool { return got.Load() >= 8<<20 })
	g0, t0 := got.Load(), time.Now()
	expectFair(t, tr, "one client downloads as fast as it can")
	t.Logf("the download ran at %.0f MB/s meanwhile", float64(got.Load()-g0)/time.Since(t0).Seconds()/1e6)
}

// chunkedHead and tinyChunk make an endless response of one-byte chunks, which costs the
// loop far more to take apart than it costs a dyno to send.
const (
	chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	tinyChunk   = "1\r\nx\r\n"
)

// streamingDynos starts n dynos that answer a request with head and then unit, over and
// over, as fast as the router takes them, until stop is closed; sent counts the bytes.
func streamingDynos(t *testing.T, n int, head, unit string, stop <-chan struct{}) (insts []Instance, sent *atomic.Int64) {
	sent = new(atomic.Int64)
	b := []byte(strings.Repeat(unit, (256<<10)/len(unit)))
	for i := range n {
		addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, head)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				n, err := c.Write(b)
				sent.Add(int64(n))
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				if err != nil {
					return
				}
			}
		})
		insts = append(insts, rawInstance(addr, "web."+strconv.Itoa(i+1)))
	}
	return insts, sent
}

// endlessStreams is how many dynos stream at once in the tests of endless responses:
// together they send faster than one thread takes their responses apart.
const endlessStreams = 3

// Endless responses drained after their clients left do not hold up another app's
// requests.
func TestLoopEndlessDrainDoesNotStallOthers(t *testing.T) {
	stop := make(chan struct{})
	insts, sent := streamingDynos(t, endlessStreams, chunkedHead, tinyChunk, stop)
	tr := startLoopRouter(t, func(c *Config) { c.RequestTimeout = 10 * time.Second })
	tr.SetApp("endless", insts)
	smallApp(t, tr)
	defer close(stop) // the dynos' responses end, and the drains

	for range endlessStreams {
		c, br := clientConnTo(t, tr.Addr())
		io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: endless.localhost\r\n\r\n")
		if _, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err != nil {
			t.Fatal(err)
		}
		c.Close() // the client leaves: the rest of the response is drained
	}
	waitFor(t, "the clients' leaving logged (H27)", func() bool {
		return strings.Count(tr.logs.String(), "code=H27") >= endlessStreams
	})
	if busy := tr.appStats("endless").Busy; busy != endlessStreams {
		t.Fatalf("%d of the %d endless dynos busy after their clients left: not drained", busy, endlessStreams)
	}
	s0 := sent.Load()
	waitFor(t, "the drains under way", func() bool { return sent.Load() >= s0+1<<20 })
	expectFair(t, tr, strconv.Itoa(endlessStreams)+" endless responses of tiny chunks are drained")
}

// Clients that pipeline requests answered at once (H10: no dyno up) do not monopolise
// the loop.
func TestLoopPipeliningClientsDoNotStallOthers(t *testing.T) {
	const clients = 4 // together faster than one thread answers them
	tr := startLoopRouter(t, func(c *Config) { c.DownBackoff = time.Minute; c.MaxDownBackoff = time.Minute })
	tr.SetApp("down", []Instance{rawInstance(refusingAddr(t), "web.1")})
	smallApp(t, tr)
	if resp, _ := tr.do(t, "GET", "down.localhost", "/", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the app whose dyno is down: %d, want 503", resp.StatusCode)
	}

	batch := strings.Repeat("GET / HTTP/1.1\r\nHost: down.localhost\r\n\r\n", 1000)
	var answered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var conns []net.Conn
	defer func() {
		close(stop)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for range clients {
		c, _ := clientConnTo(t, tr.Addr())
		conns = append(conns, c)
		wg.Add(2)
		go func() { // writes batches of requests until stopped (or the router stops reading)
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := io.WriteString(c, batch); err != nil {
					return
				}
			}
		}()
		go func() { // reads the answers as fast as it can
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				n, err := c.Read(buf)
				answered.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	waitFor(t, "the pipelined requests answered", func() bool { return answered.Load() >= 4<<20 })
	expectFair(t, tr, strconv.Itoa(clients)+" clients pipeline requests answered H10")
}

// Dynos that send an endless stream of tiny chunks, or of 1xx responses, do not hold up
// another app's requests.
func TestLoopHostileDynosDoNotStallOthers(t *testing.T) {
	for _, tc := range []struct{ name, head, unit string }{
		{"tiny chunks", chunkedHead, tinyChunk},
		{"1xx responses", "", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			insts, sent := streamingDynos(t, endlessStreams, tc.head, tc.unit, stop)
			tr := startLoopRouter(t, func(c *Config) { c.RequestTimeout = 10 * time.Second })
			tr.SetApp("evil", insts)
			smallApp(t, tr)
			defer close(stop)

			var wg sync.WaitGroup
			var clients []net.Conn
			defer func() {
				for _, c := range clients {
					c.Close()
				}
				wg.Wait()
			}()
			for range endlessStreams {
				c, _ := clientConnTo(t, tr.Addr())
				clients = append(clients, c)
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: evil.localhost\r\n\r\n")
				wg.Add(1)
				go func() { // takes whatever comes, as fast as it can
					defer wg.Done()
					io.Copy(io.Discard, c)
				}()
			}
			waitFor(t, "the dynos' streams under way", func() bool { return sent.Load() >= 1<<20 })
			expectFair(t, tr, strconv.Itoa(endlessStreams)+" dynos send endless streams of "+tc.name)
		})
	}
}

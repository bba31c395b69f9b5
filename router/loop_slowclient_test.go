package router

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// A client that takes a response slower than its dyno sends it: the event loop relays at
// the client's pace, holding a bounded amount for it, and serves it whole.

// queuedLoopRequest waits for a request of the event loop to wait at the head of app's
// queue (its dynos held busy by the caller) and returns it: a test reaches the loop's
// state for a connection through it (runOnLoop).
func queuedLoopRequest(t *testing.T, tr *testRouter, app string) *loopRequest {
	t.Helper()
	var rq *loopRequest
	waitFor(t, "a request of the loop queued for "+app, func() bool {
		tr.mu.Lock()
		a := tr.apps[app]
		tr.mu.Unlock()
		if a == nil {
			return false
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.head != nil {
			rq, _ = a.head.loop.(*loopRequest)
		}
		return rq != nil
	})
	return rq
}

// runOnLoop runs f on s's loop, where the state of its connections may be read, and waits
// for it. It says false when the loop has stopped.
func runOnLoop(t *testing.T, s *loopServer, f func()) bool {
	t.Helper()
	done := make(chan struct{})
	if !s.ev.Post(func() { f(); close(done) }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		t.Fatal("the event loop did not run a function posted to it within 10 s")
		return false
	}
}

// pacedRead reads r at rate bytes a second for at most d, and returns what it read and
// the error that ended it (nil: d passed).
func pacedRead(r io.Reader, rate int, d time.Duration) (int, error) {
	buf := make([]byte, 4<<10)
	start := time.Now()
	got := 0
	for time.Since(start) < d {
		n, err := r.Read(buf)
		got += n
		if err != nil {
			return got, err
		}
		if ahead := time.Duration(float64(got)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return got, nil
}

// A client slightly slower than its dyno's steady stream does not make the loop's output
// buffer for it grow: what the client took goes, and what waits stays near maxPendingOut.
func TestLoopLaggingClientsOutputStaysBounded(t *testing.T) {
	t.Parallel()
	const (
		dynoRate   = 8000 << 10 // bytes a second
		clientRate = 7840 << 10 // 2% slower
		tick       = 5 * time.Millisecond
		streamFor  = 3 * time.Second
	)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
			return
		}
		rc := http.NewResponseController(w)
		chunk := make([]byte, dynoRate*int(tick)/int(time.Second))
		start, sent := time.Now(), 0
		for time.Since(start) < streamFor {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			rc.Flush()
			sent += len(chunk)
			if ahead := time.Duration(float64(sent)/dynoRate*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	})
	// Small socket buffers, as on a host short of socket memory: the client's pace
	// shows in the loop's own buffer at once.
	tr := startLoopRouter(t, func(c *Config) {
		c.Listener.Close()
		c.Listener = listenSendBuffer(t, 16<<10)
		c.RequestTimeout = 10 * time.Second
	})
	tr.SetApp("st", []Instance{b.instance("web.1")})

	holder, _ := clientConnTo(t, tr.Addr())
	io.WriteString(holder, "GET /hold HTTP/1.1\r\nHost: st.localhost\r\n\r\n")
	waitFor(t, "the dyno held", func() bool { return b.inflight.Load() == 1 })
	c := dialReceiveBuffer(t, tr.Addr(), 8<<10, 0)
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: st.localhost\r\n\r\n")
	rq := queuedLoopRequest(t, tr, "st")
	lc, s := rq.c, rq.s
	close(release) // the stream begins

	done := make(chan int, 1)
	go func() {
		n := 0
		if resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4<<10), &http.Request{Method: "GET"}); err == nil {
			n, _ = pacedRead(resp.Body, clientRate, streamFor+5*time.Second)
		}
		done <- n
	}()
	maxCap, maxPending, samples := 0, 0, 0
	for got := -1; got < 0; {
		select {
		case got = <-done:
			t.Logf("the client read %d KiB", got>>10)
		case <-time.After(20 * time.Millisecond):
			runOnLoop(t, s, func() {
				maxCap = max(maxCap, cap(lc.out))
				maxPending = max(maxPending, len(lc.out)-lc.ooff)
			})
			samples++
		}
	}
	t.Logf("over %d samples, the client's output buffer held at most %d KiB to send, in a buffer of at most %d KiB (maxPendingOut %d KiB)",
		samples, maxPending>>10, maxCap>>10, maxPendingOut>>10)
	// What waits is maxPendingOut and one read of the dyno (32 KiB) at most; what was
	// sent goes once it is as much as what waits; append rounds up.
	if bound := 4 * (maxPendingOut + 32<<10); maxCap > bound {
		t.Errorf("the loop's output buffer for a lagging client grew to %d KiB, want at most %d KiB", maxCap>>10, bound>>10)
	}
}

// A client on a slow link that takes a large response steadily gets it whole, however
// long it takes, and the dyno is not blamed (H18) while the loop waits for the client.
func TestLoopSteadySlowReaderGetsTheWholeResponse(t *testing.T) {
	const (
		size    = 384 << 10
		rate    = 64 << 10 // bytes a second the client takes
		timeout = 250 * time.Millisecond
	)
	b := sizedBackend(t, size)
	// Small socket buffers and segments, as on a slow link: the client takes a few KiB
	// at a time, well within half the request timeout, while the loop, which holds what
	// waits for the client, stops reading the dyno for longer than the timeout each time
	// (the client takes a read of the dyno, 32 KiB, in half a second).
	tr := startLoopRouter(t, func(c *Config) {
		c.Listener.Close()
		c.Listener = listenSendBuffer(t, 4<<10)
		c.RequestTimeout = timeout
	})
	tr.SetApp("sr", []Instance{b.instance("web.1")})
	c := dialReceiveBuffer(t, tr.Addr(), 4<<10, 536)
	start := time.Now()
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: sr.localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4<<10), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := pacedRead(resp.Body, rate, time.Minute)
	if err == io.EOF {
		err = nil
	}
	t.Logf("read %d of %d KiB at %d KiB/s in %v (request timeout %v): %v", n>>10, size>>10, rate>>10,
		time.Since(start).Round(time.Millisecond), timeout, err)
	if n != size || err != nil {
		t.Errorf("a client reading steadily at %d KiB/s got %d of %d bytes: %v", rate>>10, n, size, err)
	}
	waitFor(t, "the request logged", func() bool { return tr.logHas(`path="/big"`) })
	if !tr.logHas("at=info", `path="/big"`, "bytes="+strconv.Itoa(size)) {
		t.Errorf("the request was not logged served whole")
	}
}

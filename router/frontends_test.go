package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"
)

// Helpers of the tests that run the same traffic through both HTTP/1.1 front ends, the
// goroutine server (Config.EventLoop false) and the event loop, and compare what the
// clients, the dynos, the access log and the metrics saw (frontends_*_test.go).

// frontEndName names a front end in subtests and reports.
func frontEndName(loop bool) string {
	if loop {
		return "loop"
	}
	return "goroutine"
}

// onBothFrontEnds runs side as a subtest on the goroutine server, then as one on the
// event loop, and returns what each saw. When a side does not finish, the test ends: it
// fails when the side failed, and is skipped when the side was.
func onBothFrontEnds[R any](t *testing.T, side func(t *testing.T, loop bool) R) (goroutine, loop R) {
	t.Helper()
	var got [2]R
	for i, onLoop := range []bool{false, true} {
		finished := false
		t.Run(frontEndName(onLoop), func(t *testing.T) {
			got[i] = side(t, onLoop)
			finished = true
		})
		if !finished {
			if t.Failed() {
				t.FailNow()
			}
			t.SkipNow()
		}
	}
	return got[0], got[1]
}

// startFrontEnd is startRouter on the event loop (loop) or the goroutine server,
// whatever DYNO_ROUTER_EVENT_LOOP says. A listener that mod brings replaces startRouter's.
func startFrontEnd(t *testing.T, loop bool, mod func(*Config)) *testRouter {
	t.Helper()
	return startRouter(t, func(c *Config) {
		own := c.Listener
		if mod != nil {
			mod(c)
		}
		if c.Listener != own {
			own.Close()
		}
		c.EventLoop = loop
	})
}

// runFrontEnd is startFrontEnd for a test that shuts the router down itself: stop
// cancels Run and returns what it returned (stop is also called at the test's end).
func runFrontEnd(t *testing.T, loop bool, mod func(*Config)) (tr *testRouter, stop func() error) {
	t.Helper()
	ln := listen(t)
	logs := &syncBuffer{}
	cfg := Config{
		Listener:        ln,
		Logger:          hclog.New(&hclog.LoggerOptions{Name: "router", Output: logs, Level: hclog.Debug}),
		ShutdownTimeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	cfg.EventLoop = loop
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.hooks.doubleSettle = func(l lease, o outcome) {
		t.Errorf("dyno %s: lease %d settled again (%s)", l.d.name, l.n, o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("router did not start: %v", err)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				runErr = errors.New("router did not stop within 15s")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("router Run: %v", err)
		}
		if t.Failed() {
			t.Logf("router logs:\n%s", logs.String())
		}
	})
	return &testRouter{Router: r, t: t, url: "http://" + r.Addr(), logs: logs}, stop
}

// accessLines returns the router's access lines so far, in order, without hclog's prefix.
func accessLines(tr *testRouter) []string {
	var out []string
	for _, l := range strings.Split(tr.logs.String(), "\n") {
		if _, line, ok := strings.Cut(l, "router.access: "); ok {
			out = append(out, line)
		}
	}
	return out
}

// accessLineFor returns the access line of the request for path, or "" before there is one.
func accessLineFor(tr *testRouter, path string) string {
	for _, l := range accessLines(tr) {
		if strings.Contains(l, `path="`+path+`"`) {
			return l
		}
	}
	return ""
}

// accessField returns the value of a field of an access line ("" when it has none).
func accessField(t *testing.T, line, name string) string {
	t.Helper()
	f, err := parseRouterLine(line)
	if err != nil {
		t.Errorf("access line %q: %v", line, err)
	}
	return f[name]
}

var (
	accessTimings   = regexp.MustCompile(`\b(connect|wait|service)=\d+ms`)
	accessRequestID = regexp.MustCompile(`\brequest_id=\S+`)
)

// withoutTimings is an access line without its timings and request ID, which differ from
// run to run: what is left is the same for the same request on either front end.
func withoutTimings(line string) string {
	line = accessTimings.ReplaceAllString(line, "$1=Tms")
	return accessRequestID.ReplaceAllString(line, "request_id=ID")
}

// routerMetrics returns the router's own series (dyno_router_*): counters and gauges by
// value, histograms by their count, keyed "name{label=value,...}".
func routerMetrics(t *testing.T, r *Router) map[string]float64 {
	t.Helper()
	fams, err := r.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "dyno_router_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// sameMetrics fails the test for each series whose value differs between the goroutine
// server's metrics (g) and the event loop's (l).
func sameMetrics(t *testing.T, g, l map[string]float64) {
	t.Helper()
	var keys []string
	for k := range g {
		keys = append(keys, k)
	}
	for k := range l {
		if _, ok := g[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if g[k] != l[k] {
			t.Errorf("metric %s: goroutine server %v, event loop %v", k, g[k], l[k])
		}
	}
}

// sameLines fails the test for each line that differs between the goroutine server's
// lines (g) and the event loop's (l), in order; what names them.
func sameLines(t *testing.T, what string, g, l []string) {
	t.Helper()
	if len(g) != len(l) {
		t.Errorf("%s: goroutine server %d, event loop %d:\ngoroutine server:\n  %s\nevent loop:\n  %s",
			what, len(g), len(l), strings.Join(g, "\n  "), strings.Join(l, "\n  "))
		return
	}
	for i := range g {
		if g[i] != l[i] {
			t.Errorf("%s differs:\n  goroutine server: %s\n  event loop:       %s", what, g[i], l[i])
		}
	}
}

// exchange sends raw on a new connection to addr and describes the one response it reads
// (see readAnswer). It may be called from any goroutine.
func exchange(t *testing.T, addr, raw, method string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial %s: %v", addr, err)
		return "no connection"
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	return readAnswer(bufio.NewReader(c), method)
}

// readAnswer reads one response to a request of method off br and describes what a
// client got: the status, whether the connection closes, the headers but Date, the
// framing, the body (its first 64 bytes), the trailer, and how a read failed.
func readAnswer(br *bufio.Reader, method string) string {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return "no response: " + readFailure(err)
	}
	body, berr := io.ReadAll(resp.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "%s close=%v", resp.Status, resp.Close)
	var keys []string
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, resp.Header[k])
	}
	fmt.Fprintf(&b, " te=%v cl=%d len=%d body=%q", resp.TransferEncoding, resp.ContentLength, len(body), body[:min(len(body), 64)])
	if berr != nil {
		fmt.Fprintf(&b, " bodyerr=%s", readFailure(berr))
	}
	if len(resp.Trailer) > 0 {
		fmt.Fprintf(&b, " trailer=%v", resp.Trailer)
	}
	return b.String()
}

// readFailure names how a read ended: EOF, reset, timeout, or the error itself.
func readFailure(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "EOF"):
		return "EOF"
	case strings.Contains(s, "reset"):
		return "reset"
	case strings.Contains(s, "timeout"):
		return "timeout"
	}
	return s
}

// waitAppIdle waits until no dyno of app is busy (draining included) and none of its
// requests waits.
func waitAppIdle(t *testing.T, tr *testRouter, app string) {
	t.Helper()
	waitFor(t, app+" idle", func() bool {
		s := tr.appStats(app)
		return s.Busy == 0 && s.Waiting == 0
	})
}

// holdAtTheDyno sends tr a GET of path for host, for the dyno of blockingBackend (order,
// release) to hold, and returns once it is there, with the release: it lets the dyno
// answer and waits for the answer (called at the latest when the test ends).
func holdAtTheDyno(t *testing.T, tr *testRouter, order chan string, release chan struct{}, host, path string) (releaseIt func()) {
	t.Helper()
	var once sync.Once
	var wg sync.WaitGroup
	releaseIt = func() {
		once.Do(func() { close(release) })
		wg.Wait()
	}
	t.Cleanup(releaseIt)
	wg.Add(1)
	go func() {
		defer wg.Done()
		exchange(t, tr.Addr(), "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
	}()
	waitFor(t, path+" at the dyno", func() bool { return len(order) == 1 })
	return releaseIt
}

// hangingAddr is a loopback address whose connects hang until the dialer's timeout: a
// listening socket with a backlog of 0 that never accepts, its accept queue filled. The
// test is skipped where connects do not hang so.
func hangingAddr(t *testing.T) string {
	t.Helper()
	fd, addr := boundSocket(t)
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for range 8 { // until a connect hangs: the queue is full
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return addr
		}
		if err != nil {
			t.Fatalf("filling the accept queue of %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill a listener's accept queue: connects do not hang here")
	return ""
}

// listenSendBuffer is a loopback listener whose accepted sockets have a send buffer of
// n bytes (SO_SNDBUF, which the kernel doubles) instead of one the kernel grows.
func listenSendBuffer(t *testing.T, n int) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, n) }); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialReceiveBuffer dials addr with a receive buffer of rcvbuf bytes and, when mss is
// not 0, a maximum segment size of mss: a client on a slow link. Reads and writes fail
// after a minute.
func dialReceiveBuffer(t *testing.T, addr string, rcvbuf, mss int) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			if serr == nil && mss != 0 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, mss)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	return c
}

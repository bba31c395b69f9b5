package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testRouter is a running router on a free loopback port.
type testRouter struct {
	*Router
	t    *testing.T
	url  string
	logs *syncBuffer
}

// setCluster makes tr a member of the cluster c, as a test sets it up after tr started.
// A router on the event loop cannot be one (Config.EventLoop): the test is skipped.
func (tr *testRouter) setCluster(c *cluster) {
	if tr.cfg.EventLoop {
		tr.t.Skip("cluster mode: not served by the event loop")
	}
	tr.cluster = c
}

// eventLoopByDefault: the suite serves on the event loop, as dyno-router does by default,
// and on the goroutine server with DYNO_ROUTER_EVENT_LOOP=0.
func eventLoopByDefault() bool {
	return os.Getenv("DYNO_ROUTER_EVENT_LOOP") != "0"
}

func startRouter(t *testing.T, mod func(*Config)) *testRouter {
	t.Helper()
	return startRouterHooked(t, mod, testHooks{})
}

// startRouterHooked is startRouter with test hooks. A lease settled twice fails the test
// unless hooks has its own doubleSettle.
func startRouterHooked(t *testing.T, mod func(*Config), hooks testHooks) *testRouter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{
		Listener:        ln,
		Logger:          hclog.New(&hclog.LoggerOptions{Name: "router", Output: logs, Level: hclog.Debug}),
		ShutdownTimeout: 5 * time.Second,
		EventLoop:       eventLoopByDefault(),
	}
	if mod != nil {
		mod(&cfg)
	}
	if cfg.Cluster {
		cfg.EventLoop = false // as dyno-router -cluster does
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hooks.doubleSettle == nil {
		hooks.doubleSettle = func(l lease, o outcome) {
			t.Errorf("dyno %s: lease %d settled again (%s)", l.d.name, l.n, o)
		}
	}
	r.hooks = hooks
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("router did not start: %v", err)
	}
	t.Cleanup(func() {
		stopAt := time.Now()
		defer func() { t.Logf("router stopped in %s", time.Since(stopAt)) }()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("router Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("router did not stop within 15s")
		}
		if t.Failed() {
			t.Logf("router logs:\n%s", logs.String())
		}
	})
	return &testRouter{Router: r, t: t, url: "http://" + r.Addr(), logs: logs}
}

// backend is a dyno on loopback that fails the test if it ever holds two requests.
type backend struct {
	t        *testing.T
	srv      *httptest.Server
	inflight atomic.Int32
	served   atomic.Int32
	conns    atomic.Int32
	handler  http.HandlerFunc
	ended    sync.Map // requests counted out by closeHijacked
	holding  sync.Map // *http.Request -> what the dyno holds, for the report of two at once
}

// forwardApp makes tr a cluster member whose peer "peer", at addr, owns every dyno of
// app, of which tr has none: tr forwards the app's requests to addr.
// peerKey is the peer key of the member "peer" of forwardApp's cluster.
const peerKey = "the-peer-key"

func forwardApp(tr *testRouter, app, addr string) {
	tr.setCluster(&cluster{id: "me", members: []string{"peer"}, addrs: map[string]string{"peer": addr},
		keys: map[string]string{"peer": peerKey}, insts: map[string][]Instance{app: {{ID: "x"}}}})
	tr.SetApp(app, nil)
}

// recordingBackend is a dyno that reads each request's body and records it as
// "METHOD path=body"; seen returns the records so far and starts a new list.
func recordingBackend(t *testing.T) (b *backend, seen func() []string) {
	var mu sync.Mutex
	var recs []string
	b = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		recs = append(recs, r.Method+" "+r.URL.Path+"="+string(body))
		mu.Unlock()
	})
	return b, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := recs
		recs = nil
		return out
	}
}

// closeHijacked closes a hijacked connection, counting its request out first: the router
// frees the dyno the moment it sees the close, and may send the next request at once.
func (b *backend) closeHijacked(r *http.Request, c net.Conn) {
	b.ended.Store(r, true)
	b.holding.Delete(r)
	b.inflight.Add(-1)
	c.Close()
}

// describe names a request a backend holds: its method, path, client and User-Agent.
func describe(r *http.Request) string {
	return r.Method + " " + r.URL.Path + " from " + r.RemoteAddr + " (" + r.UserAgent() + ")"
}

// sizedBackend is a dyno that answers every request with size bytes of "z", with a
// Content-Length, written 64 KiB at a time until the client leaves.
func sizedBackend(t *testing.T, size int) *backend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := []byte(strings.Repeat("z", 64<<10))
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk[:min(len(chunk), size-n)]); err != nil {
				return
			}
		}
	})
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{t: t, handler: h}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.holding.Store(r, describe(r))
		if n := b.inflight.Add(1); n > 1 {
			var held []string
			b.holding.Range(func(_, v any) bool { held = append(held, v.(string)); return true })
			t.Errorf("backend %s holds %d requests at once: %s", b.srv.Listener.Addr(), n, strings.Join(held, "; "))
		}
		defer func() {
			if _, early := b.ended.LoadAndDelete(r); !early {
				b.inflight.Add(-1)
			}
			b.holding.Delete(r)
		}()
		b.served.Add(1)
		if b.handler != nil {
			b.handler(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.close)
	return b
}

// close stops the backend at the end of its test. After a failure, a request may wait
// for a release the test never gave: its connection is cut (a handler that watches its
// request's context returns), and one still running after backendCloseWait is left
// running and reported, so that the test ends with its failure rather than hanging.
func (b *backend) close() {
	if b.t.Failed() {
		b.srv.CloseClientConnections()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.srv.Close()
	}()
	select {
	case <-done:
	case <-time.After(backendCloseWait):
		b.t.Errorf("backend %s still serves a request %s after its test; left running", b.srv.Listener.Addr(), backendCloseWait)
	}
}

// backendCloseWait bounds how long a test's end waits for its backend's requests.
const backendCloseWait = 15 * time.Second

func (b *backend) instance(name string) Instance {
	host, port, _ := net.SplitHostPort(b.srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return Instance{ID: "svc-" + name + "-" + port, Dyno: name, Release: "v1", Address: host, Port: p}
}

// get sends a request with a Host header through the router.
func (tr *testRouter) do(t *testing.T, method, host, path string, body io.Reader, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, tr.url+path, body)
	if err != nil {
		t.Errorf("bad test request: %v", err)
		return &http.Response{Header: http.Header{}}, ""
	}
	req.Host = host
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Errorf("%s %s via router: %v", method, path, err)
		return &http.Response{Header: http.Header{}}, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var testClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}

// waitFor polls cond for up to 10 s with testutil.WaitFor.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func (tr *testRouter) waiting(name string) int {
	tr.mu.Lock()
	a := tr.apps[name]
	tr.mu.Unlock()
	if a == nil {
		return -1
	}
	_, _, _, _, w := a.stats()
	return w
}

func (tr *testRouter) appStats(name string) AppStatus {
	return tr.Status().Apps[name]
}

// logHas reports whether a log line contains all of parts.
func (tr *testRouter) logHas(parts ...string) bool {
	for _, line := range strings.Split(tr.logs.String(), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // also for a test that ends early (skipped)
	return l
}

// refusingAddr is an address on loopback whose connections are refused, as a dead dyno's
// port refuses them: a socket bound there, never listening, holds the port for the test,
// so that no other test's listener can take it.
func refusingAddr(t *testing.T) string {
	_, addr := boundSocket(t)
	return addr
}

// boundSocket is a TCP socket bound to a free loopback port for the test, and its
// address.
func boundSocket(t *testing.T) (fd int, addr string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "router", Output: io.Discard})
}

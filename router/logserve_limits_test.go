package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dynogrid/dynogrid/router/logapi"
)

// Readers are bounded over all apps: with LogsMaxReaders waiting, one more (of any
// app) is answered 503 at once, with Retry-After and a body that says why; once a
// reader leaves, the next is served.
func TestLogsEndpointBoundsAllReaders(t *testing.T) {
	t.Parallel()
	tr, ln := startLogsRouter(t, func(c *Config) { c.LogsMaxReaders = 3 })
	apps := []string{"shop", "beta", "gamma", "delta"}
	key := strings.Repeat("k", 64)
	known := map[string]bool{}
	tr.logKeys.keys = map[string]cachedKey{}
	for _, a := range apps {
		known[a] = true
		tr.logKeys.keys[a] = cachedKey{key: key, at: time.Now()}
	}
	tr.nomadApps.Store(&known)
	base := "http://" + ln.Addr().String() + logapi.Path
	get := func(ctx context.Context, app string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+app+"?wait=1m", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		return http.DefaultClient.Do(req)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, firstCancel := context.WithCancel(ctx)
	for i, app := range apps[:3] {
		c := ctx
		if i == 0 {
			c = first
		}
		go func() {
			if resp, err := get(c, app); err == nil {
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, "three readers of three apps waiting", func() bool { return tr.logReaders.Load() == 3 })
	resp, err := get(context.Background(), "delta")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(string(b), "the router serves 3 log readers at once, its most; try again") {
		t.Fatalf("a fourth reader: %d (Retry-After %q) %q, want 503 with Retry-After 1 saying the router serves 3 readers",
			resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if n := counterValue(t, tr.metrics.logsRefused); n != 1 {
		t.Errorf("dyno_router_logs_refused_total %v, want 1", n)
	}
	// One reader leaves: the next is served and gets its line.
	firstCancel()
	waitFor(t, "the first reader gone", func() bool { return tr.logReaders.Load() == 2 })
	got := make(chan string, 1)
	go func() {
		resp, err := get(context.Background(), "delta")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	waitFor(t, "delta's reader waiting", func() bool { return tr.logRings.ring("delta").readers.Load() == 1 })
	tr.logRings.add("delta", time.Now(), "at=info delta's line")
	if s := <-got; !strings.HasPrefix(s, "200 ") || !strings.Contains(s, "delta's line") {
		t.Fatalf("delta's reader after a slot freed: %s, want 200 with its line", s)
	}
	cancel()
	waitFor(t, "every reader gone", func() bool { return tr.logReaders.Load() == 0 })
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// smallBufferListener makes the send buffer of each accepted connection small, so that a
// client that does not read stalls the server's writes after a few KiB, not megabytes.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A reader that asks for lines and never reads the answer is dropped once a write to it
// has not ended in LogsWriteTimeout: its slot is freed, and the drop is counted.
func TestLogsEndpointDropsAReaderThatDoesNotRead(t *testing.T) {
	t.Parallel()
	tr, ln := startLogsRouter(t, func(c *Config) {
		c.LogsListener = smallBufferListener{c.LogsListener}
		c.LogsWriteTimeout = 300 * time.Millisecond
	})
	key := holdLogKeys(tr, "shop")
	line := "at=info " + strings.Repeat("x", 250)
	for i := 0; i < ringLines; i++ {
		tr.logRings.add("shop", time.Now(), line)
	}
	// A client with a small receive window that pipelines requests for every line
	// (about 256 KiB each) and reads nothing.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := fmt.Sprintf("GET %sshop?num=%d HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer %s\r\n\r\n", logapi.Path, ringLines, key)
	if _, err := io.WriteString(c, strings.Repeat(req, 20)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reader that does not read dropped", func() bool {
		return counterValue(t, tr.metrics.logsStalled) == 1 && tr.logReaders.Load() == 0
	})
	// The router closed the connection: what the client reads ends, short of the 20
	// answers it asked for.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading what the router sent: %v after %d bytes, want the connection closed", err, n)
	}
	if n >= int64(20*ringLines*len(line)) {
		t.Errorf("the client read %d bytes: every answer, though it stalled", n)
	}
}

func TestLogsLimitsAreChecked(t *testing.T) {
	t.Parallel()
	for want, mod := range map[string]func(*Config){
		"logs max readers -1: must be at least 1":      func(c *Config) { c.LogsMaxReaders = -1 },
		"logs write timeout -1s: must not be negative": func(c *Config) { c.LogsWriteTimeout = -time.Second },
	} {
		c := Config{}
		mod(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want an error with %q", err, want)
		}
	}
}

// One app's key holds at most maxLogsReaders of the endpoint's slots, whether its
// requests wait for a line or are being answered to a client that reads slowly: one
// more is answered 429, and another app's reader is still served.
func TestLogsEndpointBoundsOneAppsReaders(t *testing.T) {
	t.Parallel()
	tr, ln := startLogsRouter(t, func(c *Config) {
		c.LogsListener = smallBufferListener{c.LogsListener}
		c.LogsMaxReaders = maxLogsReaders + 8
		c.LogsWriteTimeout = time.Minute
	})
	key := holdLogKeys(tr, "shop", "other")
	line := "at=info " + strings.Repeat("x", 250)
	for i := 0; i < ringLines; i++ {
		tr.logRings.add("shop", time.Now(), line)
	}
	tr.logRings.add("other", time.Now(), "at=info other's line")
	// shop's clients ask for every line (about 256 KiB) and read nothing, on connections
	// with a small receive window: the router's writes to them stall.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	req := fmt.Sprintf("GET %sshop?num=%d HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer %s\r\n\r\n", logapi.Path, ringLines, key)
	var mu sync.Mutex
	status := map[string]int{}
	for i := 0; i < maxLogsReaders+8; i++ {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		go func() { // the status line only: then the client reads no more
			b := make([]byte, len("HTTP/1.1 200"))
			_, err := io.ReadFull(c, b)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				status[err.Error()]++
				return
			}
			status[string(b[len("HTTP/1.1 "):])]++
		}()
	}
	answered := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range status {
			n += c
		}
		return n
	}
	waitFor(t, "every request of shop answered", func() bool { return answered() == maxLogsReaders+8 })
	mu.Lock()
	if status["200"] != maxLogsReaders || status["429"] != 8 {
		t.Errorf("shop's %d requests: %v, want %d answered 200 and 8 refused 429", maxLogsReaders+8, status, maxLogsReaders)
	}
	mu.Unlock()
	get := func(app string) int {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+logapi.Path+app, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("other"); code != http.StatusOK {
		t.Errorf("another app's reader, with shop's readers stalled: %d, want 200", code)
	}
}

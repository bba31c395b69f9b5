package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/logstream"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/logapi"
)

type printed struct {
	mu    sync.Mutex
	lines []string
}

func (p *printed) out(s string) { p.mu.Lock(); p.lines = append(p.lines, s); p.mu.Unlock() }
func (p *printed) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}

func TestLogMergerPrintsInTimeOrder(t *testing.T) {
	t.Parallel()
	var p printed
	m := newLogMerger(p.out)
	t0 := time.Now()
	m.add(logLine{at: t0.Add(2 * time.Millisecond), prefix: "web.1", text: "second"})
	m.add(logLine{at: t0.Add(3 * time.Millisecond), prefix: "web.1", text: "third, same time"})
	m.add(logLine{at: t0.Add(3 * time.Millisecond), prefix: "web.1", text: "fourth, same time"})
	m.add(logLine{at: t0.Add(time.Millisecond), prefix: "router", text: "first, came last"})
	m.flush(time.Time{})
	want := []string{"router: first, came last", "web.1: second", "web.1: third, same time", "web.1: fourth, same time"}
	if got := p.get(); !slices.Equal(got, want) {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

func TestLogMergerHoldsLinesSoThatLateOlderOnesGoFirst(t *testing.T) {
	t.Parallel()
	var p printed
	m := newLogMerger(p.out)
	m.hold = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.run(ctx)
	now := time.Now()
	m.add(logLine{at: now, prefix: "web.1", text: "newer"})
	m.add(logLine{at: now.Add(-time.Second), prefix: "router", text: "older, a little later"})
	testutil.WaitFor(t, 10*time.Second, "both lines printed", func() bool { return len(p.get()) == 2 })
	if got := p.get(); got[0] != "router: older, a little later" {
		t.Fatalf("printed %q: the older line that came within the hold went second", got)
	}
}

func TestRouterAddrsFromTheFlag(t *testing.T) {
	t.Parallel()
	m := &meta{}
	got, err := m.routerAddrs("127.0.0.1:8082, https://r2.example.com:9000/")
	if err != nil || !slices.Equal(got, []string{"http://127.0.0.1:8082", "https://r2.example.com:9000"}) {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"ftp://x:1", "http://x:1/path", "http://"} {
		if _, err := m.routerAddrs(bad); err == nil || !strings.Contains(err.Error(), "--router") {
			t.Errorf("--router %q: error %v, want one naming --router", bad, err)
		}
	}
}

func TestRouterReaderFollowsOneRouter(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var queries []string
	epoch := "e1"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		ep := epoch
		mu.Unlock()
		if r.URL.Path != logapi.Path+"shop" || r.Header.Get("Authorization") != "Bearer the-key" {
			http.Error(w, "not the router log key of app shop", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(logapi.Response{Epoch: ep, Last: 7,
			Lines: []logapi.Line{{Seq: 7, Time: time.Unix(1, 0), Line: "at=info request_id=r7"}}})
	}))
	defer srv.Close()
	rr := logstream.NewRouterReader(srv.URL, "shop", "the-key")
	ctx := context.Background()
	if lines, err := rr.Read(ctx, 50, 0); err != nil || len(lines) != 1 || lines[0].Line != "at=info request_id=r7" {
		t.Fatalf("first read: %+v, %v", lines, err)
	}
	if _, err := rr.Read(ctx, 50, time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(queries)
	mu.Unlock()
	if got[0] != "num=50" || got[1] != "after=7&epoch=e1&num=1000&wait=1s" {
		t.Fatalf("queries %q: want the last 50 first, then the lines after 7 of epoch e1", got)
	}
	bad := logstream.NewRouterReader(srv.URL, "shop", "another-key")
	var p printed
	began := time.Now()
	err := followRouter(ctx, bad, 10, true, newLogMerger(p.out), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "refused the app's router log key") || time.Since(began) < refusedGrace {
		t.Fatalf("a refused key while following: %v after %s, want an error once refusedGrace is over", err, time.Since(began))
	}
}

// TestRouterKeyRefusedAtFirst: a router that refuses a key for a moment (it has not
// seen the app, or the key, made a moment ago) is asked again, and its lines shown.
func TestRouterKeyRefusedAtFirst(t *testing.T) {
	t.Parallel()
	var refusals atomic.Int32
	refusals.Store(3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refusals.Add(-1) >= 0 {
			http.Error(w, "not the router log key of app shop", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(logapi.Response{Epoch: "e1", Last: 1,
			Lines: []logapi.Line{{Seq: 1, Time: time.Unix(1, 0), Line: "at=info request_id=r1"}}})
	}))
	defer srv.Close()
	var p printed
	m := newLogMerger(p.out)
	if err := followRouter(context.Background(), logstream.NewRouterReader(srv.URL, "shop", "the-key"), 10, false, m, func(string) {}); err != nil {
		t.Fatalf("a key refused three times, then taken: %v", err)
	}
	m.flush(time.Time{})
	if got := strings.Join(p.get(), "\n"); !strings.Contains(got, "router: at=info request_id=r1") {
		t.Errorf("printed %q, want the router's line", got)
	}
}

// TestLogsShowControlCharacters: dyno logs prints a dyno's OSC 52 clipboard write and a
// CSI clear-screen as visible escapes, whatever its output is (terminal, pipe or file).
func TestLogsShowControlCharacters(t *testing.T) {
	t.Parallel()
	var p printed
	m := newLogMerger(p.out)
	m.add(logLine{at: time.Now(), prefix: "web.1", text: "owned\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07"})
	m.add(logLine{at: time.Now(), prefix: "router", text: "at=info path=\"/\x1b[2J\x1b[H\" status=200"})
	m.flush(time.Time{})
	want := []string{`web.1: owned\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07`, `router: at=info path="/\x1b[2J\x1b[H" status=200`}
	if got := p.get(); !slices.Equal(got, want) {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

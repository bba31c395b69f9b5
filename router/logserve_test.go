package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/router/logapi"
)

// The logs endpoint's answers to requests it refuses before it asks Nomad for a key
// (the key checks against a real Nomad are in e2e/logs_test.go).
func TestLogsEndpointRefusesBadRequests(t *testing.T) {
	t.Parallel()
	tr, ln := startLogsRouter(t)
	tr.nomadApps.Store(&map[string]bool{"shop": true})
	base := "http://" + ln.Addr().String() + logapi.Path
	key := "Bearer " + strings.Repeat("k", 64)
	for _, c := range []struct {
		name, method, url, auth string
		status                  int
		says                    string
	}{
		{"POST", "POST", base + "shop", key, 405, "only GET"},
		{"no app", "GET", base, key, 400, "must name an app"},
		{"bad app name", "GET", base + "Shop_1", key, 400, "must name an app"},
		{"bad after", "GET", base + "shop?after=-1", key, 400, "after:"},
		{"num too big", "GET", base + "shop?num=100000", key, 400, "num:"},
		{"wait too long", "GET", base + "shop?wait=2h", key, 400, "wait:"},
		{"no key", "GET", base + "shop", "", 401, "router log key"},
		{"not a bearer key", "GET", base + "shop", "Basic eDp5", 401, "router log key"},
		{"short key", "GET", base + "shop", "Bearer short", 403, "not the router log key of app shop"},
		{"app Nomad does not have", "GET", base + "other", key, 403, "not the router log key of app other"},
	} {
		req, _ := http.NewRequest(c.method, c.url, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.says) {
			t.Errorf("%s: %d %q, want %d saying %q", c.name, resp.StatusCode, b, c.status, c.says)
		}
	}
}

func TestForwardedRequestsAreTheOwnersLines(t *testing.T) {
	t.Parallel()
	tr := startRouter(t, nil)
	tr.keepLines.Store(true)
	tr.finish(&record{appName: "shop", dyno: "router:b", status: 200, requestID: "fwd"})
	tr.finish(&record{appName: "shop", dyno: "web.1", status: 200, requestID: "own"})
	tr.finish(&record{appName: "shop", dyno: "router:b", code: H10, requestID: "failed-fwd"})
	lines, _, _ := tr.logRings.ring("shop").since(0, 10)
	var got []string
	for _, l := range lines {
		got = append(got, l.Line)
	}
	all := strings.Join(got, "\n")
	if len(lines) != 2 || !strings.Contains(all, "request_id=own") || !strings.Contains(all, "request_id=failed-fwd") {
		t.Fatalf("the app's router lines:\n%s\nwant the request served here and the failed forward, not the one its owner logs", all)
	}
}

// Readers that wait for an app's next line are bounded per app: one more is answered
// 429 at once, and another app's readers are not affected.
func TestLogsEndpointBoundsWaitingReaders(t *testing.T) {
	t.Parallel()
	tr, ln := startLogsRouter(t)
	key := holdLogKeys(tr, "shop", "other")
	base := "http://" + ln.Addr().String() + logapi.Path
	get := func(ctx context.Context, app string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+app+"?wait=1m", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		return http.DefaultClient.Do(req)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < maxLogsReaders; i++ {
		go func() {
			if resp, err := get(ctx, "shop"); err == nil {
				resp.Body.Close()
			}
		}()
	}
	ring := tr.logRings.ring("shop")
	waitFor(t, "the readers waiting", func() bool { return ring.readers.Load() == maxLogsReaders })
	resp, err := get(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("one reader too many: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another app's reader still waits, and gets its line.
	got := make(chan int, 1)
	go func() {
		resp, err := get(context.Background(), "other")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	other := tr.logRings.ring("other")
	waitFor(t, "the other app's reader waiting", func() bool { return other.readers.Load() == 1 })
	tr.logRings.add("other", time.Now(), "a line")
	if s := <-got; s != http.StatusOK {
		t.Fatalf("the other app's reader: %d, want 200", s)
	}
	cancel()
	waitFor(t, "the waiting readers gone", func() bool { return ring.readers.Load() == 0 })
}

// TestLogsEndpointKeepsEachAppsLinesToItsKey holds the keys of two apps and asks for each
// app's lines with the other's key, the key with a byte more or less, and its own: only
// its own key reads an app's lines.
func TestLogsEndpointKeepsEachAppsLinesToItsKey(t *testing.T) {
	t.Parallel()
	tr, ln := startLogsRouter(t)
	tr.nomadApps.Store(&map[string]bool{"shop": true, "beta": true})
	keys := map[string]string{"shop": strings.Repeat("s", 40), "beta": strings.Repeat("b", 40)}
	tr.logRings.add("shop", time.Now(), "at=info shop's line")
	tr.logRings.add("beta", time.Now(), "at=info beta's line")
	base := "http://" + ln.Addr().String() + logapi.Path
	for _, c := range []struct {
		app, key string
		status   int
	}{
		{"shop", keys["beta"], 403},
		{"beta", keys["shop"], 403},
		{"shop", keys["shop"] + "s", 403},
		{"shop", keys["shop"][1:], 403},
		{"shop", keys["shop"], 200},
		{"beta", keys["beta"], 200},
	} {
		// Held as just read, so that no answer needs Nomad.
		tr.logKeys.mu.Lock()
		tr.logKeys.keys = map[string]cachedKey{"shop": {key: keys["shop"], at: time.Now()}, "beta": {key: keys["beta"], at: time.Now()}}
		tr.logKeys.mu.Unlock()
		req, _ := http.NewRequest("GET", base+c.app, nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("lines of %s with key %.3s… (%d bytes): %d %q, want %d", c.app, c.key, len(c.key), resp.StatusCode, b, c.status)
		}
		other := map[string]string{"shop": "beta", "beta": "shop"}[c.app]
		if strings.Contains(string(b), other+"'s line") || (c.status == 200) != strings.Contains(string(b), c.app+"'s line") {
			t.Errorf("lines of %s with key %.3s…: answer %q shows lines it should not", c.app, c.key, b)
		}
	}
}

// startLogsRouter starts a router with a logs endpoint on ln and a Nomad address where
// nothing listens: a test that needs an app's key holds it already.
func startLogsRouter(t *testing.T, mods ...func(*Config)) (*testRouter, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startRouter(t, func(c *Config) {
		c.LogsListener = ln
		c.NomadAddr = "127.0.0.1:1"
		for _, mod := range mods {
			mod(c)
		}
	}), ln
}

// holdLogKeys makes apps exist in the router's view of Nomad with one router log key,
// which it returns, as if read from their Variables.
func holdLogKeys(tr *testRouter, apps ...string) string {
	key := strings.Repeat("k", 64)
	known := map[string]bool{}
	keys := map[string]cachedKey{}
	for _, app := range apps {
		known[app] = true
		keys[app] = cachedKey{key: key, at: time.Now()}
	}
	tr.nomadApps.Store(&known)
	tr.logKeys.mu.Lock()
	tr.logKeys.keys = keys
	tr.logKeys.mu.Unlock()
	return key
}

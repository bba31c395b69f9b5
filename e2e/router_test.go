package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router"
)

// TestThinAppThroughRouter reaches the example Thin app's web dynos through the router by
// Host, <app>.localhost and a custom domain of the spec, and shows the router holding a
// request while both dynos are busy instead of piling it onto one.
func TestThinAppThroughRouter(t *testing.T) {
	t.Parallel()
	g, _, _ := routedApp(t, "shop", `  domains  = ["www.shop.test"]`)
	routerURL := "http://" + g.Options.RouterAddr()
	status := fmt.Sprintf("http://%s:%d/status", g.Options.Bind, g.Options.RouterPort+1)

	// The app answers through the router under either of its names.
	for _, host := range []string{"shop.localhost", "www.shop.test"} {
		testutil.WaitFor(t, time.Minute, host+" to answer through the router", func() error {
			if code, body := through(t, routerURL, host, "/"); code != http.StatusOK || !strings.Contains(body, "Hello from web.") {
				return fmt.Errorf("%d %q", code, body)
			}
			return nil
		})
	}
	if code, body := through(t, routerURL, "nosuchapp.localhost", "/"); code != http.StatusNotFound {
		t.Errorf("an unknown host got %d %q, want 404", code, body)
	}

	// Two long requests take both dynos; a third waits in the router's queue.
	var wg sync.WaitGroup
	codes := make([]int, 3)
	bodies := make([]string, 3)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = through(t, routerURL, "shop.localhost", "/sleep?ms=2000")
		}()
	}
	waitStatus(t, status, "both dynos busy", func(a router.AppStatus) bool { return a.Busy == 2 })
	wg.Add(1)
	go func() { defer wg.Done(); codes[2], _ = through(t, routerURL, "shop.localhost", "/") }()
	waitStatus(t, status, "the third request queued", func(a router.AppStatus) bool { return a.Waiting == 1 && a.Busy == 2 })
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d got %d", i, c)
		}
	}
	if !(strings.Contains(bodies[0]+bodies[1], "on web.1") && strings.Contains(bodies[0]+bodies[1], "on web.2")) {
		t.Errorf("the two long requests should have gone to web.1 and web.2; they said %q and %q", bodies[0], bodies[1])
	}
}

// through sends GET path with Host host to the router and returns the status and body.
func through(t *testing.T, routerURL, host, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, routerURL+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s%s via the router: %v", host, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls the router's /status until the app shop satisfies cond.
func waitStatus(t *testing.T, url, what string, cond func(router.AppStatus) bool) {
	t.Helper()
	waitAppStatus(t, url, "shop", 10*time.Second, what, cond)
}

// waitAppStatus polls the router's /status, for at most within, until app satisfies cond.
func waitAppStatus(t *testing.T, url, app string, within time.Duration, what string, cond func(router.AppStatus) bool) {
	t.Helper()
	testutil.WaitFor(t, within, "the router's status to show "+what, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var last router.Status
		if err := json.NewDecoder(resp.Body).Decode(&last); err != nil {
			return err
		}
		if !cond(last.Apps[app]) {
			return fmt.Errorf("last: %+v", last.Apps[app])
		}
		return nil
	})
}

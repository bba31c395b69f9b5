package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
)

// BenchmarkScaleOut measures, on one machine, how long a deploy of two web dynos takes to
// be healthy, and how long `dyno ps:scale web=10` from web=1 takes until all ten dynos
// have answered requests routed to them through the router.
func BenchmarkScaleOut(b *testing.B) {
	g := harness.Grid(b, harness.WithRouter(b))
	dir := copyApp(b)
	writeSpec(b, dir, webSpec("scale", ""))
	c := newCLI(b, g, "scale")
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c.must("deploy", dir)
		deploy := time.Since(start)

		c.must("ps:scale", "web=1")
		start = time.Now()
		code, out, errOut := c.run("ps:scale", "web=10")
		scaled := time.Since(start)
		if code != 0 {
			b.Fatalf("ps:scale web=10: %s %s", out, errOut)
		}
		seen := waitRoutedDynos(b, g, "scale", 10, 3*time.Minute)
		routed := time.Since(start)
		b.ReportMetric(deploy.Seconds(), "deploy-s")
		b.ReportMetric(scaled.Seconds(), "scale-healthy-s")
		b.ReportMetric(routed.Seconds(), "scale-routed-s")
		b.Logf("deploy of 2 web dynos to healthy: %s; ps:scale web=1->10: all healthy after %s, all 10 answered routed requests after %s (%v)",
			deploy.Round(time.Millisecond), scaled.Round(time.Millisecond), routed.Round(time.Millisecond), seen)
		c.must("apps:destroy", "--confirm", "scale")
	}
}

var dynoRe = regexp.MustCompile(`on (web\.\d+)`)

// waitRoutedDynos sends rounds of n concurrent slow requests through the router until n
// different dynos have answered. Since each dyno takes one request at a time, a round
// of n requests lands on n dynos once they are all in the router's table.
func waitRoutedDynos(b *testing.B, g *devgrid.Grid, app string, n int, within time.Duration) []string {
	b.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(within)
	seen := map[string]bool{}
	for len(seen) < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d dynos answered routed requests within %s", len(seen), n, within)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/sleep?ms=200", g.Options.RouterAddr()), nil)
				req.Host = app + ".localhost"
				resp, err := client.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if m := dynoRe.FindSubmatch(body); m != nil && resp.StatusCode == http.StatusOK {
					mu.Lock()
					seen[string(m[1])] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	var names []string
	for d := range seen {
		names = append(names, d)
	}
	return names
}

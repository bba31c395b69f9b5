package autoscale

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// scrape renders a router's queue wait histogram for one app: counts[i] requests in
// bucket bounds[i] (not cumulative), then busy dynos.
func scrape(app string, counts []int, busy int) string {
	bounds := []string{"0.01", "0.05", "0.1", "1"}
	var b strings.Builder
	b.WriteString("# TYPE dyno_router_queue_wait_seconds histogram\n")
	cum := 0
	for i, c := range counts[:len(bounds)] {
		cum += c
		fmt.Fprintf(&b, "dyno_router_queue_wait_seconds_bucket{app=%q,le=%q} %d\n", app, bounds[i], cum)
	}
	cum += counts[len(bounds)]
	fmt.Fprintf(&b, "dyno_router_queue_wait_seconds_bucket{app=%q,le=\"+Inf\"} %d\n", app, cum)
	fmt.Fprintf(&b, "dyno_router_queue_wait_seconds_sum{app=%q} 1\ndyno_router_queue_wait_seconds_count{app=%q} %d\n", app, app, cum)
	fmt.Fprintf(&b, "# TYPE dyno_router_busy_dynos gauge\ndyno_router_busy_dynos{app=%q} %d\n", app, busy)
	return b.String()
}

// TestWindowSumsRoutersOverTheWindow: two routers' deltas over the window make one
// histogram; the p95 is interpolated in its bucket.
func TestWindowSumsRoutersOverTheWindow(t *testing.T) {
	t.Parallel()
	w := NewWindow(10 * time.Second)
	t0 := time.Unix(1_800_000_000, 0)
	add := func(r string, at time.Duration, s string) {
		t.Helper()
		if err := w.Add(r, t0.Add(at), strings.NewReader(s)); err != nil {
			t.Fatal(err)
		}
	}
	if o := w.Observe("shop", t0, time.Minute); o.OK {
		t.Fatalf("observation before any scrape %+v, want missing", o)
	}
	add("a", 0, scrape("shop", []int{1000, 0, 0, 0, 0}, 0))
	add("b", 0, scrape("shop", []int{0, 0, 0, 0, 0}, 0))
	add("a", 5*time.Second, scrape("shop", []int{1050, 0, 0, 0, 0}, 1))
	add("a", 10*time.Second, scrape("shop", []int{1080, 0, 10, 0, 0}, 3))
	add("b", 10*time.Second, scrape("shop", []int{100, 0, 10, 0, 0}, 2))
	o := w.Observe("shop", t0.Add(10*time.Second), time.Minute)
	// 200 requests: 180 under 10ms, 20 between 50ms and 100ms: p95 (rank 190) is
	// halfway through that bucket.
	if !o.OK || o.Requests != 200 || o.P95 != 75*time.Millisecond || o.Busy != 3 {
		t.Errorf("observation %+v, want 200 requests, p95 75ms, 3 busy", o)
	}
	if o := w.Observe("other", t0.Add(10*time.Second), time.Minute); !o.OK || o.Requests != 0 {
		t.Errorf("observation of an app without requests %+v, want OK with none", o)
	}
	if o := w.Observe("shop", t0.Add(time.Hour), time.Minute); o.OK {
		t.Errorf("observation from stale scrapes %+v, want missing", o)
	}
	// A router that restarted (its counts went down) gives no delta.
	add("a", 15*time.Second, scrape("shop", []int{5, 0, 0, 0, 0}, 0))
	if o := w.Observe("shop", t0.Add(15*time.Second), time.Minute); o.Requests != 110 {
		t.Errorf("observation after a restart of router a %+v, want only router b's 110 requests", o)
	}
}

// TestForgedMetricsAreRefused: a histogram that is not cumulative, or text that is
// not Prometheus's, is an error and leaves the window as it was.
func TestForgedMetricsAreRefused(t *testing.T) {
	t.Parallel()
	w := NewWindow(10 * time.Second)
	for name, s := range map[string]string{
		"not cumulative": strings.Replace(scrape("shop", []int{5, 5, 5, 5, 5}, 0), `le="0.05"} 10`, `le="0.05"} 1`, 1),
		"negative":       strings.Replace(scrape("shop", []int{5, 5, 5, 5, 5}, 0), `le="0.01"} 5`, `le="0.01"} -5`, 1),
		"garbage":        "dyno_router_queue_wait_seconds_bucket{app=\"shop\" 1\n",
	} {
		if err := w.Add("a", time.Now(), strings.NewReader(s)); err == nil {
			t.Errorf("%s: Add accepted it", name)
		}
	}
	if len(w.history) != 0 {
		t.Errorf("history %v after refused scrapes, want empty", w.history)
	}
}

func TestQuantileInTheInfBucket(t *testing.T) {
	t.Parallel()
	if q := quantile(0.95, []float64{0.1, 1, 30, math.Inf(1)}, []float64{0, 0, 0, 10}); q != 30*time.Second {
		t.Errorf("p95 in +Inf = %s, want the largest finite bound 30s", q)
	}
}

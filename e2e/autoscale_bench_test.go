package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/autoscale"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

// The step load of BenchmarkAutoscale: requests to the example app's /sleep, at
// baseRate a second, then five times as many, then baseRate again. One dyno serves the
// base load with the p95 queue wait under the target (utilisation about 0.15), not the
// five-fold one (0.75).
const (
	benchSleepMS  = 50
	benchBaseRate = 3.0
	benchTarget   = 50 * time.Millisecond
	benchMax      = 8
)

// loadPhase is a stretch of a step load at one rate.
type loadPhase struct {
	rate float64
	d    time.Duration
}

// stepTrace joins Poisson traces of the phases, one after the other.
func stepTrace(seed uint64, phases []loadPhase) loadgen.Trace {
	var out loadgen.Trace
	var offset time.Duration
	for i, p := range phases {
		for _, r := range loadgen.Poisson(seed+uint64(i), int(p.rate*p.d.Seconds())+1, p.rate, 0) {
			if r.At < p.d {
				r.At += offset
				out = append(out, r)
			}
		}
		offset += p.d
	}
	return out
}

// formationRun is what one formation did under the step load.
type formationRun struct {
	name        string
	minuteP95   []time.Duration
	dynoSeconds float64
	billedSecs  float64
	firstUp     time.Duration // from the load's start; -1: none
	most        int
}

func (r formationRun) cost(price float64) float64 { return r.billedSecs * price / 3600 }

// BenchmarkAutoscale replays one open-loop step load (base, five times base, base) of
// requests to the example app's /sleep against three formations of shared web dynos:
// fixed at min (1), fixed at max (8), and autoscaled from 1 to 8 with a p95 queue wait
// target of 50ms and a $0.50/hour cap, the autoscaler running with its default
// settings. For each it reports the p95 queue wait of every minute (from the router's
// histogram), the dyno-seconds and the cost at $0.05 a dyno-hour (the first dyno free),
// and checks the targets: autoscaling holds the p95 under its target in at least 95% of
// the minutes that start after its first scale-up, and costs less than fixed max.
// BENCH_AUTOSCALE_MINUTES=base,high,base sets the phases (default 1,2,2).
func BenchmarkAutoscale(b *testing.B) {
	phases := benchPhases(b)
	g := harness.Grid(b, harness.WithRouter(b))
	machine := testutil.MachineState()
	dir := copyApp(b)
	formations := []struct {
		name, spec string
		count      int
	}{
		{"fixed-min", scaledSpec("fixed-min", 1, 1, 1), 1},
		{"fixed-max", scaledSpec("fixed-max", benchMax, benchMax, benchMax), benchMax},
		{"autoscaled", autoscaleSpec("autoscaled", 1, benchMax, benchTarget.String(), 0.50), 1},
	}
	trace := stepTrace(17, phases)
	var runs []formationRun
	for range b.N {
		for _, f := range formations {
			writeSpec(b, dir, f.spec)
			c := newCLI(b, g, f.name)
			c.must("deploy", dir)
			waitFormation(b, g, f.name, f.count)
			runs = append(runs, runFormation(b, g, f.name, trace))
			c.must("apps:destroy", "--confirm", f.name)
		}
	}

	var out strings.Builder
	fmt.Fprintf(&out, "autoscaling under a step load: /sleep?ms=%d of the example Thin app, shared dynos, %.0f req/s for %s, %.0f for %s, %.0f for %s; %d cores\n",
		benchSleepMS, phases[0].rate, phases[0].d, phases[1].rate, phases[1].d, phases[2].rate, phases[2].d, runtime.NumCPU())
	fmt.Fprintf(&out, "%-11s %-48s %12s %9s %10s\n", "formation", "p95 queue wait per minute (ms)", "dyno-seconds", "most", "cost")
	const price = 0.05
	var auto, fixedMax formationRun
	for _, r := range runs {
		var mins []string
		for _, p := range r.minuteP95 {
			mins = append(mins, fmt.Sprintf("%.1f", float64(p)/1e6))
		}
		fmt.Fprintf(&out, "%-11s %-48s %12.0f %9d %10s\n", r.name, strings.Join(mins, " "), r.dynoSeconds, r.most, fmt.Sprintf("$%.4f", r.cost(price)))
		switch r.name {
		case "autoscaled":
			auto = r
		case "fixed-max":
			fixedMax = r
		}
	}
	held, counted := 0, 0
	for i, p := range auto.minuteP95 {
		if auto.firstUp >= 0 && time.Duration(i)*time.Minute >= auto.firstUp {
			counted++
			if p <= benchTarget {
				held++
			}
		}
	}
	share := 0.0
	if counted > 0 {
		share = float64(held) / float64(counted)
	}
	heldOK := counted > 0 && share >= 0.95
	cheaper := auto.cost(price) < fixedMax.cost(price)
	fmt.Fprintf(&out, "autoscaled: first scale-up %s after the load started; p95 under %s in %d of the %d minutes after it (%.0f%%; target 95%%): %s\n",
		auto.firstUp.Round(time.Second), benchTarget, held, counted, 100*share, met(heldOK))
	fmt.Fprintf(&out, "autoscaled cost $%.4f, fixed max $%.4f: %s\n", auto.cost(price), fixedMax.cost(price), met(cheaper))
	fmt.Fprintf(&out, "machine before: %s\nmachine after:  %s\n", machine, testutil.MachineState())
	fmt.Print("\n" + out.String())
	if !heldOK || !cheaper {
		b.Errorf("autoscaling missed a target (see above)")
	}
	b.ReportMetric(share, "minutes-held")
	b.ReportMetric(auto.cost(price), "autoscaled-usd")
	b.ReportMetric(fixedMax.cost(price), "fixed-max-usd")
}

func benchPhases(tb testing.TB) []loadPhase {
	mins := []int{1, 2, 2}
	if s := os.Getenv("BENCH_AUTOSCALE_MINUTES"); s != "" {
		parts := strings.Split(s, ",")
		if len(parts) != 3 {
			tb.Fatalf("BENCH_AUTOSCALE_MINUTES=%q: want three whole minutes, base,high,base", s)
		}
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 30 {
				tb.Fatalf("BENCH_AUTOSCALE_MINUTES=%q: want three whole minutes from 1 to 30", s)
			}
			mins[i] = n
		}
	}
	return []loadPhase{
		{benchBaseRate, time.Duration(mins[0]) * time.Minute},
		{5 * benchBaseRate, time.Duration(mins[1]) * time.Minute},
		{benchBaseRate, time.Duration(mins[2]) * time.Minute},
	}
}

// runFormation replays trace against app and measures it: the router's p95 queue wait
// per minute, and every second the dynos Nomad runs.
func runFormation(tb testing.TB, g *devgrid.Grid, app string, trace loadgen.Trace) formationRun {
	tb.Helper()
	nomad := appNomad(tb, g, app)
	metrics := fmt.Sprintf("http://%s:%d/metrics", g.Options.Bind, g.Options.RouterPort+1)
	// A span a little under the minute: each minute's scrape is measured from the last.
	window := autoscale.NewWindow(59 * time.Second)
	scrape := func(at time.Time) {
		resp, err := http.Get(metrics)
		if err != nil {
			tb.Fatalf("router metrics: %v", err)
		}
		defer resp.Body.Close()
		if err := window.Add("router", at, resp.Body); err != nil {
			tb.Fatal(err)
		}
	}
	r := formationRun{name: app, firstUp: -1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	target := loadgen.Target{Name: app, URL: fmt.Sprintf("http://%s/sleep?ms=%d", g.Options.RouterAddr(), benchSleepMS),
		Host: app + "." + g.Options.RouterDomain}
	// The app's first requests are slower (Ruby loads what it had not): sent one at a
	// time, they wait in no queue.
	if err := loadgen.Warm(loadgen.Client(), target, 20); err != nil {
		tb.Fatalf("warming %s: %v", app, err)
	}
	start := time.Now()
	scrape(start)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _, _ = loadgen.Run(ctx, loadgen.Client(), target, trace)
	}()
	end := start.Add(trace.Duration())
	second := time.NewTicker(time.Second)
	defer second.Stop()
	nextMinute := start.Add(time.Minute)
	for now := range second.C {
		st, _, err := nomad.Jobs().ScaleStatus(app, nil)
		if err != nil {
			tb.Fatal(err)
		}
		web := st.TaskGroups["web"]
		r.dynoSeconds += float64(web.Running)
		r.billedSecs += float64(max(web.Running-1, 0))
		r.most = max(r.most, web.Desired)
		if !now.Before(nextMinute) || !now.Before(end) {
			scrape(now)
			r.minuteP95 = append(r.minuteP95, window.Observe(app, now, time.Minute).P95)
			nextMinute = nextMinute.Add(time.Minute)
		}
		if !now.Before(end) {
			break
		}
	}
	cancel()
	wg.Wait()
	for _, e := range autoscalerEvents(tb, nomad, app) {
		at := time.Unix(0, int64(e.Time)).Sub(start)
		if e.Meta["Decision"] == autoscale.Up && at >= 0 && (r.firstUp < 0 || at < r.firstUp) {
			r.firstUp = at
		}
	}
	return r
}

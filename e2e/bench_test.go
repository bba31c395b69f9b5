package e2e

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// sizes10 is the larger scale of BenchmarkScaleOut: web=1 to 10.
const sizes10 = 10

// BenchmarkScaleOut measures where the time of `dyno ps:scale` goes, step by step, for
// web=1 to 2 and web=1 to 10 shared dynos of the example Thin app on one machine, and
// checks the figures against the targets (issue 17): the first new dyno routed within
// 1 s plus the app's own boot time, and all new dynos within 1 s plus the app's boot
// CPU time times their number, divided by the cores. The app's own boot is measured
// in the same run, on the host, outside any dyno. Each round also times one web=1 to 10
// untraced (timeScale), and each scale waits for the machine to be idle first (the
// tear-down of the round before). BENCH_ROUNDS rounds (default 3);
// medians over rounds are printed. BENCH_NOMAD_LOG=FILE runs Nomad at log level TRACE
// and keeps its log in FILE: its alloc and task runners log each hook's duration.
// BENCH_PROFILE=DIR keeps CPU profiles of each web=1->10 scale in DIR (see
// startScaleProfile).
func BenchmarkScaleOut(b *testing.B) {
	traceLog, profileDir := os.Getenv("BENCH_NOMAD_LOG"), os.Getenv("BENCH_PROFILE")
	g := harness.Grid(b, harness.WithRouter(b), func(o *devgrid.Options) {
		if traceLog != "" {
			o.ExtraNomadConfig += "log_level = \"TRACE\"\n"
		}
		if profileDir != "" {
			o.ExtraNomadConfig += "enable_debug = true\n"
		}
	})
	if traceLog != "" {
		b.Cleanup(func() { keepNomadLog(b, g, traceLog) })
	}
	dir := copyApp(b)
	writeSpec(b, dir, scaledSpec("scale", 1, 0, 10))
	c := newCLI(b, g, "scale")
	c.must("deploy", dir)
	waitFormation(b, g, "scale", 1)
	machine := testutil.MachineState()
	boot := measureAppBoot(b, dir, 3)
	nine := bootAtOnce(b, dir, sizes10-1)

	sizes := []int{2, sizes10}
	traces := map[int][]*scaleTrace{}
	var untraced, untracedCPU []time.Duration
	for round := range b.N * scaleRounds() {
		for _, to := range sizes {
			waitQuiet(b)
			routed, stop := func() {}, func() {}
			if profileDir != "" && to == sizes[len(sizes)-1] {
				routed, stop = startScaleProfile(b, g, profileDir, fmt.Sprintf("scale%d-round%d", to, round+1))
			}
			traces[to] = append(traces[to], traceScale(b, g, c, "scale", 1, to, routed))
			stop()
			c.must("ps:scale", "web=1")
			waitFormation(b, g, "scale", 1)
		}
		waitQuiet(b)
		d, cpu := timeScale(b, g, c, "scale", 1, sizes[len(sizes)-1])
		untraced, untracedCPU = append(untraced, d), append(untracedCPU, cpu)
		c.must("ps:scale", "web=1")
		waitFormation(b, g, "scale", 1)
	}

	var out strings.Builder
	fmt.Fprintf(&out, "dyno ps:scale of the example Thin app, shared dynos, %d rounds, %d cores; medians over rounds, in ms\n",
		len(traces[2]), runtime.NumCPU())
	fmt.Fprintf(&out, "%-70s %10s %14s %14s\n", "step", "web=1->2", "1->10 median", "1->10 slowest")
	for _, s := range scaleSteps {
		fmt.Fprintf(&out, "%-70s %10s %14s %14s\n", s.name,
			ms(roundsMedian(traces[2], s, 0.5)), ms(roundsMedian(traces[10], s, 0.5)), ms(roundsMedian(traces[10], s, 1)))
	}
	first := median(collect(traces[2], func(t *scaleTrace) time.Duration { return t.Dynos[0].Routed.Sub(t.Dynos[0].Start) }))
	all := median(collect(traces[10], func(t *scaleTrace) time.Duration {
		last := t.Dynos[len(t.Dynos)-1]
		return last.Routed.Sub(last.Start)
	}))
	fmt.Fprintf(&out, "%-70s %10s %14s\n", "ps:scale returned", ms(median(collect(traces[2], returned))), ms(median(collect(traces[10], returned))))
	fmt.Fprintf(&out, "the app's own boot on the host (median of 3): %s wall, %s CPU\n", ms(boot.Wall), ms(boot.CPU))
	firstTarget := time.Second + boot.Wall
	fmt.Fprintf(&out, "first new dyno routed: %s; target 1 s + boot %s = %s: %s\n", ms(first), ms(boot.Wall), ms(firstTarget), met(first <= firstTarget))
	added := sizes[1] - 1
	allTarget := time.Second + boot.CPU*time.Duration(added)/time.Duration(runtime.NumCPU())
	fmt.Fprintf(&out, "all %d new dynos routed, traced: %s (the trace's own checks and queries take CPU from the booting dynos)\n",
		added, ms(all))
	fmt.Fprintf(&out, "%d boots of the app at once on the host, outside any dyno: the last answered after %s, %s CPU in all\n",
		added, ms(nine.Wall), ms(nine.CPU))
	allUntraced := median(untraced)
	fmt.Fprintf(&out, "all %d new dynos routed, untraced (only the router's /status watched; rounds %s): %s; target 1 s + boot CPU %s x %d / %d cores = %s: %s; machine CPU %s\n",
		added, msList(untraced), ms(allUntraced), ms(boot.CPU), added, runtime.NumCPU(), ms(allTarget), met(allUntraced <= allTarget), ms(median(untracedCPU)))
	cpu := median(collect(traces[10], func(t *scaleTrace) time.Duration { return t.MachineCPU }))
	fmt.Fprintf(&out, "CPU the machine spent from ps:scale web=10 to the last new dyno routed (median): %s on %d cores, of which %d boots of the app take %s on the host\n",
		ms(cpu), runtime.NumCPU(), added, ms(boot.CPU*time.Duration(added)))
	fmt.Fprintf(&out, "of it, by process (mean over rounds, ms): %s\n", topProcesses(traces[10], 10))
	fmt.Fprintf(&out, "machine before: %s\nmachine after:  %s\n", machine, testutil.MachineState())
	fmt.Print("\n" + out.String())
	b.ReportMetric(first.Seconds(), "first-routed-s")
	b.ReportMetric(all.Seconds(), "all10-routed-s")
	b.ReportMetric(allUntraced.Seconds(), "all10-routed-untraced-s")
	b.ReportMetric(boot.Wall.Seconds(), "app-boot-s")
	b.ReportMetric(boot.CPU.Seconds(), "app-boot-cpu-s")
}

// topProcesses lists the n process names that spent the most CPU in the traces' scales,
// with their mean over the traces, in ms.
func topProcesses(traces []*scaleTrace, n int) string {
	sum := map[string]time.Duration{}
	for _, t := range traces {
		for name, d := range t.ByProcess {
			sum[name] += d
		}
	}
	names := make([]string, 0, len(sum))
	for name := range sum {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return sum[names[i]] > sum[names[j]] })
	if len(names) > n {
		names = names[:n]
	}
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, (sum[name] / time.Duration(len(traces))).Milliseconds())
	}
	return strings.Join(parts, ", ")
}

// keepNomadLog copies the grid's Nomad agent log to path, before the grid removes it.
func keepNomadLog(tb testing.TB, g *devgrid.Grid, path string) {
	for _, a := range g.Agents {
		if a.Name != "nomad" {
			continue
		}
		b, err := os.ReadFile(a.Log)
		if err == nil {
			err = os.WriteFile(path, b, 0o600)
		}
		if err != nil {
			tb.Errorf("keeping the Nomad log: %v", err)
		}
	}
}

// scaleRounds is BENCH_ROUNDS, or 3.
func scaleRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// waitFormation waits until app runs exactly n web dynos, no other dyno of it is still
// stopping, and the router counts n up.
func waitFormation(tb testing.TB, g *devgrid.Grid, app string, n int) {
	tb.Helper()
	nomad := appNomad(tb, g, app)
	status := fmt.Sprintf("http://%s:%d/status", g.Options.Bind, g.Options.RouterPort+1)
	testutil.WaitFor(tb, 2*time.Minute, fmt.Sprintf("%d dynos of %s, all routed", n, app), func() error {
		allocs, _, err := nomad.Jobs().Allocations(app, false, nil)
		if err != nil {
			return err
		}
		live := 0
		for _, a := range allocs {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning || a.ClientStatus == nomadapi.AllocClientStatusPending {
				live++
			}
		}
		up, err := routerUp(tb.Context(), status, app)
		if err != nil {
			return err
		}
		if live != n || up != n {
			return fmt.Errorf("%d dynos running or pending, %d routed", live, up)
		}
		return nil
	})
}

// roundsMedian is, over traces, the median of step s's q-quantile over each trace's
// new dynos (q = 0.5: the median dyno; q = 1: the slowest).
func roundsMedian(traces []*scaleTrace, s scaleStep, q float64) time.Duration {
	return median(collect(traces, func(t *scaleTrace) time.Duration {
		ds := make([]time.Duration, len(t.Dynos))
		for i, d := range t.Dynos {
			ds[i] = s.to(d).Sub(s.from(d))
		}
		return quantile(ds, q)
	}))
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if q >= 1 {
		return slices.Max(ds)
	}
	return median(ds)
}

func collect(traces []*scaleTrace, f func(*scaleTrace) time.Duration) []time.Duration {
	out := make([]time.Duration, len(traces))
	for i, t := range traces {
		out[i] = f(t)
	}
	return out
}

func returned(t *scaleTrace) time.Duration { return t.Returned }

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// msList is ds in ms, "a, b, c".
func msList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = ms(d)
	}
	return strings.Join(s, ", ")
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

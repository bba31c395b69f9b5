package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

// cpuCore is the core the proxies are pinned to, one after the other; the load
// generator and the backends (this process) keep to the machine's other cores
// (keepOffCore).
func cpuCore() int { return runtime.NumCPU() - 1 }

// warmCPU is how many requests warm each proxy up before BenchmarkCPU measures it.
const warmCPU = 8000

// cpuRegime is one load under which the proxies' CPU per request is measured.
type cpuRegime struct {
	name string
	key  string // in metric names
	// run sends the regime's requests to t and returns their latencies (ok ones) and
	// how many failed.
	run   func(t loadgen.Target) ([]time.Duration, int, error)
	n     int           // requests per run
	trace loadgen.Trace // open-loop regimes: the trace replayed
	queue bool          // requests wait for dynos: p99 is also compared with the ideal
}

// BenchmarkCPU measures the CPU dyno-router and HAProxy (leastconn, maxconn 1 per
// server) spend per request, each pinned to the same one core and read from its own
// accounting (its threads' run time, see cpuTime), in three regimes, in the same run
// and interleaved (router, HAProxy, router, ...; medians of the rounds reported): the
// queueing load of BenchmarkRouting at 0.9 (720 req/s open-loop Poisson on 8
// single-request dynos, mean service 10 ms, clients opening connections on demand like
// any Go http.Transport), zero service time open-loop at 2000 req/s, and one
// sequential client with zero service time. p99 latencies are reported next to the CPU, and for the queueing load
// against the ideal M/M/c single queue of the same trace. The Go epoll peer (epollpeer:
// a queueing proxy on an epoll loop of its own, doing none of the router's checks) runs
// alongside too: the least a Go proxy costs per request without goroutines per
// connection. So does HAProxy configured to add the router's headers to each request
// (startHAProxyAsRouter): HAProxy doing the router's work, as an operator would set it
// up in the router's place. And so does the peer on package evloop (startEvloopPeerOn),
// whose loop parks in Go's poller instead of holding its thread in epoll_pwait, and the
// router on its goroutine server (-event-loop=false, startGoroutineRouterOn). BENCH_ROUTER_BASELINE names
// another dyno-router binary (an earlier build) to run alongside, interleaved likewise:
// its CPU per request is reported next to the router's.
func BenchmarkCPU(b *testing.B) {
	requireHAProxy(b)
	bs, err := loadgen.StartBackends(dynos)
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.StopBackends(bs)
	core := cpuCore()
	keepOffCore(b, core)
	// In this order: the indexes below name them.
	procs := []*proc{startRouterOn(b, bs, core), startHAProxyOn(b, bs, "leastconn", true, core), startEpollPeerOn(b, bs, core),
		startHAProxyAsRouter(b, bs, core), startEvloopPeerOn(b, bs, core), startGoroutineRouterOn(b, bs, core)}
	const routerAt, haproxyAt, peerAt, asRouterAt, evloopAt, goroutinesAt, baselineAt = 0, 1, 2, 3, 4, 5, 6
	baseline := os.Getenv("BENCH_ROUTER_BASELINE")
	if baseline != "" {
		procs = append(procs, startRouterBin(b, "dyno-router (baseline)", baseline, bs, core))
	}
	client := loadgen.Client()
	for _, p := range procs {
		// Steady state: past the router's first collection, before which its heap grows
		// into fresh pages (about 16 MB: page faults, a few us per request).
		if err := loadgen.Warm(client, target(p), warmCPU); err != nil {
			b.Fatal(err)
		}
	}
	open := func(tr loadgen.Trace) func(loadgen.Target) ([]time.Duration, int, error) {
		return func(t loadgen.Target) ([]time.Duration, int, error) {
			return loadgen.Run(context.Background(), client, t, tr)
		}
	}
	queueing := loadgen.Poisson(seed, requests(), loadgen.RateFor(0.9, dynos, meanService), meanService)
	zero := loadgen.Poisson(seed, 5*requests()/2, 2000, 0)
	const sequential = 10000
	regimes := []cpuRegime{
		{name: fmt.Sprintf("queueing: load 0.9, %.0f req/s open loop, %d dynos, mean service %s", loadgen.RateFor(0.9, dynos, meanService), dynos, meanService),
			key: "queueing", run: open(queueing), n: len(queueing), trace: queueing, queue: true},
		{name: "zero service, 2000 req/s open loop", key: "open-loop", run: open(zero), n: len(zero), trace: zero},
		{name: "zero service, one sequential client", key: "sequential", n: sequential, run: func(t loadgen.Target) ([]time.Duration, int, error) {
			lat, err := loadgen.Sequential(client, t, sequential)
			return lat, sequential - len(lat), err
		}},
	}
	machine := testutil.MachineState()
	var rows []string
	for i := 0; i < b.N; i++ {
		for _, rg := range regimes {
			cpu := make([][]time.Duration, len(procs))
			p99 := make([][]time.Duration, len(procs))
			for round := 0; round < rounds(); round++ {
				for pi, p := range procs {
					before, err := cpuTime(p.cmd.Process.Pid)
					if err != nil {
						b.Fatal(err)
					}
					lat, errs, err := rg.run(target(p))
					after, _ := cpuTime(p.cmd.Process.Pid)
					if errs > 0 {
						b.Errorf("%s, %s: %d requests failed (first: %v)", p.name, rg.name, errs, err)
					}
					cpu[pi] = append(cpu[pi], (after-before)/time.Duration(rg.n))
					p99[pi] = append(p99[pi], loadgen.Summarise(lat, errs).P99)
				}
			}
			us := func(d time.Duration) float64 { return float64(d) / 1e3 }
			rc, hc := medianDuration(cpu[routerAt]), medianDuration(cpu[haproxyAt])
			rp, hp := medianDuration(p99[routerAt]), medianDuration(p99[haproxyAt])
			ideal := "-"
			if rg.queue {
				ip := loadgen.Summarise(loadgen.Ideal(rg.trace, dynos), 0).P99
				ideal = fmt.Sprintf("%.2f / %.2f", float64(rp)/float64(ip), float64(hp)/float64(ip))
			}
			ec, ep := medianDuration(cpu[peerAt]), medianDuration(p99[peerAt])
			ac, ap := medianDuration(cpu[asRouterAt]), medianDuration(p99[asRouterAt])
			lc := medianDuration(cpu[evloopAt])
			oc, op := medianDuration(cpu[goroutinesAt]), medianDuration(p99[goroutinesAt])
			goroutinesIdeal := "-"
			if rg.queue {
				goroutinesIdeal = fmt.Sprintf("%.2f", float64(op)/float64(loadgen.Summarise(loadgen.Ideal(rg.trace, dynos), 0).P99))
			}
			row := fmt.Sprintf("| %s | %.0f | %.0f | %.2f (%s) | %.2f | %.2f | %.2f | %s | %.0f | %.2f | %.2f | %.2f | %.0f | %.2f (%s) | %.2f | %.2f | %.0f | %.2f (%s) |",
				rg.name, us(rc), us(hc), float64(rc)/float64(hc), roundRatios(cpu[routerAt], cpu[haproxyAt]), ms(rp), ms(hp), float64(rp)/float64(hp), ideal,
				us(ec), float64(ec)/float64(hc), float64(rc)/float64(ec), ms(ep),
				us(ac), float64(rc)/float64(ac), roundRatios(cpu[routerAt], cpu[asRouterAt]), ms(ap), float64(rp)/float64(ap),
				us(lc), float64(lc)/float64(hc), roundRatios(cpu[evloopAt], cpu[haproxyAt]))
			row += fmt.Sprintf(" %.0f | %.2f (%s) | %.2f | %.2f | %s |", us(oc), float64(oc)/float64(hc), roundRatios(cpu[goroutinesAt], cpu[haproxyAt]),
				ms(op), float64(op)/float64(hp), goroutinesIdeal)
			b.ReportMetric(float64(oc)/float64(hc), "router-goroutines/haproxy-cpu-"+rg.key)
			b.ReportMetric(float64(op)/float64(hp), "router-goroutines/haproxy-p99-"+rg.key)
			b.ReportMetric(float64(lc)/float64(hc), "evloop-peer/haproxy-cpu-"+rg.key)
			b.ReportMetric(float64(rc)/float64(ac), "router/haproxy-as-router-cpu-"+rg.key)
			b.ReportMetric(float64(ec)/float64(hc), "epollpeer/haproxy-cpu-"+rg.key)
			b.ReportMetric(float64(rc)/float64(ec), "router/epollpeer-cpu-"+rg.key)
			if baseline != "" {
				bc, bp := medianDuration(cpu[baselineAt]), medianDuration(p99[baselineAt])
				row += fmt.Sprintf(" %.0f | %.2f | %.2f | %.2f |", us(bc), float64(bc)/float64(hc), float64(rc)/float64(bc), ms(bp))
				b.ReportMetric(float64(rc)/float64(bc), "router/baseline-cpu-"+rg.key)
			}
			rows = append(rows, row)
			b.ReportMetric(float64(rc)/float64(hc), "router/haproxy-cpu-"+rg.key)
			b.ReportMetric(float64(rp)/float64(hp), "router/haproxy-p99-"+rg.key)
		}
	}
	fmt.Printf("\nBenchmarkCPU: CPU per request (us) of each proxy, pinned to core %d of %d, from its own accounting (schedstat); median of %d interleaved rounds; before the run: %s; after: %s\n",
		core, runtime.NumCPU(), rounds(), machine, testutil.MachineState())
	head := "| regime | dyno-router us/req | HAProxy us/req | router/HAProxy CPU (rounds' range) | router p99 ms | HAProxy p99 ms | router/HAProxy p99 | p99/ideal router / HAProxy |" +
		" Go epoll peer us/req | peer/HAProxy CPU | router/peer CPU | peer p99 ms |" +
		" HAProxy with the router's headers us/req | router/it CPU (rounds' range) | its p99 ms | router/it p99 |" +
		" Go evloop peer us/req | evloop peer/HAProxy CPU (rounds' range) |" +
		" router -event-loop=false us/req | it/HAProxy CPU (rounds' range) | its p99 ms | it/HAProxy p99 | its p99/ideal |"
	rule := "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	if baseline != "" {
		head, rule = head+" baseline us/req | baseline/HAProxy CPU | router/baseline CPU | baseline p99 ms |", rule+"---|---|---|---|"
	}
	fmt.Println(head)
	fmt.Println(rule)
	fmt.Println(strings.Join(rows, "\n"))
}

// roundRatios is the range of a[i]/b[i] over the rounds, "low-high": how far the ratio
// of two proxies' medians may be trusted on a machine whose speed drifts between rounds
// (each round runs both, one after the other).
func roundRatios(a, b []time.Duration) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range min(len(a), len(b)) {
		r := float64(a[i]) / float64(b[i])
		lo, hi = min(lo, r), max(hi, r)
	}
	return fmt.Sprintf("%.2f-%.2f", lo, hi)
}

package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

const (
	dynos       = 8
	meanService = 10 * time.Millisecond
	seed        = 20261125
)

// rounds is how many times each target replays each trace, interleaved (router,
// HAProxy, random, router, ...), so that a noisy machine hurts all alike; the median
// p50 and p99 over rounds are reported. BENCH_ROUNDS overrides.
func rounds() int {
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		if n > 0 {
			return n
		}
	}
	return 3
}

// median of the rounds' summaries, by p99 (p50 likewise).
func median(ss []loadgen.Summary) loadgen.Summary {
	if len(ss) == 0 {
		return loadgen.Summary{}
	}
	p50 := make([]time.Duration, len(ss))
	p99 := make([]time.Duration, len(ss))
	out := ss[0]
	out.Errors = 0
	for i, s := range ss {
		p50[i], p99[i] = s.P50, s.P99
		out.Errors += s.Errors
	}
	sort.Slice(p50, func(i, j int) bool { return p50[i] < p50[j] })
	sort.Slice(p99, func(i, j int) bool { return p99[i] < p99[j] })
	out.P50, out.P99 = p50[len(p50)/2], p99[len(p99)/2]
	return out
}

// requests per utilisation run; BENCH_REQUESTS overrides.
func requests() int {
	if v := os.Getenv("BENCH_REQUESTS"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		if n > 0 {
			return n
		}
	}
	return 4000
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// BenchmarkRouting replays one seeded Poisson trace per utilisation against dyno-router,
// HAProxy leastconn with maxconn 1 (a queue in the proxy), HAProxy random(1), the load
// generator's own single queue with direct connections (no proxy), and the Go epoll peer
// (a minimal queueing proxy: how fast a proxy that does nothing else hands a backend its
// next request on this machine), and computes the ideal M/M/c result from the same
// trace.
func BenchmarkRouting(b *testing.B) {
	requireHAProxy(b)
	bs, err := loadgen.StartBackends(dynos)
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.StopBackends(bs)
	targets := []*proc{
		startRouter(b, bs),
		startHAProxy(b, bs, "leastconn", true),
		startHAProxy(b, bs, "random(1)", false),
		startEpollPeerOn(b, bs, -1),
	}
	tgs := []loadgen.Target{target(targets[0]), target(targets[1]), target(targets[2]),
		{Name: "direct queue", Queue: loadgen.NewClientQueue(addrs(bs))}, target(targets[3])}
	client := loadgen.Client()
	for _, tg := range tgs {
		if err := loadgen.Warm(client, tg, 200); err != nil {
			b.Fatal(err)
		}
	}
	var table []string
	machine := testutil.MachineState()
	for _, u := range []float64{0.5, 0.8, 0.9, 0.95} {
		b.Run(fmt.Sprintf("util=%.2f", u), func(b *testing.B) {
			tr := loadgen.Poisson(seed, requests(), loadgen.RateFor(u, dynos, meanService), meanService)
			ideal := loadgen.Summarise(loadgen.Ideal(tr, dynos), 0)
			runs := map[string][]loadgen.Summary{}
			mruns := map[string][]loadgen.Summary{}
			handOff := map[string][]time.Duration{}
			m := loadgen.NewMeasured(len(tr))
			for _, bk := range bs {
				bk.Served = m
			}
			for i := 0; i < b.N*rounds(); i++ {
				for _, tg := range tgs {
					m.Reset()
					lat, errs, err := loadgen.Run(context.Background(), client, tg, tr)
					if errs > 0 {
						b.Errorf("%s: %d requests failed (first: %v)", tg.Name, errs, err)
					}
					handOff[tg.Name] = append(handOff[tg.Name], m.HandOff())
					runs[tg.Name] = append(runs[tg.Name], loadgen.Summarise(lat, errs))
					mruns[tg.Name] = append(mruns[tg.Name], loadgen.Summarise(loadgen.Ideal(m.Apply(tr), dynos), 0))
				}
			}
			res := map[string]loadgen.Summary{}
			measured := map[string]loadgen.Summary{}
			for name := range runs {
				res[name], measured[name] = median(runs[name]), median(mruns[name])
			}
			name := func(i int) string { return tgs[i].Name }
			im := measured[name(0)]
			r, h, rnd, dq, ep := res[name(0)], res[name(1)], res[name(2)], res[name(3)], res[name(4)]
			taR, taH, taQ, taP := medianDuration(handOff[name(0)]), medianDuration(handOff[name(1)]), medianDuration(handOff[name(3)]), medianDuration(handOff[name(4)])
			// Under random routing requests queue at the backends: the next one is there
			// when a response goes out, so this is the backends' own part of a hand-off.
			taRnd := medianDuration(handOff[name(2)])
			ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
			// What each proxy's hand-offs alone would make of the ideal: its p99 against
			// this is the cost of everything else (order, dispatch, forwarding).
			withHandOff := func(d time.Duration) time.Duration {
				return loadgen.Summarise(loadgen.Ideal(tr.Lengthened(d), dynos), 0).P99
			}
			xR, xH := withHandOff(taR), withHandOff(taH)
			b.ReportMetric(ms(ideal.P99), "ideal-p99-ms")
			b.ReportMetric(ms(im.P99), "ideal-measured-p99-ms")
			b.ReportMetric(ms(dq.P99), "direct-queue-p99-ms")
			b.ReportMetric(ms(r.P99), "router-p99-ms")
			b.ReportMetric(ms(h.P99), "haproxy-p99-ms")
			b.ReportMetric(ms(rnd.P99), "random-p99-ms")
			b.ReportMetric(ms(ep.P99), "epollpeer-p99-ms")
			b.ReportMetric(ratio(r.P99, ep.P99), "router/epollpeer-p99")
			b.ReportMetric(float64(taP)/1e3, "epollpeer-handoff-us")
			b.ReportMetric(ratio(r.P99, ideal.P99), "router/ideal-p99")
			b.ReportMetric(ratio(r.P99, im.P99), "router/ideal-measured-p99")
			b.ReportMetric(ratio(r.P99, dq.P99), "router/direct-queue-p99")
			b.ReportMetric(ratio(r.P99, h.P99), "router/haproxy-p99")
			b.ReportMetric(ratio(rnd.P99, r.P99), "random/router-p99")
			b.ReportMetric(ratio(xR, ideal.P99), "ideal-with-router-handoff/ideal-p99")
			b.ReportMetric(ratio(r.P99, xR), "router/ideal-with-its-handoff-p99")
			b.ReportMetric(ratio(h.P99, xH), "haproxy/ideal-with-its-handoff-p99")
			b.ReportMetric(float64(taR)/1e3, "router-handoff-us")
			b.ReportMetric(float64(taH)/1e3, "haproxy-handoff-us")
			b.ReportMetric(float64(taQ)/1e3, "direct-queue-handoff-us")
			pp := func(s loadgen.Summary) string { return fmt.Sprintf("%.1f / %.1f", ms(s.P50), ms(s.P99)) }
			table = append(table, fmt.Sprintf("| %.2f | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.0f / %.0f / %.0f / %.0f / %.0f | %.2f / %.2f | %.2f / %.2f |",
				u, pp(ideal), pp(im), pp(dq), pp(r), pp(h), pp(rnd), pp(ep),
				ratio(r.P99, ideal.P99), ratio(h.P99, ideal.P99), ratio(r.P99, dq.P99), ratio(r.P99, h.P99), ratio(r.P99, ep.P99), ratio(rnd.P99, r.P99),
				float64(taQ)/1e3, float64(taR)/1e3, float64(taH)/1e3, float64(taP)/1e3, float64(taRnd)/1e3,
				ratio(xR, ideal.P99), ratio(xH, ideal.P99), ratio(r.P99, xR), ratio(h.P99, xH)))
		})
	}
	for _, bk := range bs {
		if n := bk.Overlaps.Load(); n > 0 {
			b.Logf("backend %s saw %d overlapping requests (expected only under random routing)", bk.Addr, n)
		}
	}
	fmt.Printf("\n%d dynos, exponential service mean %s, %d requests per run, seed %d, median of %d interleaved rounds (latencies ms, p50 / p99); before the run: %s; after: %s\n",
		dynos, meanService, requests(), seed, rounds(), machine, testutil.MachineState())
	fmt.Println("| util | ideal M/M/c (trace) | ideal M/M/c (measured service) | direct queue, no proxy | dyno-router | HAProxy leastconn maxconn 1 | HAProxy random(1) | Go epoll peer | router/ideal p99 | HAProxy/ideal p99 | router/direct queue p99 | router/HAProxy p99 | router/peer p99 | random/router p99 | hand-off us: direct queue / router / HAProxy / peer / random(1) | ideal with the hand-off/ideal p99: router / HAProxy | p99 over ideal with its own hand-off: router / HAProxy |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Println(strings.Join(table, "\n"))
}

func target(p *proc) loadgen.Target {
	return loadgen.Target{Name: p.name, URL: "http://" + p.addr + "/", Host: "bench.localhost"}
}

// BenchmarkOverhead measures, with zero service time, the latency one proxy hop adds
// (sequential requests, against a direct connection) and the proxy's CPU per request
// (16 concurrent clients), for dyno-router and HAProxy.
func BenchmarkOverhead(b *testing.B) {
	requireHAProxy(b)
	bs, err := loadgen.StartBackends(dynos)
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.StopBackends(bs)
	router := startRouter(b, bs)
	hap := startHAProxy(b, bs, "leastconn", true)
	client := loadgen.Client()
	direct := loadgen.Target{Name: "direct", URL: "http://" + bs[0].Addr + "/"}
	const seq, par = 5000, 20000
	for i := 0; i < b.N; i++ {
		// Rounds interleave the targets, so that a noisy machine hurts them alike; the
		// medians are reported.
		lats := map[string][]time.Duration{}
		cpus := map[string][]time.Duration{}
		for round := 0; round < rounds(); round++ {
			for _, t := range []loadgen.Target{direct, target(router), target(hap)} {
				if err := loadgen.Warm(client, t, 500); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := loadgen.Warm(client, t, seq); err != nil {
					b.Fatal(err)
				}
				lats[t.Name] = append(lats[t.Name], time.Since(start)/seq)
			}
			for _, p := range []*proc{router, hap} {
				before, _ := cpuTime(p.cmd.Process.Pid)
				var wg sync.WaitGroup
				for c := 0; c < 16; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := loadgen.Warm(client, target(p), par/16); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
				after, _ := cpuTime(p.cmd.Process.Pid)
				cpus[p.name] = append(cpus[p.name], (after-before)/par)
			}
		}
		lat, cpu := map[string]time.Duration{}, map[string]time.Duration{}
		for name, ds := range lats {
			lat[name] = medianDuration(ds)
		}
		for name, ds := range cpus {
			cpu[name] = medianDuration(ds)
		}
		hopR := lat[router.name] - lat["direct"]
		hopH := lat[hap.name] - lat["direct"]
		b.ReportMetric(float64(hopR)/1e3, "router-hop-us")
		b.ReportMetric(float64(hopH)/1e3, "haproxy-hop-us")
		b.ReportMetric(float64(hopR)/float64(hopH), "router/haproxy-hop")
		b.ReportMetric(float64(cpu[router.name])/1e3, "router-cpu-us/req")
		b.ReportMetric(float64(cpu[hap.name])/1e3, "haproxy-cpu-us/req")
		b.ReportMetric(float64(cpu[router.name])/float64(cpu[hap.name]), "router/haproxy-cpu")
		fmt.Printf("\nzero service time, median of %d interleaved rounds: direct %.1fus per request; added per hop: dyno-router %.1fus, HAProxy %.1fus (ratio %.2f); CPU per request: dyno-router %.1fus, HAProxy %.1fus (ratio %.2f)\n",
			rounds(), float64(lat["direct"])/1e3, float64(hopR)/1e3, float64(hopH)/1e3, float64(hopR)/float64(hopH),
			float64(cpu[router.name])/1e3, float64(cpu[hap.name])/1e3, float64(cpu[router.name])/float64(cpu[hap.name]))
	}
}

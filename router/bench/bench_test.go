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
// HAProxy leastconn with maxconn 1 (a queue in the proxy), HAProxy random(1), and
// computes the ideal M/M/c result from the same trace.
func BenchmarkRouting(b *testing.B) {
	bs, err := loadgen.StartBackends(dynos)
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.StopBackends(bs)
	targets := []*proc{
		startRouter(b, bs),
		startHAProxy(b, bs, "leastconn", true),
		startHAProxy(b, bs, "random(1)", false),
	}
	client := loadgen.Client()
	for _, p := range targets {
		if err := loadgen.Warm(client, target(p), 200); err != nil {
			b.Fatal(err)
		}
	}
	var table []string
	for _, u := range []float64{0.5, 0.8, 0.9, 0.95} {
		b.Run(fmt.Sprintf("util=%.2f", u), func(b *testing.B) {
			tr := loadgen.Poisson(seed, requests(), loadgen.RateFor(u, dynos, meanService), meanService)
			ideal := loadgen.Summarise(loadgen.Ideal(tr, dynos), 0)
			runs := map[string][]loadgen.Summary{}
			mruns := map[string][]loadgen.Summary{}
			turn := map[string][]time.Duration{}
			m := loadgen.NewMeasured(len(tr))
			for _, bk := range bs {
				bk.Served = m
			}
			for i := 0; i < b.N*rounds(); i++ {
				for _, p := range targets {
					m.Reset()
					lat, errs, err := loadgen.Run(context.Background(), client, target(p), tr)
					if errs > 0 {
						b.Errorf("%s: %d requests failed (first: %v)", p.name, errs, err)
					}
					turn[p.name] = append(turn[p.name], m.Turnaround())
					runs[p.name] = append(runs[p.name], loadgen.Summarise(lat, errs))
					mruns[p.name] = append(mruns[p.name], loadgen.Summarise(loadgen.Ideal(m.Apply(tr), dynos), 0))
				}
			}
			res := map[string]loadgen.Summary{}
			measured := map[string]loadgen.Summary{}
			for name := range runs {
				res[name], measured[name] = median(runs[name]), median(mruns[name])
			}
			im := measured[targets[0].name]
			b.ReportMetric(ms(im.P99), "ideal-measured-p99-ms")
			b.ReportMetric(float64(res[targets[0].name].P99)/float64(im.P99), "router/ideal-measured-p99")
			r, h, rnd := res[targets[0].name], res[targets[1].name], res[targets[2].name]
			b.ReportMetric(ms(r.P99), "router-p99-ms")
			b.ReportMetric(ms(ideal.P99), "ideal-p99-ms")
			b.ReportMetric(ms(h.P99), "haproxy-p99-ms")
			b.ReportMetric(ms(rnd.P99), "random-p99-ms")
			b.ReportMetric(float64(r.P99)/float64(ideal.P99), "router/ideal-p99")
			b.ReportMetric(float64(r.P99)/float64(h.P99), "router/haproxy-p99")
			b.ReportMetric(float64(rnd.P99)/float64(r.P99), "random/router-p99")
			taR, taH := medianDuration(turn[targets[0].name]), medianDuration(turn[targets[1].name])
			b.ReportMetric(float64(taR)/1e3, "router-turnaround-us")
			b.ReportMetric(float64(taH)/1e3, "haproxy-turnaround-us")
			table = append(table, fmt.Sprintf("| %.2f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.3f | %.3f | %.3f | %.1f | %.0f / %.0f |",
				u, ms(ideal.P50), ms(ideal.P99), ms(im.P50), ms(im.P99), ms(r.P50), ms(r.P99), ms(h.P50), ms(h.P99), ms(rnd.P50), ms(rnd.P99),
				float64(r.P99)/float64(ideal.P99), float64(r.P99)/float64(im.P99), float64(r.P99)/float64(h.P99), float64(rnd.P99)/float64(r.P99),
				float64(taR)/1e3, float64(taH)/1e3))
		})
	}
	for _, bk := range bs {
		if n := bk.Overlaps.Load(); n > 0 {
			b.Logf("backend %s saw %d overlapping requests (expected only under random routing)", bk.Addr, n)
		}
	}
	fmt.Printf("\n%d dynos, exponential service mean %s, %d requests per run, seed %d, median of %d interleaved rounds (latencies ms, p50 / p99)\n", dynos, meanService, requests(), seed, rounds())
	fmt.Println("| util | ideal M/M/c (trace) | ideal M/M/c (measured service) | dyno-router | HAProxy leastconn maxconn 1 | HAProxy random(1) | router/ideal p99 | router/ideal-measured p99 | router/HAProxy p99 | random/router p99 | turnaround us, router / HAProxy |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Println(strings.Join(table, "\n"))
}

func target(p *proc) loadgen.Target {
	return loadgen.Target{Name: p.name, URL: "http://" + p.addr + "/", Host: "bench.localhost"}
}

// BenchmarkOverhead measures, with zero service time, the latency one proxy hop adds
// (sequential requests, against a direct connection) and the proxy's CPU per request
// (16 concurrent clients), for dyno-router and HAProxy.
func BenchmarkOverhead(b *testing.B) {
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
		lat := map[string]time.Duration{}
		for _, t := range []loadgen.Target{direct, target(router), target(hap)} {
			if err := loadgen.Warm(client, t, 500); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := loadgen.Warm(client, t, seq); err != nil {
				b.Fatal(err)
			}
			lat[t.Name] = time.Since(start) / seq
		}
		cpu := map[string]time.Duration{}
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
			cpu[p.name] = (after - before) / par
		}
		hopR := lat[router.name] - lat["direct"]
		hopH := lat[hap.name] - lat["direct"]
		b.ReportMetric(float64(hopR)/1e3, "router-hop-us")
		b.ReportMetric(float64(hopH)/1e3, "haproxy-hop-us")
		b.ReportMetric(float64(hopR)/float64(hopH), "router/haproxy-hop")
		b.ReportMetric(float64(cpu[router.name])/1e3, "router-cpu-us/req")
		b.ReportMetric(float64(cpu[hap.name])/1e3, "haproxy-cpu-us/req")
		b.ReportMetric(float64(cpu[router.name])/float64(cpu[hap.name]), "router/haproxy-cpu")
		fmt.Printf("\nzero service time: direct %.1fus per request; added per hop: dyno-router %.1fus, HAProxy %.1fus (ratio %.2f); CPU per request: dyno-router %.1fus, HAProxy %.1fus (ratio %.2f)\n",
			float64(lat["direct"])/1e3, float64(hopR)/1e3, float64(hopH)/1e3, float64(hopR)/float64(hopH),
			float64(cpu[router.name])/1e3, float64(cpu[hap.name])/1e3, float64(cpu[router.name])/float64(cpu[hap.name]))
	}
}

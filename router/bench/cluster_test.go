package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
	"github.com/dynogrid/dynogrid/router"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

// clusterRouter is one dyno-router process of a cluster, pinned to one core.
type clusterRouter struct {
	id, addr, metrics string
	args              []string
	env               []string
	cmd               *exec.Cmd
}

func (r *clusterRouter) start(tb testing.TB) {
	tb.Helper()
	r.cmd = exec.Command(r.args[0], r.args[1:]...)
	r.cmd.Env = r.env
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("failed to start router %s: %v", r.id, err)
	}
}

func (r *clusterRouter) stop() {
	if r.cmd != nil && r.cmd.ProcessState == nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

// dynos is how many dynos of the benchmark app the router routes to (-1: no answer).
func (r *clusterRouter) dynos() int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + r.metrics + "/status")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var s router.Status
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return -1
	}
	return s.Apps["bench"].Dynos
}

// routerCluster is n routers sharing one Consul, in front of the benchmark's backends.
type routerCluster struct {
	n       int
	routers []*clusterRouter
}

func (c *routerCluster) target() loadgen.Target {
	t := loadgen.Target{Name: fmt.Sprintf("%d routers", c.n), Host: "bench.localhost"}
	for _, r := range c.routers {
		t.URLs = append(t.URLs, "http://"+r.addr+"/")
	}
	return t
}

// owner is the router holding the app's dynos, or nil.
func (c *routerCluster) owner() *clusterRouter {
	for _, r := range c.routers {
		if r.dynos() == dynos {
			return r
		}
	}
	return nil
}

// settled waits until one router owns every dyno and every router routes the app.
func (c *routerCluster) settled(tb testing.TB, client *http.Client) *clusterRouter {
	tb.Helper()
	var owner *clusterRouter
	testutil.WaitFor(tb, 60*time.Second, fmt.Sprintf("the %d-router cluster to settle with one router owning all %d dynos", c.n, dynos), func() bool {
		if owner = c.owner(); owner == nil {
			return false
		}
		for _, r := range c.routers {
			if loadgen.Warm(client, loadgen.Target{Name: r.id, URL: "http://" + r.addr + "/", Host: "bench.localhost"}, 1) != nil {
				return false
			}
		}
		return true
	})
	return owner
}

// startCluster starts a Consul agent (ACLs on), registers the backends in it as the
// dynos of app "bench", and starts n dyno-router processes in cluster mode, router i
// pinned to core i modulo the cores there are.
func startCluster(tb testing.TB, bs []*loadgen.Backend, n int) *routerCluster {
	tb.Helper()
	g := harness.Consul(tb)
	cc, err := g.ConsulClient()
	if err != nil {
		tb.Fatal(err)
	}
	registerBackends(tb, cc, bs)
	bin := filepath.Join(harness.BinDir(tb), "dyno-router")
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("dyno-router not built in %s (run `make build`): %v", filepath.Dir(bin), err)
	}
	c := &routerCluster{n: n}
	env := append(os.Environ(), "CONSUL_HTTP_TOKEN="+harness.Tokens(tb, g).Consul[policies.ConsulCluster])
	for i := 0; i < n; i++ {
		r := &clusterRouter{id: fmt.Sprintf("bench-%d", i), addr: freeAddr(tb), metrics: freeAddr(tb), env: env}
		r.args = pinned(i, bin, "-cluster", "-id", r.id, "-listen", r.addr, "-metrics-listen", r.metrics,
			"-consul", consulAddr(g), "-log-level", "warn", "-max-queue", "100000", "-max-queue-wait", "60s")
		r.start(tb)
		tb.Cleanup(r.stop)
		c.routers = append(c.routers, r)
	}
	return c
}

func consulAddr(g *devgrid.Grid) string { return g.Options.ConsulAddr() }

// pinned runs argv on one core (taskset keeps the process ID: it execs the command), on
// none when i < 0.
func pinned(i int, argv ...string) []string {
	if _, err := exec.LookPath("taskset"); err != nil || i < 0 {
		return argv
	}
	return append([]string{"taskset", "-c", fmt.Sprint(i % runtime.NumCPU())}, argv...)
}

func registerBackends(tb testing.TB, c *consulapi.Client, bs []*loadgen.Backend) {
	tb.Helper()
	for i, b := range bs {
		host, port, _ := strings.Cut(b.Addr, ":")
		var p int
		fmt.Sscan(port, &p)
		id := fmt.Sprintf("bench-web-web.%d", i+1)
		err := c.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
			ID: id, Name: "bench-web", Tags: []string{"dyno", "app=bench"}, Address: host, Port: p,
			Meta:  map[string]string{"dyno": fmt.Sprintf("web.%d", i+1), "release": "v1"},
			Check: &consulapi.AgentServiceCheck{CheckID: id + "-ttl", TTL: "1h", Status: consulapi.HealthPassing},
		})
		if err != nil {
			tb.Fatalf("failed to register backend %s: %v", id, err)
		}
	}
}

func overlaps(bs []*loadgen.Backend) int {
	n := 0
	for _, b := range bs {
		n += int(b.Overlaps.Load())
	}
	return n
}

// BenchmarkCluster measures several routers in cluster mode against one router, in the
// same run: the same seeded open-loop traces (exponential and heavy-tailed service
// times, loads 0.8, 0.9 and 0.95) spread evenly over 2 and over 3 routers, with
// failed requests and overlaps (a dyno given two requests at once) counted; then the
// same while the router owning the app restarts (SIGTERM, and started again) and when
// it is killed (SIGKILL), with the time the other routers take to recover; and the
// latency of the extra hop through a router that forwards to the owner.
func BenchmarkCluster(b *testing.B) {
	harness.RequireRoot(b)
	bs, err := loadgen.StartBackends(dynos)
	if err != nil {
		b.Fatal(err)
	}
	defer loadgen.StopBackends(bs)
	clusters := []*routerCluster{startCluster(b, bs, 1), startCluster(b, bs, 2), startCluster(b, bs, 3)}
	client := loadgen.Client()
	for _, c := range clusters {
		c.settled(b, client)
		if err := loadgen.Warm(client, c.target(), 300); err != nil {
			b.Fatal(err)
		}
	}
	machine := testutil.MachineState()

	type shape struct {
		name  string
		trace func(u float64) loadgen.Trace
	}
	shapes := []shape{
		{"exponential", func(u float64) loadgen.Trace {
			return loadgen.Poisson(seed, requests(), loadgen.RateFor(u, dynos, meanService), meanService)
		}},
		{"heavy-tailed (Weibull 0.46)", func(u float64) loadgen.Trace {
			return loadgen.Weibull(seed, requests(), loadgen.RateFor(u, dynos, meanService), meanService, loadgen.HeavyShape)
		}},
	}
	// Besides the even spreads, all clients on the router that does not own the app:
	// every request takes the extra hop.
	owner2 := clusters[1].settled(b, client)
	var forwarder loadgen.Target
	for _, r := range clusters[1].routers {
		if r != owner2 {
			forwarder = loadgen.Target{Name: "2 routers, all via the forwarder", URLs: []string{"http://" + r.addr + "/"}, Host: "bench.localhost"}
		}
	}
	targets := []loadgen.Target{clusters[0].target(), clusters[1].target(), clusters[2].target(), forwarder}
	m := loadgen.NewMeasured(requests())
	for _, bk := range bs {
		bk.Served = m
	}
	defer func() {
		for _, bk := range bs {
			bk.Served = nil
		}
	}()
	var rows []string
	for i := 0; i < b.N; i++ {
		for _, sh := range shapes {
			for _, u := range []float64{0.8, 0.9, 0.95} {
				tr := sh.trace(u)
				ideal := loadgen.Summarise(loadgen.Ideal(tr, dynos), 0)
				runs := make([][]loadgen.Summary, len(targets))
				handOff := make([][]time.Duration, len(targets))
				errs := make([]int, len(targets))
				ov := make([]int, len(targets))
				for round := 0; round < rounds(); round++ {
					for ti, tg := range targets {
						before := overlaps(bs)
						m.Reset()
						lat, n, _ := loadgen.Run(context.Background(), client, tg, tr)
						errs[ti] += n
						ov[ti] += overlaps(bs) - before
						runs[ti] = append(runs[ti], loadgen.Summarise(lat, n))
						handOff[ti] = append(handOff[ti], m.HandOff())
					}
				}
				one, two, three, fwd := median(runs[0]), median(runs[1]), median(runs[2]), median(runs[3])
				ratio := func(s loadgen.Summary) float64 { return float64(s.P99) / float64(one.P99) }
				pp := func(s loadgen.Summary) string { return fmt.Sprintf("%.1f / %.1f", ms(s.P50), ms(s.P99)) }
				us := func(i int) float64 { return float64(medianDuration(handOff[i])) / 1e3 }
				rows = append(rows, fmt.Sprintf("| %.2f | %s | %.1f | %s | %s | %.2f | %s | %.2f | %s | %.2f | %d / %d / %d / %d | %d / %d / %d / %d | %.0f / %.0f / %.0f / %.0f |",
					u, sh.name, ms(ideal.P99), pp(one), pp(two), ratio(two), pp(three), ratio(three), pp(fwd), ratio(fwd),
					errs[0], errs[1], errs[2], errs[3], ov[0], ov[1], ov[2], ov[3], us(0), us(1), us(2), us(3)))
				b.ReportMetric(ratio(two), fmt.Sprintf("2routers/1-p99-%s-%.2f", sh.name[:5], u))
				b.ReportMetric(ratio(three), fmt.Sprintf("3routers/1-p99-%s-%.2f", sh.name[:5], u))
			}
		}
	}
	fmt.Printf("\nBenchmarkCluster: %d dynos, mean service %s, %d requests per run, seed %d, median of %d interleaved rounds; clients spread evenly over the routers, and all on the router that forwards; each router pinned to one core (%d cores); before the run: %s; after: %s\n",
		dynos, meanService, requests(), seed, rounds(), runtime.NumCPU(), machine, testutil.MachineState())
	fmt.Println("| load | service | ideal M/M/c p99 | 1 router p50 / p99 | 2 routers p50 / p99 | 2/1 p99 | 3 routers p50 / p99 | 3/1 p99 | all via the forwarder p50 / p99 | fwd/1 p99 | errors 1 / 2 / 3 / fwd | overlaps 1 / 2 / 3 / fwd | hand-off us 1 / 2 / 3 / fwd |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Println(strings.Join(rows, "\n"))

	fmt.Println("\nThe owning router restarts (SIGTERM, then started again) or is killed (SIGKILL) a third of the way into a run at load 0.9 (exponential); the one-router run is the same trace, undisturbed")
	fmt.Println("| routers | event | 1 router p99 | cluster p99 | ratio | errors | overlaps | recovery |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	tr := shapes[0].trace(0.9)
	for _, c := range clusters[1:] {
		for _, ev := range []string{"restart", "kill"} {
			lat, n, _ := loadgen.Run(context.Background(), client, clusters[0].target(), tr)
			one := loadgen.Summarise(lat, n)
			before := overlaps(bs)
			res, recovery := disturbedRun(b, c, client, tr, ev)
			fmt.Printf("| %d | %s | %.1f | %.1f | %.2f | %d | %d | %s |\n", c.n, ev, ms(one.P99), ms(res.P99),
				float64(res.P99)/float64(one.P99), res.Errors, overlaps(bs)-before, recovery.Round(time.Millisecond))
			c.settled(b, client)
		}
	}

	hop := hopLatency(b, clusters[1], client)
	fmt.Printf("\nExtra hop (zero service time, sequential requests, median of %d interleaved rounds of 2000): through the owning router %.0f us, through the other router %.0f us: %.0f us added\n",
		rounds(), float64(hop[0])/1e3, float64(hop[1])/1e3, float64(hop[1]-hop[0])/1e3)
	b.ReportMetric(float64(hop[1]-hop[0])/1e3, "hop-us")
}

// disturbedRun replays tr through cluster c while its owning router restarts or is
// killed a third of the way in; recovery is the time from the signal until a router
// owns every dyno again (the restarted one, or another).
func disturbedRun(b *testing.B, c *routerCluster, client *http.Client, tr loadgen.Trace, event string) (loadgen.Summary, time.Duration) {
	o := c.settled(b, client)
	recovered := make(chan time.Duration, 1)
	go func() {
		time.Sleep(tr.Duration() / 3) // when, in the trace, the router goes away
		at := time.Now()
		if event == "kill" {
			o.cmd.Process.Signal(syscall.SIGKILL)
			o.cmd.Wait()
		} else {
			o.cmd.Process.Signal(syscall.SIGTERM)
			if err := o.cmd.Wait(); err != nil {
				b.Errorf("router %s did not stop cleanly: %v", o.id, err)
			}
			o.start(b)
		}
		deadline := at.Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if c.owner() != nil {
				recovered <- time.Since(at)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		recovered <- -1
	}()
	lat, n, _ := loadgen.Run(context.Background(), client, c.target(), tr)
	d := <-recovered
	if event == "kill" {
		o.start(b)
	}
	return loadgen.Summarise(lat, n), d
}

// hopLatency is the median time of a sequential zero-service request through the
// owning router ([0]) and through another one, which forwards it to the owner ([1]).
func hopLatency(b *testing.B, c *routerCluster, client *http.Client) [2]time.Duration {
	o := c.settled(b, client)
	var other *clusterRouter
	for _, r := range c.routers {
		if r != o {
			other = r
		}
	}
	var per [2][]time.Duration
	for round := 0; round < rounds(); round++ {
		for i, r := range []*clusterRouter{o, other} {
			t := loadgen.Target{Name: r.id, URL: "http://" + r.addr + "/", Host: "bench.localhost"}
			start := time.Now()
			if err := loadgen.Warm(client, t, 2000); err != nil {
				b.Fatal(err)
			}
			per[i] = append(per[i], time.Since(start)/2000)
		}
	}
	return [2]time.Duration{medianDuration(per[0]), medianDuration(per[1])}
}

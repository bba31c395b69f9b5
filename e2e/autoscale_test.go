package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

// autoscaleSpec is the example app with an autoscaled web process type.
func autoscaleSpec(app string, lo, hi int, target string, cost float64) string {
	return fmt.Sprintf(`app %q {
  procfile = "Procfile"
  process "web" {
    memory       = 128
    health_check = "/health"
    size         = "shared"
    autoscale {
      min               = %d
      max               = %d
      p95_queue_wait    = %q
      max_cost_per_hour = %g
    }
  }
}
`, app, lo, hi, target, cost)
}

// withFastAutoscaler runs the grid's autoscaler with its metrics on a free port and
// the given flags (its ticks and cooldowns shortened, so tests wait seconds, not
// minutes).
func withFastAutoscaler(tb testing.TB, flags ...string) func(*devgrid.Options) {
	port := harness.FreePorts(tb, 1)
	return func(o *devgrid.Options) {
		o.AutoscalerMetricsPort = port
		o.AutoscalerFlags = append([]string{"-interval", "1s", "-window", "5s", "-up-cooldown", "5s",
			"-down-after", "10s", "-down-cooldown", "10s"}, flags...)
	}
}

// autoscalerEvents are the scaling events the autoscaler posted for the app's web dynos.
func autoscalerEvents(tb testing.TB, nomad *nomadapi.Client, app string) []nomadapi.ScalingEvent {
	tb.Helper()
	st, _, err := nomad.Jobs().ScaleStatus(app, &nomadapi.QueryOptions{Namespace: app})
	if err != nil {
		tb.Fatalf("scale status of %s: %v", app, err)
	}
	var out []nomadapi.ScalingEvent
	for _, e := range st.TaskGroups["web"].Events {
		if e.Meta["Source"] == deploy.AutoscalerSource {
			out = append(out, e)
		}
	}
	return out
}

// webCount is the app's web count in Nomad.
func webCount(tb testing.TB, nomad *nomadapi.Client, app string) int {
	tb.Helper()
	st, _, err := nomad.Jobs().ScaleStatus(app, &nomadapi.QueryOptions{Namespace: app})
	if err != nil {
		tb.Fatalf("scale status of %s: %v", app, err)
	}
	return st.TaskGroups["web"].Desired
}

// waitWebCount waits up to two minutes until the app runs n web dynos in Nomad, and
// returns the most it saw meanwhile.
func waitWebCount(t *testing.T, nomad *nomadapi.Client, app string, n int, what string) int {
	t.Helper()
	most := 0
	testutil.WaitFor(t, 2*time.Minute, what, func() error {
		got := webCount(t, nomad, app)
		most = max(most, got)
		if got != n {
			return fmt.Errorf("web=%d", got)
		}
		return nil
	})
	return most
}

// agentLog is the content of one of the grid's agents' logs.
func agentLog(tb testing.TB, g *devgrid.Grid, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(g.Options.DataDir, name+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// sleepLoad sends an open-loop Poisson load of rate requests per second, each asking
// the example app to sleep ms, to app through the grid's router, for at most d or
// until the returned stop is called.
func sleepLoad(g *devgrid.Grid, app string, rate float64, ms int, d time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	trace := loadgen.Poisson(17, int(rate*d.Seconds()), rate, 0)
	target := loadgen.Target{Name: app, URL: fmt.Sprintf("http://%s/sleep?ms=%d", g.Options.RouterAddr(), ms),
		Host: app + "." + g.Options.RouterDomain}
	go func() {
		defer close(done)
		_, _, _ = loadgen.Run(ctx, loadgen.Client(), target, trace)
	}()
	return func() {
		cancel()
		<-done
	}
}

// TestAutoscaleFollowsLoadWithinItsCostCap deploys the example app with an autoscale
// block whose cost cap pays for 3 dynos (max_cost_per_hour 0.10 at $0.05 a dyno-hour,
// the first free) below its max of 6, loads it with more than 2 dynos can serve, and
// sees the autoscaler scale it up through Nomad to 3 and no further; a one-off dyno
// started under the load takes one of the 3 (web goes to 2, and back to 3 once it is
// stopped); when the load stops, web goes back down to its min of 1. Every scale carries its reason, which dyno ps
// and dyno autoscale show; the autoscaler logs its decisions and exports metrics.
func TestAutoscaleFollowsLoadWithinItsCostCap(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t), withFastAutoscaler(t))
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t)
	writeSpec(t, dir, autoscaleSpec("auto", 1, 6, "50ms", 0.10))
	c := newCLI(t, g, "auto")
	c.must("deploy", dir)
	passingDynos(t, consul, "auto", 1, time.Minute)
	nomad := appNomad(t, g, "auto")
	if out := c.must("autoscale"); !strings.Contains(out, "autoscaled from 1 to 6 to keep the p95 queue wait under 50ms, at most $0.10/hour") {
		t.Errorf("dyno autoscale before any load:\n%s", out)
	}

	// 100 ms requests at 25 per second: 2.5 dynos' worth.
	stop := sleepLoad(g, "auto", 25, 100, 3*time.Minute)
	defer stop()
	most := waitWebCount(t, nomad, "auto", 3, "the autoscaler to scale web to 3 dynos (its cost cap)")
	passingDynos(t, consul, "auto", 3, time.Minute)
	// Under the same load, it stays at the cap.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		most = max(most, webCount(t, nomad, "auto"))
		time.Sleep(500 * time.Millisecond) // sampling the count, not waiting for a condition
	}
	// A one-off dyno is billed too: while it runs, the cap pays for 2 web dynos, and
	// web goes back to 3 once it has stopped.
	out := c.must("run:detached", "--memory", "128", "--", "sleep 600")
	m := regexp.MustCompile(`up, (run\.\d{4})\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("run:detached said:\n%s", out)
	}
	waitWebCount(t, nomad, "auto", 2, "the autoscaler to scale web to 2 beside the one-off dyno")
	c.must("ps:stop", m[1])
	most = max(most, waitWebCount(t, nomad, "auto", 3, "the autoscaler to scale web back to 3 once the one-off dyno stopped"))
	stop()
	most = max(most, waitWebCount(t, nomad, "auto", 1, "the autoscaler to scale web back to its min 1 once the load stopped"))
	if most > 3 {
		t.Errorf("web reached %d dynos, above the 3 that the $0.10/hour cap pays for", most)
	}

	var ups, downs, oneOff int
	for _, e := range autoscalerEvents(t, nomad, "auto") {
		if e.Meta["Decision"] == "down" && strings.Contains(e.Message, "cost cap pays for beside 1 one-off dynos") {
			oneOff++
		}
		if e.Count != nil && *e.Count > 3 {
			t.Errorf("the autoscaler scaled to %d (%q), above the cost cap's 3", *e.Count, e.Message)
		}
		switch e.Meta["Decision"] {
		case "up":
			ups++
			if !strings.Contains(e.Message, "over the 50ms target") {
				t.Errorf("scale-up event without its reason: %q", e.Message)
			}
		case "down":
			downs++
		}
	}
	if ups == 0 || downs == 0 || oneOff == 0 {
		t.Errorf("autoscaler events: %d up, %d down, %d down for a one-off dyno; want each", ups, downs, oneOff)
	}
	// dyno ps as docs/apps.md shows it: each process type with its latest scale, then
	// its dynos. The job's count is 1 before Nomad has stopped the second dyno.
	documented := regexp.MustCompile(`(?m)^=== web \(1\), scaled from 2 to 1 by the autoscaler \(no requests for [\d.]+s\) at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+s ago\)\nweb\.1: running since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\S+ ago\) on \S+, release v1$`)
	testutil.WaitFor(t, time.Minute, "dyno ps to show web's last scale by the autoscaler, then web.1, as documented", func() error {
		out = c.must("ps")
		if !documented.MatchString(out) {
			return fmt.Errorf("dyno ps:\n%s", out)
		}
		return nil
	})
	t.Logf("dyno ps:\n%s", out)
	out = c.must("autoscale")
	t.Logf("dyno autoscale:\n%s", out)
	for _, want := range []string{"up from 1 to", "down from", "over the 50ms target"} {
		if !strings.Contains(out, want) {
			t.Errorf("dyno autoscale does not show %q:\n%s", want, out)
		}
	}
	if log := agentLog(t, g, "autoscaler"); !strings.Contains(log, "scaling: app=auto process=web decision=up") {
		t.Errorf("the autoscaler's log has no scale-up decision of auto:\n%s", devgrid.Tail(filepath.Join(g.Options.DataDir, "autoscaler.log"), 20))
	}
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/metrics", g.Options.Bind, g.Options.AutoscalerMetricsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`dyno_autoscaler_decisions_total{app="auto",kind="up"}`, `dyno_autoscaler_ceiling_dynos{app="auto"} 3`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("the autoscaler's metrics lack %s", want)
		}
	}
}

// TestAutoscalePolicyAttacks: a tenant can neither change another app's policy nor
// scale it, and the autoscaler acts on no policy a tenant forges in its own namespace:
// one outside the spec's limits, or one naming another app. Nobody without a router's
// token can register a router whose metrics the autoscaler would read.
func TestAutoscalePolicyAttacks(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t), withFastAutoscaler(t))
	for _, app := range []string{"victim", "tenant"} {
		dir := copyApp(t)
		writeSpec(t, dir, autoscaleSpec(app, 1, 4, "50ms", 0.05))
		newCLI(t, g, app).must("deploy", dir)
	}
	mgmt := appNomad(t, g, "victim")
	tenantToken := strings.TrimSpace(newCLI(t, g, "tenant").must("apps:token"))
	tenant, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + g.Options.NomadAddr(), SecretID: tenantToken})
	if err != nil {
		t.Fatal(err)
	}
	victimJob, _, err := mgmt.Jobs().Info("victim", &nomadapi.QueryOptions{Namespace: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	forged := *victimJob
	forged.TaskGroups = []*nomadapi.TaskGroup{}
	for _, tg := range victimJob.TaskGroups {
		c := *tg
		s := *tg.Scaling
		s.Max = ptrInt64(100)
		s.Policy = appspec.Autoscale{P95QueueWait: time.Millisecond, MaxCostMicroUSD: 10_000_000}.Policy()
		c.Scaling = &s
		forged.TaskGroups = append(forged.TaskGroups, &c)
	}
	victimPolicy := ""
	if ps, _, err := mgmt.Scaling().ListPolicies(&nomadapi.QueryOptions{Namespace: "victim"}); err != nil || len(ps) != 1 {
		t.Fatalf("victim's scaling policies: %v, %v", ps, err)
	} else {
		victimPolicy = ps[0].ID
	}
	four := 4
	for what, try := range map[string]func() error{
		"register victim's job with a larger cap": func() error {
			_, _, err := tenant.Jobs().Register(&forged, &nomadapi.WriteOptions{Namespace: "victim"})
			return err
		},
		"scale victim": func() error {
			_, _, err := tenant.Jobs().Scale("victim", "web", &four, "forged", false, map[string]any{"Source": deploy.AutoscalerSource}, &nomadapi.WriteOptions{Namespace: "victim"})
			return err
		},
		"read victim's policy": func() error {
			_, _, err := tenant.Scaling().GetPolicy(victimPolicy, &nomadapi.QueryOptions{Namespace: "victim"})
			return err
		},
	} {
		if err := try(); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("the tenant's token could %s: %v, want 403", what, err)
		}
	}

	// In its own namespace the tenant may write what it likes into its job: a cost cap
	// beyond the spec's limit, and a job named after the victim.
	own, _, err := tenant.Jobs().Info("tenant", &nomadapi.QueryOptions{Namespace: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	own.TaskGroups[0].Scaling.Policy[appspec.PolicyMaxCost] = 1e15
	if _, _, err := tenant.Jobs().Register(own, &nomadapi.WriteOptions{Namespace: "tenant"}); err != nil {
		t.Fatalf("the tenant could not register its own job: %v", err)
	}
	impostor := forged
	impostor.Namespace = ptrString("tenant")
	impostor.Meta = nil
	impostor.TaskGroups[0].Scaling.Policy = appspec.Autoscale{P95QueueWait: time.Millisecond, MaxCostMicroUSD: 500_000}.Policy()
	if _, _, err := tenant.Jobs().Register(&impostor, &nomadapi.WriteOptions{Namespace: "tenant"}); err != nil {
		t.Fatalf("the tenant could not register a job named victim in its namespace: %v", err)
	}
	testutil.WaitFor(t, time.Minute, "the autoscaler to refuse the tenant's forged policy", func() error {
		if log := agentLog(t, g, "autoscaler"); !strings.Contains(log, "ignoring an invalid autoscale policy: app=tenant") {
			return fmt.Errorf("no refusal in its log yet")
		}
		return nil
	})
	// Load on both apps' names: the autoscaler scales neither the tenant's app (its
	// policy is refused) nor the impostor; the victim stays within its own cap of 2.
	stopTenant := sleepLoad(g, "tenant", 20, 100, 40*time.Second)
	stopVictim := sleepLoad(g, "victim", 20, 100, 40*time.Second)
	waitWebCount(t, mgmt, "victim", 2, "the victim to scale to its own cap of 2")
	stopTenant()
	stopVictim()
	if ev := autoscalerEvents(t, mgmt, "tenant"); len(ev) != 0 {
		t.Errorf("the autoscaler acted on the tenant's forged policy: %+v", ev)
	}
	if st, _, err := mgmt.Jobs().ScaleStatus("victim", &nomadapi.QueryOptions{Namespace: "tenant"}); err != nil {
		t.Fatal(err)
	} else if n := len(st.TaskGroups["web"].Events); n != 0 {
		t.Errorf("the autoscaler scaled the impostor job tenant/victim: %+v", st.TaskGroups["web"].Events)
	}
	for _, e := range autoscalerEvents(t, mgmt, "victim") {
		if e.Count != nil && *e.Count > 2 {
			t.Errorf("victim scaled to %d, above its cap of 2", *e.Count)
		}
	}

	// Without a token (all a dyno has), nobody registers a router in Consul.
	anon, err := consulapi.NewClient(&consulapi.Config{Address: g.Options.ConsulAddr()})
	if err != nil {
		t.Fatal(err)
	}
	err = anon.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{ID: "evil", Name: "dyno-router",
		Meta: map[string]string{"metrics": "127.0.0.1:1"}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("registering a dyno-router without a token: %v, want 403", err)
	}
}

func ptrInt64(v int64) *int64    { return &v }
func ptrString(v string) *string { return &v }

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestRoutedBeforeConsulsFirstCheck: the router routes a new web dyno as soon as its own
// probe of the dyno's health check passes, before Consul has run that check. The app's
// job is given a check interval of 30 s, so that Consul's first check of a new dyno comes
// at a random moment up to 30 s after its registration; two new dynos are each routed
// within a second of answering their health check path, and at least one of them more
// than a second before Consul's check passes, which the router's metric counts.
func TestRoutedBeforeConsulsFirstCheck(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	const app, interval = "early", 30 * time.Second
	dir := copyApp(t)
	writeSpec(t, dir, scaledSpec(app, 1, 1, 4))
	c := newCLI(t, g, app)
	c.must("deploy", dir)
	waitFormation(t, g, app, 1)

	nomad := appNomad(t, g, app)
	job, _, err := nomad.Jobs().Info(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, tg := range job.TaskGroups {
		services := tg.Services
		for _, task := range tg.Tasks {
			services = append(services, task.Services...)
		}
		for _, s := range services {
			if s.Name != deploy.ServiceName(app) {
				continue
			}
			for i := range s.Checks {
				s.Checks[i].Interval = interval
				changed++
			}
		}
	}
	if changed != 1 {
		t.Fatalf("%d checks of %s's web service, want 1", changed, app)
	}
	if _, _, err := nomad.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 3*time.Minute, "the job with the longer check interval deployed", func() error {
		dep, _, err := nomad.Jobs().LatestDeployment(app, nil)
		if err != nil {
			return err
		}
		if dep == nil || dep.JobVersion != *job.Version+1 || dep.Status != nomadapi.DeploymentStatusSuccessful {
			return fmt.Errorf("latest deployment %+v", dep)
		}
		return nil
	})
	waitFormation(t, g, app, 1)

	tr := traceScale(t, g, c, app, 1, 3, nil)
	early := 0
	for _, d := range tr.Dynos {
		toRouted, routedBefore := d.Routed.Sub(d.Answers), d.Passing.Sub(d.Routed)
		t.Logf("dyno %s: answering to routed %s; routed %s before Consul's check passed", d.Alloc, toRouted, routedBefore)
		if toRouted > time.Second {
			t.Errorf("dyno %s routed %s after it answered its health check path, want within a second", d.Alloc, toRouted)
		}
		if routedBefore > time.Second {
			early++
		}
	}
	if len(tr.Dynos) != 2 || early == 0 {
		t.Errorf("of %d new dynos, %d were routed more than a second before Consul's check passed, want at least 1", len(tr.Dynos), early)
	}
	metrics := fmt.Sprintf("http://%s:%d/metrics", g.Options.Bind, g.Options.RouterPort+1)
	if n := admittedByProbe(t, metrics, app); n < early {
		t.Errorf("dyno_router_instances_admitted_by_probe_total{app=%q} = %d, want at least %d", app, n, early)
	}
}

// admittedByProbe reads the router's count of app's instances admitted by its probe.
func admittedByProbe(t *testing.T, url, app string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^dyno_router_instances_admitted_by_probe_total\{app="` + regexp.QuoteMeta(app) + `"\} (\d+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

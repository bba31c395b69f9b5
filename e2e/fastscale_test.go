package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/router"
)

// TestScaleReturnsWhenRouted scales an app's web dynos with `dyno ps:scale` able to
// read Consul: it returns once the new dynos pass their health check, which the router
// follows within moments, while Nomad's deployment of the scale may still run; a
// second scale right after waits for that deployment instead of being refused. Without
// Consul, ps:scale returns when Nomad's deployment has ended. A deploy afterwards still
// rolls out through a canary.
func TestScaleReturnsWhenRouted(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, harness.WithRouter(t))
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t)
	writeSpec(t, dir, scaledSpec("quick", 1, 1, 4))
	c := newCLI(t, g, "quick")
	c.must("deploy", dir)
	passingDynos(t, consul, "quick", 1, time.Minute)
	status := fmt.Sprintf("http://%s:%d/status", g.Options.Bind, g.Options.RouterPort+1)
	nomad := appNomad(t, g, "quick")

	out := c.must("ps:scale", append([]string{"web=3"}, consulFlags(t, g)...)...)
	entries, _, err := consul.Health().Service("quick-web", "dyno", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || !strings.Contains(out, "2 new web dynos pass their health check: routed") {
		t.Errorf("when ps:scale web=3 returned, %d dynos passed in Consul, want 3; it said:\n%s", len(entries), out)
	}
	waitAppStatus(t, status, "quick", 2*time.Second, "3 dynos up", func(s router.AppStatus) bool { return s.Up == 3 })

	// The next scale waits for Nomad to end the last one's deployment.
	c.must("ps:scale", append([]string{"web=4"}, consulFlags(t, g)...)...)
	passingDynos(t, consul, "quick", 4, 5*time.Second)

	// Without Consul, ps:scale returns when Nomad's deployment has ended.
	c.must("ps:scale", "web=1")
	waitAppStatus(t, status, "quick", time.Minute, "1 dyno up", func(s router.AppStatus) bool { return s.Up == 1 })
	c.must("ps:scale", "web=2")
	if dep, _, err := nomad.Jobs().LatestDeployment("quick", nil); err != nil || dep == nil || dep.Status != nomadapi.DeploymentStatusSuccessful {
		t.Errorf("ps:scale web=2 without Consul returned with the scale's deployment %+v (%v), want it successful", dep, err)
	}

	// A release still starts one canary and waits for it.
	c.must("config:set", "GREETING=hello")
	dep, _, err := nomad.Jobs().LatestDeployment("quick", nil)
	if err != nil || dep == nil {
		t.Fatalf("no deployment of the release: %v", err)
	}
	if web := dep.TaskGroups["web"]; dep.Status != nomadapi.DeploymentStatusSuccessful || web == nil || web.DesiredCanaries != 1 || web.HealthyAllocs != 2 {
		t.Errorf("the release's deployment: %s, web %+v; want successful through one canary, 2 dynos healthy", dep.Status, web)
	}
}

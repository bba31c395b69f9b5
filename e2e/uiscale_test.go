package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router"
)

// scaledSpec is webSpec with the web dynos kept from min to max.
func scaledSpec(app string, count, min, max int) string {
	return strings.Replace(webSpec(app, ""), "    count        = 2\n",
		fmt.Sprintf("    count        = %d\n    min          = %d\n    max          = %d\n", count, min, max), 1)
}

// TestNomadUIScalesTheApp signs in to the real Nomad web UI with an app's own deploy
// token, clicks the increment of its web task group's count stepper, and then sees the
// router route to one dyno more. It saves a screenshot in e2e/screenshots.
func TestNomadUIScalesTheApp(t *testing.T) {
	t.Parallel()
	testutil.E2E(t, "starts agents as root and drives Chromium with node and playwright-core", testutil.Root, testutil.Program("node"))
	root := harness.RepoRoot(t)
	script := filepath.Join(root, "e2e", "ui", "nomad-ui-scale.mjs")
	if _, err := os.Stat(filepath.Join(root, "e2e", "ui", "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed (make test runs `npm ci` in e2e/ui): %v", err)
	}
	g := harness.Grid(t, harness.WithRouter(t))
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t)
	writeSpec(t, dir, scaledSpec("uiscale", 2, 1, 3))
	c := newCLI(t, g, "uiscale")
	c.must("deploy", dir)
	passingDynos(t, consul, "uiscale", 2, time.Minute)
	status := fmt.Sprintf("http://%s:%d/status", g.Options.Bind, g.Options.RouterPort+1)
	waitAppStatus(t, status, "uiscale", 30*time.Second, "two dynos of uiscale up", func(a router.AppStatus) bool { return a.Up == 2 })
	token := strings.TrimSpace(c.must("apps:token"))

	shots := filepath.Join(root, "e2e", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(shots, "nomad-ui-scale.png")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, "http://"+g.Options.NomadAddr(), "uiscale", "web", shot)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "NOMAD_TOKEN="+token)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the browser did not scale the app from the Nomad UI: %v\n%s", err, out)
	}
	var seen struct {
		Before, After, Min, Max             int
		ScaleStatus                         int `json:"scaleStatus"`
		AllocationsBefore, AllocationsAfter int
		Running                             int
	}
	if err := json.Unmarshal(out, &seen); err != nil {
		t.Fatalf("unreadable report from the browser: %v: %s", err, out)
	}
	if seen.Min != 1 || seen.Max != 3 || seen.Before != 2 || seen.After != 3 || seen.ScaleStatus != 200 {
		t.Errorf("the stepper showed %d in 1..3? (min %d, max %d) and went to %d, Nomad answered the scale with %d; want 2 in 1..3, then 3, answered 200",
			seen.Before, seen.Min, seen.Max, seen.After, seen.ScaleStatus)
	}
	if seen.AllocationsAfter != seen.AllocationsBefore+1 || seen.Running != 3 {
		t.Errorf("the task group page listed %d allocations, then %d with %d running; want one more, and 3 running", seen.AllocationsBefore, seen.AllocationsAfter, seen.Running)
	}

	// The new dyno is routed: the router counts three dynos up, and web.3 passes in Consul.
	waitAppStatus(t, status, "uiscale", time.Minute, "three dynos of uiscale up", func(a router.AppStatus) bool { return a.Up == 3 })
	if byDyno := passingDynos(t, consul, "uiscale", 3, time.Minute); byDyno["web.3"] == nil {
		t.Errorf("passing dynos after the scale: %v, want web.3 among them", deploy.SortedKeys(byDyno))
	}
	if out := c.must("ps"); !strings.Contains(out, "=== web (3), scaled from 2 to 3 from the Nomad UI at ") {
		t.Errorf("dyno ps after the scale from the UI:\n%s\nwant web's three dynos and the scale from the Nomad UI", out)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s missing or empty: %v", shot, err)
	}
}

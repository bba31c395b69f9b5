package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestNomadUIShowsTheApp deploys an app and opens the real Nomad web UI in Debian's
// headless Chromium: the app must appear as a job named after it, with its process
// type as a task group and its dynos as running allocations. It saves a screenshot in
// e2e/screenshots.
func TestNomadUIShowsTheApp(t *testing.T) {
	t.Parallel()
	testutil.E2E(t, "starts agents as root and drives Chromium with node and playwright-core", testutil.Root, testutil.Program("node"))
	root := harness.RepoRoot(t)
	script := filepath.Join(root, "e2e", "ui", "nomad-ui.mjs")
	if _, err := os.Stat(filepath.Join(root, "e2e", "ui", "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed (make test runs `npm ci` in e2e/ui): %v", err)
	}
	g := harness.Grid(t)
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t)
	writeSpec(t, dir, webSpec("uidemo", ""))
	newCLI(t, g, "uidemo").must("deploy", dir)
	passingDynos(t, consul, "uidemo", 2, time.Minute)

	shots := filepath.Join(root, "e2e", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(shots, "nomad-ui-job.png")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, "http://"+g.Options.NomadAddr(), "uidemo", "web", "2", shot)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "NOMAD_TOKEN="+harness.Tokens(t, g).NomadManagement)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the browser did not find the app in the Nomad UI: %v\n%s", err, out)
	}
	var seen struct {
		JobListed   bool   `json:"jobListed"`
		TaskGroup   string `json:"taskGroup"`
		Allocations int    `json:"allocations"`
		Running     int    `json:"running"`
		Meta        bool   `json:"meta"`
	}
	if err := json.Unmarshal(out, &seen); err != nil {
		t.Fatalf("unreadable report from the browser: %v: %s", err, out)
	}
	if !seen.JobListed || seen.TaskGroup != "web" || seen.Allocations != 2 || seen.Running != 2 || !seen.Meta {
		t.Errorf("the Nomad UI showed %+v; want the job listed, task group web, 2 running allocations and the app's meta", seen)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s missing or empty: %v", shot, err)
	}
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/cli"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// dynoCLI runs the dyno CLI in-process against a grid, like a user with NOMAD_ADDR set.
type dynoCLI struct {
	t    testing.TB
	g    *devgrid.Grid
	base []string
}

func newCLI(t testing.TB, g *devgrid.Grid, app string) *dynoCLI {
	return &dynoCLI{t: t, g: g, base: []string{
		"--nomad-addr", "http://" + g.Options.NomadAddr(),
		"--nomad-token", harness.Tokens(t, g).NomadManagement,
		"--slug-store", filepath.Join(g.Options.DataDir, "slug-store"),
		"--app", app,
	}}
}

// run runs `dyno cmd args...` and returns its exit code, stdout and stderr.
func (c *dynoCLI) run(cmd string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	all := append(strings.Fields(cmd), c.base...)
	all = append(all, args...)
	code := cli.Run(all, &out, &errOut)
	return code, out.String(), errOut.String()
}

// must runs a command that must succeed.
func (c *dynoCLI) must(cmd string, args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(cmd, args...)
	if code != 0 {
		c.t.Fatalf("dyno %s %s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// copyApp copies the example Thin app into a fresh directory named hello.
func copyApp(t testing.TB) string { return harness.CopyExample(t, "hello") }

func writeSpec(t testing.TB, dir, spec string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "dyno.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
}

// routedApp starts a grid with a router and deploys the example app there as app, with
// extra lines in its spec and two passing web dynos.
func routedApp(t *testing.T, app, extra string) (*devgrid.Grid, *consulapi.Client, *dynoCLI) {
	t.Helper()
	g := harness.Grid(t, harness.WithRouter(t))
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t)
	writeSpec(t, dir, webSpec(app, extra))
	c := newCLI(t, g, app)
	c.must("deploy", dir)
	passingDynos(t, consul, app, 2, time.Minute)
	return g, consul, c
}

// webSpec is the example app's spec as app: two shared 128 MB web dynos checked on
// /health, and the extra lines given.
func webSpec(app, extra string) string {
	return fmt.Sprintf(`app %q {
  procfile = "Procfile"
%s
  process "web" {
    count        = 2
    memory       = 128
    health_check = "/health"
    size         = "shared"
  }
}
`, app, extra)
}

// passingDynos waits until the app's web service has n passing instances, and returns
// them by their dyno meta.
func passingDynos(t *testing.T, consul *consulapi.Client, app string, n int, within time.Duration) map[string]*consulapi.ServiceEntry {
	t.Helper()
	var byDyno map[string]*consulapi.ServiceEntry
	testutil.WaitFor(t, within, fmt.Sprintf("%d passing dynos of %s-web", n, app), func() error {
		entries, _, err := consul.Health().Service(app+"-web", "dyno", true, nil)
		if err != nil {
			return err
		}
		byDyno = map[string]*consulapi.ServiceEntry{}
		var seen []string
		for _, e := range entries {
			byDyno[e.Service.Meta["dyno"]] = e
			seen = append(seen, fmt.Sprintf("%s@%s:%d", e.Service.Meta["dyno"], e.Service.Address, e.Service.Port))
		}
		if len(entries) != n || len(byDyno) != n {
			return fmt.Errorf("saw %v", seen)
		}
		return nil
	})
	return byDyno
}

func get(t *testing.T, e *consulapi.ServiceEntry, path string) string {
	t.Helper()
	url := fmt.Sprintf("http://%s:%d%s", e.Service.Address, e.Service.Port, path)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestAppLifecycle drives the CLI through an app's life on a real grid: deploy, ps,
// config, releases, rollback, scale, logs, run and destroy.
func TestAppLifecycle(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyApp(t)
	// The add-ons have tests of their own: this app runs without them.
	writeSpec(t, dir, `app "hello" {
  procfile = "Procfile"
  process "web" {
    count        = 2
    memory       = 256
    health_check = "/health"
    size         = "shared"
  }
  config {
    RACK_ENV = "production"
  }
}
`)
	c := newCLI(t, g, "hello")

	out := c.must("deploy", dir)
	if !strings.Contains(out, "hello v1 is released and healthy") {
		t.Fatalf("deploy said:\n%s", out)
	}
	dynos := passingDynos(t, consul, "hello", 2, time.Minute)
	for _, name := range []string{"web.1", "web.2"} {
		e, ok := dynos[name]
		if !ok {
			t.Fatalf("no passing dyno %s; have %v", name, dynos)
		}
		if e.Service.Meta["release"] != "v1" {
			t.Errorf("%s registered with release %q, want v1", name, e.Service.Meta["release"])
		}
		if body := get(t, e, "/"); !strings.Contains(body, "Hello from "+name) {
			t.Errorf("%s answered %q, want its own name", name, body)
		}
	}

	if out := c.must("ps"); !strings.Contains(out, "web.1: running") || !strings.Contains(out, "web.2: running") || !strings.Contains(out, "release v1") {
		t.Errorf("ps said:\n%s", out)
	}
	if out := c.must("apps"); !strings.Contains(out, "hello") || !strings.Contains(out, "v1") {
		t.Errorf("apps said:\n%s", out)
	}
	if out := c.must("plan", dir); !strings.Contains(out, "No changes") && !strings.Contains(out, "process web") {
		t.Errorf("plan of an unchanged app said:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.must("plan", dir); !strings.Contains(out, "hello: edited") || !strings.Contains(out, "process web: edited") {
		t.Errorf("plan of changed code said:\n%s", out)
	}
	if out := c.must("ps", "--json"); strings.Contains(out, "v2") {
		t.Errorf("plan changed the app:\n%s", out)
	}

	c.must("ps:restart", "web.2")
	testutil.WaitFor(t, time.Minute, "ps to show web.2 restarted once", func() error {
		if out := c.must("ps"); !strings.Contains(out, "web.2: running (restarted 1 times)") {
			return fmt.Errorf("ps said:\n%s", out)
		}
		return nil
	})
	passingDynos(t, consul, "hello", 2, time.Minute)

	c.must("config:set", "GREETING=hi there", "SECRET_TOKEN=s3cr3t")
	if out := c.must("config"); !strings.Contains(out, "GREETING:") || !strings.Contains(out, "hi there") || !strings.Contains(out, "RACK_ENV:") {
		t.Errorf("config said:\n%s", out)
	}
	job, _, err := appNomad(t, g, "hello").Jobs().Info("hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec := fmt.Sprintf("%+v", job); strings.Contains(spec, "s3cr3t") {
		t.Error("a config var's value stands in clear in the Nomad job spec")
	}
	dynos = passingDynos(t, consul, "hello", 2, time.Minute)
	if dynos["web.1"].Service.Meta["release"] != "v2" {
		t.Errorf("after config:set web.1 runs release %q, want v2", dynos["web.1"].Service.Meta["release"])
	}

	if out := c.must("releases"); !strings.Contains(out, "v2") || !strings.Contains(out, "Set GREETING, SECRET_TOKEN config vars") || !strings.Contains(out, "v1") {
		t.Errorf("releases said:\n%s", out)
	}
	c.must("rollback", "v1")
	if out := c.must("config", "--json"); strings.Contains(out, "GREETING") {
		t.Errorf("after rollback to v1 the config still has GREETING:\n%s", out)
	}
	if out := c.must("releases"); !strings.Contains(out, "Rollback to v1") {
		t.Errorf("releases after rollback said:\n%s", out)
	}

	c.must("ps:scale", "web=3")
	passingDynos(t, consul, "hello", 3, 2*time.Minute)
	c.must("ps:scale", "web=1")
	passingDynos(t, consul, "hello", 1, 2*time.Minute)

	if code, _, errOut := c.run("ps:scale", "nope=2"); code == 0 || !strings.Contains(errOut, `no process type "nope"`) {
		t.Errorf("scaling a missing process type: exit %d, %q", code, errOut)
	}

	if out := c.must("logs", "--dyno", "web.1"); !strings.Contains(out, "web.1: ") {
		t.Errorf("logs said:\n%s", out)
	}
	// The driver keeps the dynos' logs: the Nomad agent started no log collector.
	nomadAgent, err := g.Agent("nomad")
	if err != nil {
		t.Fatal(err)
	}
	if kids := childCommands(t, nomadAgent.PID); slices.ContainsFunc(kids, func(c string) bool { return strings.Contains(c, "logmon") }) {
		t.Errorf("the Nomad agent runs a log collector for dynos: its processes are %q", kids)
	}

	if code, out, errOut := c.run("run", "--", "echo one-off $DYNO in $(pwd); exit 7"); code != 7 || !regexp.MustCompile(`one-off run\.\d{4} in /app`).MatchString(out) {
		t.Errorf("run: exit %d, stdout %q, stderr %q; want exit 7 and the one-off's output", code, out, errOut)
	}

	// A release whose dynos cannot start fails fast, and the running release keeps
	// serving: its dyno is never stopped for the canary.
	before := passingDynos(t, consul, "hello", 1, time.Minute)["web.1"]
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: no-such-server --port $PORT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, errOut := c.run("deploy", dir)
	if code == 0 || !strings.Contains(errOut, "failed") || !strings.Contains(errOut, "the previous release keeps serving") {
		t.Errorf("a deploy of a broken release: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("a broken release was reported failed after %s", time.Since(start).Round(time.Millisecond))
	after := passingDynos(t, consul, "hello", 1, time.Minute)["web.1"]
	if after.Service.ID != before.Service.ID || after.Service.Meta["release"] != before.Service.Meta["release"] {
		t.Errorf("the serving dyno changed during a failed release: %s %s -> %s %s", before.Service.ID,
			before.Service.Meta["release"], after.Service.ID, after.Service.Meta["release"])
	}

	c.must("apps:destroy", "--confirm", "hello")
	if code, _, _ := c.run("ps"); code == 0 {
		t.Error("ps of a destroyed app succeeded")
	}
}

// childCommands are the command lines of pid's child processes.
func childCommands(t *testing.T, pid int) []string {
	t.Helper()
	var cmds []string
	for _, kid := range testutil.ReadProcesses().Children(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", kid))
		if err != nil {
			continue // it ended
		}
		cmds = append(cmds, strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " "))
	}
	return cmds
}

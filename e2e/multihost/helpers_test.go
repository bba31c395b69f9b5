package multihost

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/cli"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// dynoCLI runs the dyno CLI in-process against a grid, like a user with NOMAD_ADDR set:
// over TLS with the grid's CA, uploading slugs to the grid's slug store.
type dynoCLI struct {
	t    *testing.T
	base []string
}

func newCLI(t *testing.T, g *Grid, app string) *dynoCLI {
	t.Setenv("NOMAD_CACERT", g.CAFile())
	t.Setenv("DYNO_SLUG_STORE_USER", storeDeployer)
	t.Setenv("DYNO_SLUG_STORE_PASSWORD", g.StorePassword(storeDeployer))
	t.Setenv("DYNO_SLUG_STORE_CACERT", g.CAFile())
	return &dynoCLI{t: t, base: []string{
		"--nomad-addr", g.NomadURL(),
		"--nomad-token", g.Tokens().NomadManagement,
		"--slug-store", g.StoreURL(),
		"--app", app,
	}}
}

// must runs `dyno cmd args...`, which must succeed, and returns its stdout.
func (c *dynoCLI) must(cmd string, args ...string) string {
	c.t.Helper()
	var out, errOut bytes.Buffer
	all := append(strings.Fields(cmd), c.base...)
	all = append(all, args...)
	if code := cli.Run(all, &out, &errOut); code != 0 {
		c.t.Fatalf("dyno %s %s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd, strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

// deployThin deploys the example Thin app as app with count shared web dynos.
func deployThin(t *testing.T, g *Grid, app string, count int) {
	t.Helper()
	dst := harness.CopyExample(t, app)
	spec := fmt.Sprintf(`app %q {
  procfile = "Procfile"
  process "web" {
    count        = %d
    memory       = 256
    health_check = "/health"
    size         = "shared"
  }
}
`, app, count)
	if err := os.WriteFile(filepath.Join(dst, "dyno.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := newCLI(t, g, app).must("deploy", dst)
	if !strings.Contains(out, "is released and healthy") {
		t.Fatalf("deploy said:\n%s", out)
	}
}

// passing returns the app's passing web instances.
func passing(consul *consulapi.Client, app string) ([]*consulapi.ServiceEntry, error) {
	entries, _, err := consul.Health().Service(app+"-web", "dyno", true, nil)
	return entries, err
}

// waitPassing waits until cond holds for the app's passing web instances and returns them.
func waitPassing(t *testing.T, consul *consulapi.Client, app string, within time.Duration, what string, cond func([]*consulapi.ServiceEntry) bool) []*consulapi.ServiceEntry {
	t.Helper()
	var entries []*consulapi.ServiceEntry
	testutil.WaitFor(t, within, app+"-web: "+what, func() error {
		var err error
		if entries, err = passing(consul, app); err != nil {
			return err
		}
		if !cond(entries) {
			return fmt.Errorf("passing: %s", describe(entries))
		}
		return nil
	})
	return entries
}

func describe(entries []*consulapi.ServiceEntry) string {
	var s []string
	for _, e := range entries {
		s = append(s, fmt.Sprintf("%s@%s:%d", e.Service.Meta["dyno"], e.Service.Address, e.Service.Port))
	}
	return strings.Join(s, " ")
}

// runningAllocs lists the app's running web allocations.
func runningAllocs(t *testing.T, g *Grid, app string) []*nomadapi.AllocationListStub {
	t.Helper()
	allocs, _, err := g.NomadClient().Jobs().Allocations(app, false, &nomadapi.QueryOptions{Namespace: tenancy.Namespace(app)})
	if err != nil {
		t.Fatal(err)
	}
	var running []*nomadapi.AllocationListStub
	for _, a := range allocs {
		if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.DesiredStatus == nomadapi.AllocDesiredStatusRun && a.TaskGroup == "web" {
			running = append(running, a)
		}
	}
	return running
}

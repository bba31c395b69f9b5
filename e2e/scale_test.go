package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/cli"
	"github.com/dynogrid/dynogrid/internal/meter"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestScaleOutsideDyno scales an app through Nomad's job scale API with the app's own
// deploy token, as the Nomad UI's count stepper does: allowed on its own app, refused on
// another team's, and kept within the spec's min and max. The scale is then a
// first-class event: the meter records the new dyno's run, `dyno ps` shows the dyno and
// the scale, `dyno releases` shows no release for it, and the next config change,
// rollback and deploy keep the scaled formation.
func TestScaleOutsideDyno(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, app := range []string{"alpha", "beta"} {
		dirs[app] = copyApp(t)
		writeSpec(t, dirs[app], scaledSpec(app, 1, 1, 3))
		newCLI(t, g, app).must("deploy", dirs[app])
		passingDynos(t, consul, app, 1, time.Minute)
	}
	alpha := newCLI(t, g, "alpha")
	token := strings.TrimSpace(alpha.must("apps:token"))
	n, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	n.SetSecretID(token)
	scale := func(app string, count int) error {
		_, _, err := n.Jobs().Scale(app, "web", &count, fmt.Sprintf("Manually scaled to %d from the Nomad UI", count), false,
			map[string]any{"Source": "nomad-ui"}, &nomadapi.WriteOptions{Namespace: app})
		return err
	}

	// Alpha's token scales alpha, within its min and max only, and never beta.
	if err := scale("beta", 2); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("alpha's token scaled beta: %v, want 403", err)
	}
	if err := scale("alpha", 4); err == nil || !strings.Contains(err.Error(), "greater than scaling policy maximum") {
		t.Errorf("scaling alpha to 4 over its max of 3: %v, want Nomad's refusal", err)
	}
	if code, _, errOut := alpha.run("ps:scale", "web=4"); code != 1 || !strings.Contains(errOut, "web=4: process type web of alpha runs from 1 to 3 dynos") {
		t.Errorf("dyno ps:scale web=4: exit %d, %q; want exit 1 naming the range 1 to 3", code, errOut)
	}
	before := runningAllocs(t, appNomad(t, g, "alpha"), "alpha")
	if err := scale("alpha", 2); err != nil {
		t.Fatalf("alpha's token could not scale alpha: %v", err)
	}
	passingDynos(t, consul, "alpha", 2, time.Minute)
	// The client reports the allocation running to the servers in a batch, which may
	// come after Consul has its check passing.
	var added string
	testutil.WaitFor(t, 30*time.Second, "a new allocation of alpha running after the scale", func() error {
		for id := range runningAllocs(t, appNomad(t, g, "alpha"), "alpha") {
			if !before[id] {
				added = id
				return nil
			}
		}
		return fmt.Errorf("none but %v", before)
	})
	if got := runningAllocs(t, appNomad(t, g, "beta"), "beta"); len(got) != 1 {
		t.Errorf("beta runs %d dynos, want its 1", len(got))
	}

	// The meter bills the dyno the scale started.
	store := meter.NewConsulStore(consul, "")
	testutil.WaitFor(t, 30*time.Second, "the meter to record the new dyno's run", func() error {
		runs, err := store.Runs(context.Background(), "alpha")
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.Alloc == added && r.Process == "web" && r.Open() {
				return nil
			}
		}
		return fmt.Errorf("%d runs of alpha, none open for allocation %s", len(runs), added)
	})

	// dyno ps shows both dynos and the scale; dyno releases shows v1 alone.
	if out := alpha.must("ps"); !strings.Contains(out, "=== web (2), scaled from 1 to 2 from the Nomad UI at ") ||
		!strings.Contains(out, "web.2: ") || !strings.Contains(out, "release v1") {
		t.Errorf("dyno ps after the scale:\n%s\nwant web.1 and web.2 of release v1 and the scale from the Nomad UI", out)
	}
	wantReleases(t, alpha, "v1")

	// A config change, a rollback and a deploy each keep the scaled formation.
	alpha.must("config:set", "GREETING=hi")
	alpha.must("rollback", "v1")
	alpha.must("deploy", dirs["alpha"])
	wantReleases(t, alpha, "v4", "v3", "v2", "v1")
	job, _, err := appNomad(t, g, "alpha").Jobs().Info("alpha", nil)
	if err != nil {
		t.Fatal(err)
	}
	web := job.LookupTaskGroup("web")
	if *web.Count != 2 || web.Scaling == nil || *web.Scaling.Min != 1 || *web.Scaling.Max != 3 || *web.Scaling.Enabled {
		t.Errorf("after a config change, a rollback and a deploy, web has count %d and scaling %+v; want 2 dynos kept from 1 to 3, autoscaling off", *web.Count, web.Scaling)
	}
	passingDynos(t, consul, "alpha", 2, time.Minute)

	// Scales and releases are versions of the job; the grid keeps 100 of them.
	mgmt, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	self, err := mgmt.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	server, _ := self.Config["Server"].(map[string]any)
	if v, _ := server["JobTrackedVersions"].(float64); v != 100 {
		t.Errorf("the grid's Nomad keeps %v versions of a job, want 100", server["JobTrackedVersions"])
	}
}

// runningAllocs returns the IDs of the app's running allocations.
func runningAllocs(t testing.TB, n *nomadapi.Client, app string) map[string]bool {
	t.Helper()
	allocs, _, err := n.Jobs().Allocations(app, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, a := range allocs {
		if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.DesiredStatus == nomadapi.AllocDesiredStatusRun {
			ids[a.ID] = true
		}
	}
	return ids
}

// wantReleases checks that `dyno releases` lists exactly the releases given, newest
// first, the first one current.
func wantReleases(t *testing.T, c *dynoCLI, want ...string) {
	t.Helper()
	var got []cli.ReleaseInfo
	out := c.must("releases", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("dyno releases --json: %v: %s", err, out)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Version)
	}
	if len(got) == 0 || strings.Join(names, " ") != strings.Join(want, " ") || !got[0].Current {
		t.Errorf("dyno releases = %s (the first current: %t), want %s", strings.Join(names, " "), len(got) > 0 && got[0].Current, strings.Join(want, " "))
	}
}

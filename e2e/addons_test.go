package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/cli"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/plugins/memcached"
)

// TestAddonsInARealDyno deploys the example app with its spec's add-ons on a grid with
// PostgreSQL: the deploy provisions postgres and memcached and makes one release, v1,
// whose every dyno (the first included) has their variables; its release phase creates
// the visit counter's table, and the app, in real dynos, counts visits in the database
// and caches a fragment in memcached through the injected variables. Detaching
// memcached removes its variables in a new release.
func TestAddonsInARealDyno(t *testing.T) {
	t.Parallel()
	pgPort := harness.FreePorts(t, 1)
	g := harness.Grid(t, func(o *devgrid.Options) {
		o.PostgresPort = pgPort
		o.ExtraNomadConfig += memcached.NomadClientConfig("")
	})
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, g, "hello")
	addonFlags := []string{"--addon-dir", g.Options.BinDir, "--addon-config", g.Options.AddonConfig()}
	withAddons := func(args ...string) []string { return append(append([]string{}, addonFlags...), args...) }
	dir := copyApp(t)

	// An add-on that does not exist: the deploy checks every add-on of the spec before
	// it provisions the first, so no release is made and nothing is provisioned.
	spec, err := os.ReadFile(filepath.Join(dir, "dyno.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	writeSpec(t, dir, strings.Replace(string(spec), `addon "memcached" {}`, `addon "nosuch" {}`, 1))
	code, stdout, stderr := c.run("deploy", withAddons(dir)...)
	if code == 0 || !strings.Contains(stderr, `add-on "nosuch"`) || !strings.Contains(stderr, "no release was made, and no add-on was provisioned") {
		t.Errorf("a deploy with an add-on that does not exist: exit %d\nstdout:\n%s\nstderr:\n%s\nwant a failure naming it, no release, nothing provisioned", code, stdout, stderr)
	}
	if _, _, err := appNomad(t, g, "hello").Jobs().Info("hello", nil); err == nil {
		t.Error("a deploy whose add-on failed registered the app's job")
	}
	if out := c.must("addons", withAddons()...); !strings.Contains(out, "hello has no add-ons") {
		t.Errorf("after the failed deploy the add-ons are:\n%s\nwant none", out)
	}
	writeSpec(t, dir, string(spec))

	out := c.must("deploy", withAddons(dir)...)
	for _, want := range []string{"Provisioning add-on postgres", "Provisioning add-on memcached", "migrate: table visits is ready", "hello v1 is released and healthy"} {
		if !strings.Contains(out, want) {
			t.Fatalf("deploy did not say %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "Provisioning add-on memcached"), strings.Index(out, "Releasing hello v1"); j < i {
		t.Errorf("the release was made before the add-ons were provisioned:\n%s", out)
	}
	var releases []cli.ReleaseInfo
	if err := json.Unmarshal([]byte(c.must("releases", "--json")), &releases); err != nil {
		t.Fatal(err)
	}
	if len(releases) != 1 || releases[0].Version != "v1" || !strings.Contains(releases[0].Description, "attach postgres, memcached") {
		t.Errorf("a deploy with two add-ons made the releases %+v, want v1 alone, saying it attached them", releases)
	}
	if out := c.must("addons", withAddons()...); strings.Count(out, " attached ") != 2 {
		t.Errorf("after the deploy the add-ons are:\n%s\nwant both attached", out)
	}
	env := c.must("config", "--json")
	for _, k := range []string{"DATABASE_URL", "MEMCACHED_SERVERS", "MEMCACHED_USERNAME", "MEMCACHED_PASSWORD"} {
		if !strings.Contains(env, `"`+k+`"`) {
			t.Errorf("config lacks %s:\n%s", k, env)
		}
	}
	job, _, err := appNomad(t, g, "hello").Jobs().Info("hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec := fmt.Sprintf("%+v", job); strings.Contains(spec, "postgres://") || strings.Contains(spec, "MEMCACHED_PASSWORD=") {
		t.Error("add-on credentials stand in clear in the Nomad job spec")
	}

	dynos := passingDynos(t, consul, "hello", 2, time.Minute)
	// Every dyno the app ever had is of its one job version, whose environment has
	// DATABASE_URL: the first dyno booted with it.
	allocs, _, err := appNomad(t, g, "hello").Jobs().Allocations("hello", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range allocs {
		if a.JobVersion != 0 {
			t.Errorf("dyno %s runs job version %d: the deploy made more than one release", a.Name, a.JobVersion)
		}
	}
	if v1, err := deploy.ReadEnv(context.Background(), appNomad(t, g, "hello"), job.Meta[deploy.MetaEnv]); err != nil || v1["DATABASE_URL"] == "" || v1["MEMCACHED_SERVERS"] == "" {
		t.Errorf("v1's environment lacks the add-ons' variables (%v): %v", err, deploy.SortedKeys(v1))
	}
	web1 := dynos["web.1"]
	first := get(t, web1, "/")
	second := get(t, web1, "/")
	visits := regexp.MustCompile(`visits: +(\d+)`)
	a, b := visits.FindStringSubmatch(first), visits.FindStringSubmatch(second)
	if a == nil || b == nil || a[1] == b[1] {
		t.Errorf("the dyno did not count visits in Postgres:\n%s\n%s", first, second)
	}
	if !strings.Contains(second, "(from memcached)") {
		t.Errorf("the dyno did not read its fragment back from memcached:\n%s", second)
	}

	if out := c.must("addons", withAddons()...); !strings.Contains(out, "postgres") || !strings.Contains(out, "memcached") {
		t.Errorf("addons said:\n%s", out)
	}
	c.must("addons:destroy", withAddons("memcached")...)
	if env := c.must("config", "--json"); strings.Contains(env, "MEMCACHED_SERVERS") || !strings.Contains(env, "DATABASE_URL") {
		t.Errorf("after addons:destroy memcached the config is:\n%s", env)
	}
	dynos = passingDynos(t, consul, "hello", 2, time.Minute)
	if page := get(t, dynos["web.1"], "/"); !strings.Contains(page, "no cache") {
		t.Errorf("the dyno still has a cache after the add-on was destroyed:\n%s", page)
	}

	c.must("apps:destroy", withAddons("--confirm", "hello")...)
	vars, _, err := appNomad(t, g, "hello").Variables().PrefixList("nomad/jobs/hello/", nil)
	if err != nil || len(vars) != 0 {
		t.Errorf("after apps:destroy variables remain under nomad/jobs/hello/: %d (%v)", len(vars), err)
	}
}

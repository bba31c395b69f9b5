package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/plugins/memcached"
)

// TestAddonsInARealDyno deploys the example app with its spec's add-ons on a grid with
// PostgreSQL: the deploy attaches postgres and memcached, and the app, in real dynos,
// counts visits in the database and caches a fragment in memcached through the injected
// variables. Detaching memcached removes its variables in a new release.
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

	out := c.must("deploy", withAddons(dir)...)
	for _, want := range []string{"Attaching add-on postgres", "Attaching add-on memcached", "hello v3 is released and healthy"} {
		if !strings.Contains(out, want) {
			t.Fatalf("deploy did not say %q:\n%s", want, out)
		}
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

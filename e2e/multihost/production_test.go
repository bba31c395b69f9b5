package multihost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/meter"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
)

// TestProductionGrid runs a grid as docs/production.md builds one, from the files of
// examples/cluster: 3 server hosts, 3 client hosts, an edge host running the router job
// and a laptop host with only the CLI, which works over TLS with the app's deploy token.
// From the laptop it deploys, scales and rolls back an app; it kills the leader's host
// (the app keeps serving, a deploy succeeds once a new leader is elected); it restarts
// every Nomad client in turn as a rolling upgrade does, under load: no request fails.
func TestProductionGrid(t *testing.T) {
	const app = "shop"
	g := Start(t, Options{Servers: 3, Hosts: 3, RouterJob: true, Laptop: true, Postgres: true, Memcached: true})
	ctx := context.Background()
	token, err := tenancy.AppToken(ctx, g.NomadClient(), app, "deploy "+app)
	if err != nil {
		t.Fatal(err)
	}
	meterCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	holder, err := g.RunMeterJob(meterCtx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the meter job runs; the ledger's lock is held by %q", holder)
	laptop := func(server *Host, args ...string) string {
		t.Helper()
		env := []string{
			"NOMAD_ADDR=https://" + server.Addr + ":4646", "NOMAD_TOKEN=" + token, "NOMAD_CACERT=" + g.CAFile(),
			"CONSUL_HTTP_ADDR=https://" + server.Addr + ":8501", "CONSUL_CACERT=" + g.CAFile(),
			"CONSUL_HTTP_TOKEN=" + g.Tokens().Consul[policies.ConsulRouter],
			"DYNO_SLUG_STORE=" + g.StoreURL(), "DYNO_SLUG_STORE_USER=" + storeDeployer,
			"DYNO_SLUG_STORE_PASSWORD=" + g.StorePassword(storeDeployer), "DYNO_SLUG_STORE_CACERT=" + g.CAFile(),
			"DYNO_ADDON_CONFIG=" + g.AddonConfig(), "TMPDIR=" + g.Laptop.Dir,
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		out, err := g.RunOnLaptop(cctx, env, g.Laptop.Dir, "dyno", append(args, "--app", app)...)
		if err != nil {
			t.Fatalf("laptop: dyno %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// Which grid, who am I.
	status := laptop(g.Server, "status")
	for _, want := range []string{"Nomad   https://" + g.Server.Addr + ":4646", "region global", "Consul  https://",
		`"deploy shop" (client)`, "app-shop-deploy", "namespaces " + tenancy.Namespace(app)} {
		if !strings.Contains(status, want) {
			t.Errorf("dyno status lacks %q:\n%s", want, status)
		}
	}
	t.Logf("dyno status on the laptop:\n%s", status)

	// Deploy from the laptop: the slug goes to the store, the job names it there.
	dir := appDir(t, app)
	if out := laptop(g.Server, "deploy", dir); !strings.Contains(out, "is released and healthy") {
		t.Fatalf("deploy said:\n%s", out)
	}
	assertSlugInStore(t, g, app)
	waitPassing(t, g.ConsulClient(), app, 2*time.Minute, "2 passing dynos", func(e []*consulapi.ServiceEntry) bool { return len(e) == 2 })
	// The postgres add-on: the dynos count visits in its database, on another host.
	for i := 1; i <= 2; i++ {
		if body := getApp(t, g, app, "/"); !strings.Contains(body, fmt.Sprintf("visits:   %d\n", i)) {
			t.Fatalf("visit %d: the app answered:\n%s", i, body)
		}
	}
	// The memcached add-on, on a client's add-on network: a fragment one dyno rendered
	// is served from memcached by the next requests, through the router.
	assertCached(t, g, app)
	load := startLoad(t, g, app)

	laptop(g.Server, "ps:scale", "web=3")
	waitPassing(t, g.ConsulClient(), app, 2*time.Minute, "3 passing dynos", func(e []*consulapi.ServiceEntry) bool { return len(e) == 3 })
	laptop(g.Server, "config:set", "GREETING=hi")
	// v1 the deploy with its add-on, v2 the config var; back to v1.
	laptop(g.Server, "rollback")
	if out := laptop(g.Server, "releases"); !strings.Contains(out, "* v3") || !strings.Contains(out, "Rollback to v1") {
		t.Errorf("after the rollback, releases are:\n%s", out)
	}
	waitPassing(t, g.ConsulClient(), app, 2*time.Minute, "3 passing dynos of v3", func(e []*consulapi.ServiceEntry) bool {
		if len(e) != 3 {
			return false
		}
		for _, s := range e {
			if s.Service.Meta["release"] != "v3" {
				return false
			}
		}
		return true
	})
	if body := getApp(t, g, app, "/"); strings.Contains(body, "no database") || strings.Contains(body, "database error") {
		t.Errorf("after the rollback to v1 the app lost its database:\n%s", body)
	}
	serveMore(t, load)

	// Kill the host that leads both Nomad and Consul (Consul's leadership is moved to
	// the Nomad leader's host first).
	nomadLeader, _, err := g.Leaders(g.Server)
	if err != nil {
		t.Fatal(err)
	}
	lost := g.ServerByAddr(nomadLeader)
	if lost == nil {
		t.Fatalf("the Nomad leader %s is no server host", nomadLeader)
	}
	if err := g.MoveConsulLeader(lost); err != nil {
		t.Fatal(err)
	}
	var consulLeader string
	testutil.WaitFor(t, 30*time.Second, "Consul's leadership on "+lost.Name, func() error {
		var err error
		if nomadLeader, consulLeader, err = g.Leaders(g.Server); err != nil {
			return err
		}
		if g.ServerByAddr(consulLeader) != lost || g.ServerByAddr(nomadLeader) != lost {
			return fmt.Errorf("Nomad leader %s, Consul leader %s", nomadLeader, consulLeader)
		}
		return nil
	})
	serveMore(t, load)
	var survivor *Host
	for _, s := range g.Servers {
		if s != lost {
			survivor = s
			break
		}
	}
	faultAt := time.Now()
	if _, err := g.KillHost(lost); err != nil {
		t.Fatal(err)
	}
	g.UseServer(survivor)
	var newNomad, newConsul string
	nomadBack := waitWithin(t, faultAt, 2*time.Minute, "a new Nomad and Consul leader", func() bool {
		newNomad, newConsul, err = g.Leaders(survivor)
		return err == nil && newNomad != "" && newConsul != "" && g.ServerByAddr(newNomad) != lost && g.ServerByAddr(newConsul) != lost
	})
	if err := os.WriteFile(filepath.Join(dir, "public.txt"), []byte("after the leader's loss\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deployAt := time.Now()
	if out := laptop(survivor, "deploy", dir); !strings.Contains(out, "is released and healthy") {
		t.Fatalf("deploy after the leader's loss said:\n%s", out)
	}
	deployTook := time.Since(deployAt)
	serveMore(t, load)
	leaderLoad := checkFailures(t, load.Stop(), faultAt, 0)
	t.Logf("leader host %s lost (Nomad leader %s, Consul leader %s): new leaders Nomad %s, Consul %s after %s; "+
		"the next deploy took %s; load: %s", lost.Name, nomadLeader, consulLeader, newNomad, newConsul, ms(nomadBack), ms(deployTook), leaderLoad)

	// A rolling upgrade: every Nomad client stopped as systemd stops nomad.service
	// (its KillSignal to the agent alone) and started again, one at a time, under load.
	// The dynos keep running throughout.
	entries := waitPassing(t, g.ConsulClient(), app, 2*time.Minute, "3 passing dynos of v4", func(e []*consulapi.ServiceEntry) bool {
		n := 0
		for _, s := range e {
			if s.Service.Meta["release"] == "v4" {
				n++
			}
		}
		return n == 3 && len(e) == 3
	})
	before := allocRestarts(t, g, app)
	load = startLoad(t, g, app)
	rollAt := time.Now()
	var took []string
	for _, h := range g.Hosts {
		var onHost []string
		for _, a := range runningAllocs(t, g, app) {
			if a.NodeName == h.Name {
				onHost = append(onHost, a.ID)
			}
		}
		at := time.Now()
		if err := g.StopAgent(h, "nomad", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := g.StartNomad(h); err != nil {
			t.Fatal(err)
		}
		// The restarted client has recovered its dynos once it serves their stats.
		back := waitWithin(t, at, time.Minute, h.Name+"'s dynos recovered by its restarted client", func() bool {
			for _, id := range onHost {
				if !clientStats(g, h, id) {
					return false
				}
			}
			return true
		})
		waitNode(t, g, h, at, "ready", func(n *nomadapi.Node) bool { return n.Status == nomadapi.NodeStatusReady })
		took = append(took, fmt.Sprintf("%s: %d dynos recovered after %s", h.Name, len(onHost), ms(back)))
		serveMore(t, load)
	}
	rollLoad := checkFailures(t, load.Stop(), rollAt, 0)
	after := allocRestarts(t, g, app)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("dynos (allocation: restarts) before the rolling restart %v, after %v: a dyno was restarted or replaced", before, after)
	}
	t.Logf("rolling restart of %d clients (%s) under load, %d dynos: %s", len(g.Hosts), strings.Join(took, ", "), len(entries), rollLoad)

	// Backups, with the commands of docs/production.md, from the laptop over HTTPS.
	saved := backedUpState(t, g, app)
	for _, c := range []struct {
		bin  string
		env  []string
		args []string
	}{
		{"nomad", []string{"NOMAD_ADDR=https://" + survivor.Addr + ":4646", "NOMAD_CACERT=" + g.CAFile(),
			"NOMAD_TOKEN=" + g.Tokens().NomadManagement}, []string{"operator", "snapshot", "save", "nomad.snap"}},
		{"consul", []string{"CONSUL_HTTP_ADDR=https://" + survivor.Addr + ":8501", "CONSUL_CACERT=" + g.CAFile(),
			"CONSUL_HTTP_TOKEN=" + g.Tokens().ConsulManagement}, []string{"snapshot", "save", "consul.snap"}},
	} {
		// Right after a server's loss a snapshot is refused until Raft has applied the
		// change of its configuration: an operator tries again.
		testutil.WaitFor(t, time.Minute, c.bin+" snapshot", func() error {
			out, err := g.RunOnLaptop(ctx, c.env, g.Laptop.Dir, c.bin, c.args...)
			if err != nil {
				return fmt.Errorf("laptop: %s %s: %w\n%s", c.bin, strings.Join(c.args, " "), err, out)
			}
			return nil
		})
		st, err := os.Stat(filepath.Join(g.Laptop.Dir, c.args[len(c.args)-1]))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s %s wrote no snapshot: %v", c.bin, strings.Join(c.args, " "), err)
			continue
		}
		t.Logf("%s %s: %d bytes", c.bin, strings.Join(c.args, " "), st.Size())
	}

	// Restore, with the commands of docs/production.md, after losing what the snapshots
	// hold: the app's job and its versions, its Variables, the ledger.
	nc, cc := g.NomadClient(), g.ConsulClient()
	ns := &nomadapi.WriteOptions{Namespace: tenancy.Namespace(app)}
	if _, _, err := nc.Jobs().Deregister(app, true, ns); err != nil {
		t.Fatal(err)
	}
	for path := range saved.vars {
		if _, err := nc.Variables().Delete(path, ns); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cc.KV().DeleteTree(meter.DefaultPrefix+"/", nil); err != nil {
		t.Fatal(err)
	}
	restoreAt := time.Now()
	for _, c := range []struct {
		bin  string
		env  []string
		args []string
	}{
		{"nomad", []string{"NOMAD_ADDR=https://" + survivor.Addr + ":4646", "NOMAD_CACERT=" + g.CAFile(),
			"NOMAD_TOKEN=" + g.Tokens().NomadManagement}, []string{"operator", "snapshot", "restore", "nomad.snap"}},
		{"consul", []string{"CONSUL_HTTP_ADDR=https://" + survivor.Addr + ":8501", "CONSUL_CACERT=" + g.CAFile(),
			"CONSUL_HTTP_TOKEN=" + g.Tokens().ConsulManagement}, []string{"snapshot", "restore", "consul.snap"}},
	} {
		if out, err := g.RunOnLaptop(ctx, c.env, g.Laptop.Dir, c.bin, c.args...); err != nil {
			t.Fatalf("laptop: %s %s: %v\n%s", c.bin, strings.Join(c.args, " "), err, out)
		}
	}
	restored := backedUpState(t, g, app)
	if fmt.Sprint(restored.versions) != fmt.Sprint(saved.versions) {
		t.Errorf("job versions before the loss %v, after the restore %v", saved.versions, restored.versions)
	}
	if fmt.Sprint(restored.vars) != fmt.Sprint(saved.vars) {
		t.Errorf("the app's Variables before the loss %v, after the restore %v", saved.vars, restored.vars)
	}
	// A closed run is final: the meter never writes it again, so the restore gives back
	// the very record, dates and price included.
	closed := 0
	for k, v := range saved.ledger {
		got, ok := restored.ledger[k]
		if !ok {
			t.Errorf("ledger key %s is missing after the restore", k)
			continue
		}
		var rec meter.Record
		if !strings.Contains(k, "/runs/") || json.Unmarshal([]byte(v), &rec) != nil || rec.Open() {
			continue
		}
		closed++
		if got != v {
			t.Errorf("ledger record %s was %s before the loss, %s after the restore", k, v, got)
		}
	}
	if closed == 0 {
		t.Errorf("the ledger saved had no closed run to compare: %v", saved.ledger)
	}
	if out := laptop(survivor, "releases"); !strings.Contains(out, "* v4") {
		t.Errorf("after the restore, releases are:\n%s", out)
	}
	t.Logf("restored from both snapshots in %s: %d job versions, %d Variables, %d ledger keys (%d closed runs, the same values)",
		ms(time.Since(restoreAt)), len(restored.versions), len(restored.vars), len(restored.ledger), closed)
}

// state is what the snapshots hold of an app and the grid: its job's versions (number:
// release), its Variables (path: items) and the ledger's keys (key: value).
type state struct {
	versions []string
	vars     map[string]string
	ledger   map[string]string
}

// backedUpState reads the state of app and the ledger that the snapshots hold.
func backedUpState(t *testing.T, g *Grid, app string) state {
	t.Helper()
	nc, q := g.NomadClient(), &nomadapi.QueryOptions{Namespace: tenancy.Namespace(app)}
	st := state{vars: map[string]string{}, ledger: map[string]string{}}
	versions, _, _, err := nc.Jobs().Versions(app, false, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range versions {
		st.versions = append(st.versions, fmt.Sprintf("%d:%s", *j.Version, j.Meta[deploy.MetaRelease]))
	}
	metas, _, err := nc.Variables().PrefixList("", q)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		items, _, err := nc.Variables().GetVariableItems(m.Path, q)
		if err != nil {
			t.Fatal(err)
		}
		st.vars[m.Path] = fmt.Sprint(items)
	}
	pairs, _, err := g.ConsulClient().KV().List(meter.DefaultPrefix+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		st.ledger[p.Key] = string(p.Value)
	}
	if len(st.versions) == 0 || len(st.vars) == 0 || len(st.ledger) == 0 {
		t.Fatalf("nothing to back up: %d job versions, %d Variables, %d ledger keys", len(st.versions), len(st.vars), len(st.ledger))
	}
	return st
}

// assertCached GETs app's page until one shows its fragment from memcached: the dynos
// reach the memcached add-on and share what it caches.
func assertCached(t *testing.T, g *Grid, app string) {
	t.Helper()
	var body string
	for i := 0; i < 5; i++ {
		body = getApp(t, g, app, "/")
		if strings.Contains(body, "(from memcached)") {
			return
		}
		if strings.Contains(body, "cache error") || strings.Contains(body, "no cache") {
			break
		}
	}
	t.Fatalf("the app serves no fragment from memcached; its page:\n%s", body)
}

// getApp GETs path of app through the grid's router and returns the body of a 200.
func getApp(t *testing.T, g *Grid, app, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+g.RouterAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = app + ".localhost"
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s of %s: %s\n%s", path, app, resp.Status, b)
	}
	return string(b)
}

// appDir is the example Thin app as app, with 2 web dynos scalable to 3, its release
// phase (the visit counter's migration) and its postgres and memcached add-ons.
func appDir(t *testing.T, app string) string {
	t.Helper()
	dst := harness.CopyExample(t, app)
	spec := fmt.Sprintf(`app %q {
  procfile = "Procfile"
  process "web" {
    count        = 2
    min          = 1
    max          = 3
    memory       = 256
    health_check = "/health"
    size         = "shared"
  }
  process "release" {
    command = "ruby db/migrate.rb"
    memory  = 128
    size    = "shared"
  }
  addon "postgres" {}
  addon "memcached" {}
}
`, app)
	if err := os.WriteFile(filepath.Join(dst, "dyno.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// assertSlugInStore checks that app's job names its slug in the grid's store by its
// sha256, that the store holds it, and that the job carries no store credential.
func assertSlugInStore(t *testing.T, g *Grid, app string) {
	t.Helper()
	job, _, err := g.NomadClient().Jobs().Info(app, &nomadapi.QueryOptions{Namespace: tenancy.Namespace(app)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := job.TaskGroups[0].Tasks[0].Config
	src, _ := cfg["slug"].(string)
	sum, _ := cfg["slug_sha256"].(string)
	if want := g.StoreURL() + sum + ".tar.gz"; sum == "" || src != want {
		t.Errorf("the job's slug is %q, want %q", src, want)
	}
	if _, err := os.Stat(filepath.Join(g.Store.Dir, "www", "slugs", sum+".tar.gz")); err != nil {
		t.Errorf("the store does not hold the slug: %v", err)
	}
	// The store: the reader may GET but not PUT, nobody gets anything but a slug's name.
	c := g.HTTPSClient()
	for _, tc := range []struct {
		method, user, path string
		want               int
	}{
		{http.MethodGet, storeReader, sum + ".tar.gz", http.StatusOK},
		{http.MethodGet, "", sum + ".tar.gz", http.StatusUnauthorized},
		{http.MethodPut, storeReader, strings.Repeat("0", 64) + ".tar.gz", http.StatusUnauthorized},
		{http.MethodGet, storeReader, "../htpasswd", http.StatusNotFound},
		{http.MethodPut, storeDeployer, "evil.sh", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, g.StoreURL()+tc.path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		if tc.user != "" {
			req.SetBasicAuth(tc.user, g.StorePassword(tc.user))
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("slug store: %s %s as %q answered %s, want %d", tc.method, tc.path, tc.user, resp.Status, tc.want)
		}
	}
	b, _ := json.Marshal(job)
	for _, who := range []string{storeReader, storeDeployer} {
		if strings.Contains(string(b), g.StorePassword(who)) {
			t.Errorf("the job carries the store password of %s", who)
		}
	}
}

// allocRestarts maps each running web allocation of app to its task's restarts.
func allocRestarts(t *testing.T, g *Grid, app string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, a := range runningAllocs(t, g, app) {
		n, _ := restarts(t, g, a.ID)
		out[a.ID[:8]] = n
	}
	return out
}

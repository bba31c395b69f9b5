package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
	"github.com/dynogrid/dynogrid/plugins/testserver"
)

var (
	server    *testserver.Postgres
	pluginDir string
)

// TestMain starts one PostgreSQL server for the package and builds the plugin, for the
// tests of the agent tier (see internal/testutil); every test uses apps of its own, so
// they run in parallel.
func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if on, err := testutil.E2EEnabled(); !on || err != nil {
		return m.Run(), nil // requireServer skips, or fails, the tests that need it
	}
	ctx, cancel := context.WithTimeout(context.Background(), testserver.StartTimeout)
	defer cancel()
	var err error
	pluginDir, err = os.MkdirTemp("", "dyno-addon-postgres-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(pluginDir)
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(pluginDir, addon.BinaryPrefix+Name), "../../cmd/dyno-addon-postgres")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("failed to build the plugin: %v: %s", err, out)
	}
	server, err = testserver.StartPostgres(ctx, testserver.PostgresOptions{})
	if err != nil {
		return 0, err
	}
	defer server.Stop()
	return m.Run(), nil
}

// requireServer puts a test that uses the package's PostgreSQL server in the agent tier.
func requireServer(t *testing.T) {
	t.Helper()
	testutil.E2E(t, "runs PostgreSQL (Debian package postgresql)")
}

func newHost(t *testing.T) *addonhost.Host {
	t.Helper()
	requireServer(t)
	h, err := addonhost.New(addonhost.Options{
		PluginDir:        pluginDir,
		Settings:         map[string]map[string]string{Name: {"admin_url": server.AdminURL("")}},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn}),
		ProvisionTimeout: 30 * time.Second,
	})
	must.NoError(t, err)
	return h
}

func adminConn(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	requireServer(t)
	c, err := pgx.Connect(context.Background(), server.AdminURL(db))
	must.NoError(t, err)
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func count(t *testing.T, c *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	must.NoError(t, c.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func TestPostgres_ProvisionRetryDeprovision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHost(t)
	admin := adminConn(t, "")
	req := addon.ProvisionRequest{RequestID: "att-1", App: "shop", Name: "DATABASE"}
	start := time.Now()
	r1, err := h.Provision(ctx, Name, req)
	must.NoError(t, err)
	t.Logf("provisioned in %s (plugin start to answer)", time.Since(start).Round(time.Millisecond))
	url := r1.Env["DATABASE_URL"]
	must.StrHasPrefix(t, "postgres://"+r1.ID+":", url)
	must.StrContains(t, url, fmt.Sprintf("@127.0.0.1:%d/%s?sslmode=disable", server.Port, r1.ID))

	app, err := pgx.Connect(ctx, url)
	must.NoError(t, err, must.Sprint("DATABASE_URL works"))
	_, err = app.Exec(ctx, `CREATE TABLE counter (n int); INSERT INTO counter VALUES (41)`)
	must.NoError(t, err, must.Sprint("the app owns its database"))
	app.Close(ctx)

	r2, err := h.Provision(ctx, Name, req)
	must.NoError(t, err)
	must.Eq(t, r1, r2, must.Sprint("a retry with the same request ID answers the same resource"))
	must.Eq(t, 1, count(t, admin, `SELECT count(*) FROM pg_database WHERE datname LIKE 'd\_shop\_%'`))

	var super, createdb, createrole, replication, bypassrls bool
	var limit, memberships int
	must.NoError(t, admin.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit,
		(SELECT count(*) FROM pg_auth_members WHERE member = r.oid) FROM pg_roles r WHERE rolname = $1`,
		r1.ID).Scan(&super, &createdb, &createrole, &replication, &bypassrls, &limit, &memberships))
	must.False(t, super || createdb || createrole || replication || bypassrls, must.Sprint("least privilege"))
	must.Eq(t, 0, memberships, must.Sprint("member of no role"))
	must.Eq(t, 20, limit, must.Sprint("the dev plan's connection limit"))
	var publicConnect bool
	must.NoError(t, admin.QueryRow(ctx, `SELECT has_database_privilege('public', $1, 'CONNECT')`, r1.ID).Scan(&publicConnect))
	must.False(t, publicConnect, must.Sprint("PUBLIC cannot connect"))

	app, err = pgx.Connect(ctx, url)
	must.NoError(t, err)
	defer app.Close(ctx)
	del := addon.DeprovisionRequest{RequestID: "del-1", ResourceID: r1.ID, App: "shop"}
	start = time.Now()
	must.NoError(t, h.Deprovision(ctx, Name, del), must.Sprint("deprovision with an open connection"))
	t.Logf("deprovisioned in %s", time.Since(start).Round(time.Millisecond))
	must.Error(t, app.Ping(ctx), must.Sprint("the open connection was closed"))
	must.Eq(t, 0, count(t, admin, `SELECT count(*) FROM pg_database WHERE datname = $1`, r1.ID))
	must.Eq(t, 0, count(t, admin, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, r1.ID))
	_, err = pgx.Connect(ctx, url)
	must.Error(t, err, must.Sprint("the credentials are gone"))
	must.NoError(t, h.Deprovision(ctx, Name, del), must.Sprint("deprovision again is success"))
}

func TestPostgres_CrossAppIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHost(t)
	admin := adminConn(t, "")
	a, err := h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "iso-a", App: "alpha"})
	must.NoError(t, err)
	b, err := h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "iso-b", App: "bravo", Plan: "standard"})
	must.NoError(t, err)
	must.NotEq(t, a.ID, b.ID)
	must.Eq(t, 100, count(t, admin, `SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, b.ID), must.Sprint("the standard plan"))

	bConn, err := pgx.Connect(ctx, b.Env["DATABASE_URL"])
	must.NoError(t, err)
	_, err = bConn.Exec(ctx, `CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('bravo only')`)
	must.NoError(t, err)
	bConn.Close(ctx)

	// alpha's credentials against bravo's database.
	crossURL := strings.Replace(a.Env["DATABASE_URL"], "/"+a.ID+"?", "/"+b.ID+"?", 1)
	_, err = pgx.Connect(ctx, crossURL)
	must.ErrorContains(t, err, "permission denied for database")

	// alpha's credentials in the admin database cannot read the add-on's records.
	adminAsAlpha := strings.Replace(a.Env["DATABASE_URL"], "/"+a.ID+"?", "/postgres?", 1)
	if c, err := pgx.Connect(ctx, adminAsAlpha); err == nil {
		var pw string
		err = c.QueryRow(ctx, `SELECT password FROM dynogrid.postgres_addon LIMIT 1`).Scan(&pw)
		must.ErrorContains(t, err, "permission denied")
		c.Close(ctx)
	}

	// alpha can neither make databases nor roles, nor become bravo.
	aConn, err := pgx.Connect(ctx, a.Env["DATABASE_URL"])
	must.NoError(t, err)
	defer aConn.Close(ctx)
	for _, stmt := range []string{`CREATE DATABASE sneaky`, `CREATE ROLE sneaky`, `SET ROLE ` + b.ID, `ALTER ROLE ` + a.ID + ` SUPERUSER`} {
		_, err := aConn.Exec(ctx, stmt)
		must.ErrorContains(t, err, "SQLSTATE 42501", must.Sprint(stmt)) // insufficient privilege
	}

	for _, r := range []struct{ id, app string }{{a.ID, "alpha"}, {b.ID, "bravo"}} {
		must.NoError(t, h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "del", ResourceID: r.id, App: r.app}))
	}
}

func TestPostgres_DeprovisionRefusesWhatIsNotItsOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHost(t)
	admin := adminConn(t, "")
	r, err := h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "own-1", App: "owner"})
	must.NoError(t, err)
	err = h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "x", ResourceID: r.ID, App: "intruder"})
	must.ErrorContains(t, err, "belongs to app owner, not intruder")
	must.Eq(t, addonhost.KindRejected, addonhost.KindOf(err))

	_, err = admin.Exec(ctx, `CREATE DATABASE operators_own`)
	must.NoError(t, err)
	err = h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "x", ResourceID: "operators_own", App: "owner"})
	must.ErrorContains(t, err, "was not made by this add-on")
	must.Eq(t, 1, count(t, admin, `SELECT count(*) FROM pg_database WHERE datname = 'operators_own'`))

	_, err = h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "own-1", App: "intruder"})
	must.ErrorContains(t, err, "already used for app owner")
	must.NoError(t, h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "x", ResourceID: r.ID, App: "owner"}))
}

// TestPostgres_KilledMidCallThenRetry kills the plugin while CREATE DATABASE waits
// (a session on template1 holds it back), after the role was made: the retry with
// the same request ID finishes the job with one database and one role. Not parallel:
// its session on template1 makes every other CREATE DATABASE fail meanwhile.
func TestPostgres_KilledMidCallThenRetry(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	admin := adminConn(t, "")
	req := addon.ProvisionRequest{RequestID: "kill-1", App: "crashy"}
	name := ResourceName(req.App, req.RequestID)

	blocker := adminConn(t, "template1")
	p, err := h.Open(ctx, Name)
	must.NoError(t, err)
	defer p.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Provision(ctx, req)
		errc <- err
	}()
	testutil.WaitFor(t, 30*time.Second, "the plugin to make the role", func() bool {
		return count(t, admin, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, name) > 0
	})
	must.NoError(t, syscall.Kill(p.Pid(), syscall.SIGKILL))
	select {
	case err := <-errc:
		must.Eq(t, addonhost.KindCrashed, addonhost.KindOf(err), must.Sprintf("error: %v", err))
		must.True(t, addonhost.Retryable(err))
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not end when the plugin was killed")
	}
	must.NoError(t, blocker.Close(ctx))

	r, err := h.Provision(ctx, Name, req)
	must.NoError(t, err)
	must.Eq(t, name, r.ID)
	c, err := pgx.Connect(ctx, r.Env["DATABASE_URL"])
	must.NoError(t, err, must.Sprint("the URL from the retry works"))
	c.Close(ctx)
	must.Eq(t, 1, count(t, admin, `SELECT count(*) FROM pg_database WHERE datname LIKE 'd\_crashy\_%'`))
	must.Eq(t, 1, count(t, admin, `SELECT count(*) FROM pg_roles WHERE rolname LIKE 'd\_crashy\_%'`))
	must.NoError(t, h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "del", ResourceID: r.ID, App: req.App}))
}

func TestPostgres_BadConfiguration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		settings map[string]string
		want     string
	}{
		{map[string]string{}, `setting "admin_url" is required`},
		{map[string]string{"admin_url": "mysql://x"}, `"admin_url" is not a postgres:// URL`},
		{map[string]string{"admin_url": "postgres://h/db", "public_port": "99999"}, `"public_port" is not a port`},
		{map[string]string{"admin_url": "postgres://h/db", "sslmode": "maybe"}, `unknown mode "maybe"`},
		{map[string]string{"admin_url": "postgres://h/db", "adminurl": "x"}, `unknown setting "adminurl"`},
		{map[string]string{"admin_url": "postgres://h/db", "public_host": "a b"}, `"public_host" is not a host`},
	}
	for _, c := range cases {
		err := New(nil).Configure(context.Background(), addon.Config{Settings: c.settings})
		must.ErrorContains(t, err, c.want)
	}
	a := New(nil)
	must.NoError(t, a.Configure(context.Background(), addon.Config{Settings: map[string]string{
		"admin_url": "postgres://u:p@10.1.2.3:6432/postgres?sslmode=require", "public_host": "db.internal"}}))
	must.Eq(t, "postgres://d_x:pw@db.internal:6432/d_x?sslmode=require", a.cfg.databaseURL("d_x", "pw"))
}

func TestResourceName(t *testing.T) {
	t.Parallel()
	n := ResourceName("my-app", "r1")
	must.Eq(t, n, ResourceName("my-app", "r1"))
	must.NotEq(t, n, ResourceName("my-app", "r2"))
	must.StrHasPrefix(t, "d_my_app_", n)
	long := ResourceName(strings.Repeat("a", 63), "r1")
	must.LessEq(t, 63, len(long))
}

func TestPostgres_Conformance(t *testing.T) {
	t.Parallel()
	requireServer(t)
	p := addontest.Launch(t, pluginDir, Name, map[string]string{"admin_url": server.AdminURL("")})
	admin := adminConn(t, "")
	addontest.Conformance(t, addontest.PluginTarget(p), addontest.Options{
		App: "conform",
		CheckMade: func(t *testing.T, r addon.Resource) {
			c, err := pgx.Connect(context.Background(), r.Env["DATABASE_URL"])
			must.NoError(t, err)
			c.Close(context.Background())
		},
		CheckGone: func(t *testing.T, r addon.Resource) {
			must.Eq(t, 0, count(t, admin, `SELECT count(*) FROM pg_database WHERE datname = $1`, r.ID))
		},
	})
}

// TestPostgres_AppRolesReachOnlyTheirOwnDatabase: an app's credentials log in to its own
// database and to no other: not postgres, not template1 (open to PUBLIC after initdb),
// not a database an operator made on the server; the add-on's admin connection and a
// superuser still reach them all.
func TestPostgres_AppRolesReachOnlyTheirOwnDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := adminConn(t, "")
	_, err := admin.Exec(ctx, `CREATE DATABASE operators_open`)
	must.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP DATABASE IF EXISTS operators_open`) })
	h := newHost(t)
	r, err := h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "reach-1", App: "hello"})
	must.NoError(t, err)
	defer func() {
		must.NoError(t, h.Deprovision(ctx, Name, addon.DeprovisionRequest{RequestID: "del", ResourceID: r.ID, App: "hello"}))
	}()
	own, err := pgx.Connect(ctx, r.Env["DATABASE_URL"])
	must.NoError(t, err, must.Sprint("the app's own database"))
	own.Close(ctx)
	for _, db := range []string{"postgres", "template1", "operators_open"} {
		other := strings.Replace(r.Env["DATABASE_URL"], "/"+r.ID+"?", "/"+db+"?", 1)
		c, err := pgx.Connect(ctx, other)
		if err == nil {
			c.Close(ctx)
		}
		must.ErrorContains(t, err, "permission denied for database", must.Sprintf("app credentials on %s", db))
		var publicConnect bool
		must.NoError(t, admin.QueryRow(ctx, `SELECT has_database_privilege('public', $1, 'CONNECT')`, db).Scan(&publicConnect))
		must.False(t, publicConnect, must.Sprintf("PUBLIC may connect to %s", db))
		// The superuser still may; closed at once, since a session on template1 holds
		// back the other tests' CREATE DATABASE.
		c, err = pgx.Connect(ctx, server.AdminURL(db))
		must.NoError(t, err, must.Sprintf("the superuser on %s", db))
		must.NoError(t, c.Close(ctx))
	}
	// A second call (the next provision) finds nothing left to close, and works.
	r2, err := h.Provision(ctx, Name, addon.ProvisionRequest{RequestID: "reach-1", App: "hello"})
	must.NoError(t, err)
	must.Eq(t, r, r2)
}

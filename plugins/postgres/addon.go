package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// LockKey is the PostgreSQL advisory lock every provision and deprovision holds on the
// admin database, so that concurrent calls (a retry beside a call still running on the
// server after its plugin died) never make two of anything.
const LockKey = 0x64796e6f_70670001

// connectTimeout bounds the connection to the admin database.
const connectTimeout = 15 * time.Second

// Addon is the postgres add-on.
type Addon struct {
	Logger hclog.Logger
	cfg    config
	ready  bool
}

var _ addon.Addon = (*Addon)(nil)

// New returns the add-on, unconfigured.
func New(logger hclog.Logger) *Addon {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Addon{Logger: logger}
}

// Configure checks the operator's settings; it does not connect.
func (a *Addon) Configure(_ context.Context, c addon.Config) error {
	cfg, err := parseConfig(c)
	if err != nil {
		return err
	}
	a.cfg, a.ready = cfg, true
	return nil
}

// Describe tells the plans and DATABASE_URL.
func (a *Addon) Describe(context.Context) (addon.Description, error) {
	return description(), nil
}

// connect opens an admin session holding the add-on's lock, with its records table
// in place. The lock goes with the session, also when the plugin dies.
func (a *Addon) connect(ctx context.Context) (*pgx.Conn, error) {
	if !a.ready {
		return nil, errors.New("the add-on is not configured (admin_url)")
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := pgx.Connect(cctx, a.cfg.adminURL)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("failed to connect to the admin database: %w", err)
	}
	fail := func(what string, err error) (*pgx.Conn, error) {
		conn.Close(context.Background())
		return nil, fmt.Errorf("failed to %s: %w", what, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(LockKey)); err != nil {
		return fail("take the add-on's lock", err)
	}
	for _, stmt := range []string{
		`CREATE SCHEMA IF NOT EXISTS dynogrid`,
		`REVOKE ALL ON SCHEMA dynogrid FROM PUBLIC`,
		`CREATE TABLE IF NOT EXISTS dynogrid.postgres_addon (
			request_id text PRIMARY KEY,
			app        text NOT NULL,
			name       text NOT NULL UNIQUE,
			password   text NOT NULL,
			plan       text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now())`,
		`REVOKE ALL ON dynogrid.postgres_addon FROM PUBLIC`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fail("create the add-on's records table", err)
		}
	}
	if _, err := conn.Exec(ctx, closeSharedDatabases); err != nil {
		return fail("close the server's databases to app roles", err)
	}
	return conn, nil
}

// closeSharedDatabases revokes CONNECT (and TEMPORARY) from PUBLIC on every database of
// the server that still grants it: postgres, template1, the admin database, an
// operator's own. Every app role is a member of PUBLIC, so it could otherwise log in
// there (with 20 connections of its own) and read every app's database and role names
// and the databases' comments in the catalogs. The add-on's databases are closed when
// they are made. Superusers, as the add-on's admin connection is, connect anyway.
// Idempotent: it runs at each call, so a server set up before it is fixed up too.
const closeSharedDatabases = `DO $$
DECLARE d name;
BEGIN
	FOR d IN SELECT datname FROM pg_database WHERE has_database_privilege('public', oid, 'CONNECT') OR has_database_privilege('public', oid, 'TEMPORARY') LOOP
		EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', d);
	END LOOP;
END $$`

type record struct {
	requestID, app, name, password, plan string
}

// Provision makes (or finds again) the database and role of req.RequestID. The record
// is written first, so that a retry after a crash at any step uses the same name and
// password and finishes the job.
func (a *Addon) Provision(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
	conn, err := a.connect(ctx)
	if err != nil {
		return addon.Resource{}, err
	}
	defer conn.Close(context.Background())

	rec, err := a.record(ctx, conn, req)
	if err != nil {
		return addon.Resource{}, err
	}
	if err := a.ensureRole(ctx, conn, rec); err != nil {
		return addon.Resource{}, err
	}
	if err := a.ensureDatabase(ctx, conn, rec); err != nil {
		return addon.Resource{}, err
	}
	a.Logger.Info("database ready", "app", rec.app, "database", rec.name, "request_id", rec.requestID)
	return addon.Resource{
		ID:      rec.name,
		Env:     map[string]string{"DATABASE_URL": a.cfg.databaseURL(rec.name, rec.password)},
		Message: fmt.Sprintf("database %s on %s:%d (plan %s)", rec.name, a.cfg.publicHost, a.cfg.publicPort, rec.plan),
	}, nil
}

// record returns the record of the request, creating it on the first attempt.
func (a *Addon) record(ctx context.Context, conn *pgx.Conn, req addon.ProvisionRequest) (record, error) {
	rec := record{requestID: req.RequestID}
	err := conn.QueryRow(ctx, `SELECT app, name, password, plan FROM dynogrid.postgres_addon WHERE request_id = $1`,
		req.RequestID).Scan(&rec.app, &rec.name, &rec.password, &rec.plan)
	switch {
	case err == nil:
		if rec.app != req.App {
			return rec, fmt.Errorf("request ID %s was already used for app %s", req.RequestID, rec.app)
		}
		return rec, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return rec, fmt.Errorf("failed to read the add-on's records: %w", err)
	}
	pw, err := newPassword()
	if err != nil {
		return rec, err
	}
	rec = record{requestID: req.RequestID, app: req.App, name: ResourceName(req.App, req.RequestID), password: pw, plan: req.Plan}
	if _, err := conn.Exec(ctx, `INSERT INTO dynogrid.postgres_addon (request_id, app, name, password, plan) VALUES ($1, $2, $3, $4, $5)`,
		rec.requestID, rec.app, rec.name, rec.password, rec.plan); err != nil {
		return rec, fmt.Errorf("failed to record the request: %w", err)
	}
	return rec, nil
}

// ensureRole creates the app's role, or resets an existing one to what it should be.
func (a *Addon) ensureRole(ctx context.Context, conn *pgx.Conn, rec record) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, rec.name).Scan(&exists); err != nil {
		return fmt.Errorf("failed to look up role %s: %w", rec.name, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	stmt := fmt.Sprintf(`%s ROLE %s WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %d PASSWORD %s`,
		verb, pgx.Identifier{rec.name}.Sanitize(), connLimit(rec.plan), quoteLiteral(rec.password))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("failed to %s role %s: %w", verbLower(verb), rec.name, err)
	}
	return nil
}

// ensureDatabase creates the app's database owned by its role, closed to everyone
// else, and marks it with a comment naming the app and request.
func (a *Addon) ensureDatabase(ctx context.Context, conn *pgx.Conn, rec record) error {
	db := pgx.Identifier{rec.name}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, rec.name).Scan(&exists); err != nil {
		return fmt.Errorf("failed to look up database %s: %w", rec.name, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s ENCODING 'UTF8'`, db, db)); err != nil {
			return fmt.Errorf("failed to create database %s: %w", rec.name, err)
		}
	}
	for _, stmt := range []string{
		fmt.Sprintf(`ALTER DATABASE %s OWNER TO %s`, db, db),
		fmt.Sprintf(`REVOKE ALL ON DATABASE %s FROM PUBLIC`, db),
		fmt.Sprintf(`COMMENT ON DATABASE %s IS %s`, db, quoteLiteral(comment(rec.app, rec.requestID))),
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("failed to set up database %s: %w", rec.name, err)
		}
	}
	return nil
}

// Deprovision drops the database (closing its connections) and the role, then the
// record. It refuses to drop what this add-on did not make for req.App.
func (a *Addon) Deprovision(ctx context.Context, req addon.DeprovisionRequest) error {
	conn, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	name := req.ResourceID
	var app string
	err = conn.QueryRow(ctx, `SELECT app FROM dynogrid.postgres_addon WHERE name = $1`, name).Scan(&app)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var dbExists, roleExists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1), EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`,
			name).Scan(&dbExists, &roleExists); err != nil {
			return fmt.Errorf("failed to look up %s: %w", name, err)
		}
		if dbExists || roleExists {
			return fmt.Errorf("%s exists but was not made by this add-on: left alone", name)
		}
		return nil // already gone
	case err != nil:
		return fmt.Errorf("failed to read the add-on's records: %w", err)
	case app != req.App:
		return fmt.Errorf("resource %s belongs to app %s, not %s", name, app, req.App)
	}
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE (datname = $1 OR usename = $1) AND pid <> pg_backend_pid()`, name); err != nil {
		return fmt.Errorf("failed to close the connections to %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, id)); err != nil {
		return fmt.Errorf("failed to drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, id)); err != nil {
		return fmt.Errorf("failed to drop role %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM dynogrid.postgres_addon WHERE name = $1`, name); err != nil {
		return fmt.Errorf("failed to delete the record of %s: %w", name, err)
	}
	a.Logger.Info("database dropped", "app", req.App, "database", name, "request_id", req.RequestID)
	return nil
}

func verbLower(v string) string {
	if v == "CREATE" {
		return "create"
	}
	return "alter"
}

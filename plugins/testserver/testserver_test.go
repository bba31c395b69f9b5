package testserver

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shoenig/test/must"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

func TestPostgres_StartsAndAnswers(t *testing.T) {
	t.Parallel()
	start := time.Now()
	p := PostgresT(t, PostgresOptions{})
	t.Logf("postgres ready in %s on port %d", time.Since(start).Round(time.Millisecond), p.Port)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.AdminURL(""))
	must.NoError(t, err)
	defer conn.Close(ctx)
	var v string
	must.NoError(t, conn.QueryRow(ctx, "SHOW server_version").Scan(&v))
	t.Logf("server_version %s", v)
	_, err = pgx.Connect(ctx, "postgres://postgres:wrong@"+p.Host+":"+itoa(p.Port)+"/postgres?sslmode=disable")
	must.Error(t, err, must.Sprint("a wrong password is refused"))
}

func TestMemcached_StartsAndAnswers(t *testing.T) {
	t.Parallel()
	m := MemcachedT(t, MemcachedOptions{})
	v, err := MemcachedVersion(context.Background(), m.Addr)
	must.NoError(t, err)
	must.StrHasPrefix(t, "1.", v)
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPostgres_InAGivenDirDetached(t *testing.T) {
	t.Parallel()
	testutil.E2E(t, "runs PostgreSQL (Debian package postgresql)")
	parent, err := os.MkdirTemp("", "dyno-pg-parent-")
	must.NoError(t, err)
	defer os.RemoveAll(parent)
	must.NoError(t, os.Chmod(parent, 0o755))
	dir := filepath.Join(parent, "postgres")
	p, err := StartPostgres(context.Background(), PostgresOptions{Dir: dir, Detach: true})
	must.NoError(t, err)
	must.Eq(t, dir, p.Dir)
	must.FileExists(t, p.LogPath)
	sid, err := unix.Getsid(p.PID())
	must.NoError(t, err)
	must.Eq(t, p.PID(), sid, must.Sprint("the server leads a session of its own"))
	must.NoError(t, p.Stop())
	_, err = os.Stat(dir)
	must.True(t, os.IsNotExist(err), must.Sprint("Stop removed the directory"))
}

package testserver

import (
	"context"
	"encoding/binary"
	"io"
	"net"
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

// TestPostgres_ClosesConnectionsThatNeverLogIn: a client that sends its startup packet
// and never answers the password challenge holds a slot of max_connections; the server
// must close it after AuthenticationTimeout (PostgreSQL's default is a minute, during
// which 100 such connections from one dyno refuse every app "too many clients").
func TestPostgres_ClosesConnectionsThatNeverLogIn(t *testing.T) {
	t.Parallel()
	p := PostgresT(t, PostgresOptions{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.AdminURL(""))
	must.NoError(t, err)
	defer conn.Close(ctx)
	for setting, want := range map[string]string{"authentication_timeout": "10s", "superuser_reserved_connections": "3"} {
		var got string
		must.NoError(t, conn.QueryRow(ctx, "SHOW "+setting).Scan(&got))
		must.Eq(t, want, got, must.Sprint(setting))
	}

	c, err := net.Dial("tcp", net.JoinHostPort(p.Host, itoa(p.Port)))
	must.NoError(t, err)
	defer c.Close()
	params := "user\x00postgres\x00database\x00postgres\x00\x00"
	startup := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
	startup = binary.BigEndian.AppendUint32(startup, 3<<16) // protocol 3.0
	_, err = c.Write(append(startup, params...))
	must.NoError(t, err)
	sent := time.Now()
	// The server asks for the password (R, SASL), then waits for an answer that never
	// comes: the next read ends when it closes the connection.
	must.NoError(t, c.SetReadDeadline(sent.Add(AuthenticationTimeout+10*time.Second)))
	kind := make([]byte, 1)
	_, err = io.ReadFull(c, kind)
	must.NoError(t, err)
	must.Eq(t, byte('R'), kind[0], must.Sprint("the server's password challenge"))
	_, err = io.Copy(io.Discard, c)
	must.NoError(t, err, must.Sprint("the server closed the connection that never logged in (not the read deadline)"))
	t.Logf("closed %s after the startup packet", time.Since(sent).Round(time.Millisecond))
	must.Greater(t, AuthenticationTimeout-time.Second, time.Since(sent))
}

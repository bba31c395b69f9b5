package testserver

import (
	"context"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// StartTimeout bounds how long the T helpers wait for a server.
const StartTimeout = time.Minute

// PostgresT starts a PostgreSQL server for one test and stops it in t.Cleanup. Such a
// test belongs to the agent tier (see internal/testutil): PostgresT skips it unless
// DYNO_E2E=1.
func PostgresT(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	testutil.E2E(t, "runs PostgreSQL (Debian package postgresql)")
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	p, err := StartPostgres(ctx, opts)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("testserver: %v", err)
		}
	})
	return p
}

// MemcachedT starts memcached for one test and stops it in t.Cleanup. Like PostgresT, it
// is for tests of the agent tier.
func MemcachedT(t testing.TB, opts MemcachedOptions) *Memcached {
	t.Helper()
	testutil.E2E(t, "runs memcached (Debian package memcached)")
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	m, err := StartMemcached(ctx, opts)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("testserver: %v", err)
		}
	})
	return m
}

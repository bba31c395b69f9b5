package testserver

import (
	"context"
	"testing"
	"time"
)

// StartTimeout bounds how long the T helpers wait for a server.
const StartTimeout = time.Minute

// PostgresT starts a PostgreSQL server for one test and stops it in t.Cleanup.
func PostgresT(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
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

// MemcachedT starts memcached for one test and stops it in t.Cleanup.
func MemcachedT(t testing.TB, opts MemcachedOptions) *Memcached {
	t.Helper()
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

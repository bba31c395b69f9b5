package main

import (
	"strings"
	"testing"
)

// TestBadFlagsAreRefused: each flag the shipper cannot run with makes it exit 2 before
// it starts, also a -metrics-listen it cannot bind.
func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-log-level", "bogus"},
		{"-routers", "ftp://127.0.0.1:1"},
		{"-routers", "http://127.0.0.1"},
		{"-routers", "http://127.0.0.1:99999"},
		{"-routers", "http://user:pw@127.0.0.1:1"},
		{"-routers", "http://127.0.0.1:1/path"},
		{"-routers", "not a url"},
		{"-metrics-listen", "127.0.0.1:99999"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("dyno-logdrain %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	if got, err := parseRouters(" http://127.0.0.1:8083 ,https://r.example:443/"); err != nil || len(got) != 2 {
		t.Errorf("parseRouters: %v, %v; want both routers", got, err)
	}
}

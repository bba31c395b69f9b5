package main

import (
	"strings"
	"testing"
)

// TestBadFlagsAreRefused: each flag the autoscaler cannot run with makes it exit 2
// before it talks to any agent.
func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-log-level", "bogus"},
		{"-up-cooldown", "-1h"},
		{"-down-after", "-5s"},
		{"-down-cooldown", "-1s"},
		{"-routers", "y:99999"},
		{"-routers", "127.0.0.1:80,nohostport"},
		{"-interval", "0s"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("dyno-autoscaler %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

package main

import (
	"strings"
	"testing"
	"time"
)

// TestBadFlagsAreRefused: each flag the meter cannot run with makes it exit 2 before it
// talks to any agent, naming the flag.
func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-log-level", "bogus"},
		{"-checkpoint-interval", "-1s"},
		{"-checkpoint-interval", "0s"},
		{"-lock-ttl", "1ns"},
		{"-lock-ttl", "9999h"},
		{"-ledger-prefix", ""},
		{"-ledger-prefix", "../../x y"},
		{"-ledger-prefix", "a//b"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("dyno-meter %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	if err := checkFlags("info", "dynogrid/meter", 10*time.Second, 15*time.Second); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	err := checkFlags("info", "a/../b", time.Second, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), `-ledger-prefix "a/../b"`) {
		t.Errorf("checkFlags: %v, want -ledger-prefix named", err)
	}
}

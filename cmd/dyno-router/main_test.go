package main

import (
	"flag"
	"strings"
	"testing"
	"time"
)

// TestZeroFlagsAreRefused: a flag whose zero the router would read as its default,
// given as zero or empty, is refused, naming the flag and its default; so is a size
// beyond the router's limits.
func TestZeroFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"-listen", ""}, {"-timeout", "0"}, {"-max-queue", "0"}, {"-body-prefetch", "0"},
		{"-domain", ""}, {"-body-prefetch", "99999999999"}, {"-max-body-bytes", "-5"},
	} {
		if code := run(append([]string{"-consul", ""}, args...)); code != 2 {
			t.Errorf("dyno-router %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}

	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Duration("timeout", 30*time.Second, "")
	fs.String("tls-listen", "", "")
	if err := fs.Parse([]string{"-timeout", "0s", "-tls-listen", ""}); err != nil {
		t.Fatal(err)
	}
	err := checkNotZero(fs)
	if err == nil || !strings.Contains(err.Error(), `-timeout "0s": must not be zero or empty (leave the flag out for its default, 30s)`) {
		t.Errorf("checkNotZero: %v, want -timeout named with its default", err)
	}
	if err != nil && strings.Contains(err.Error(), "tls-listen") {
		t.Errorf("checkNotZero: %v; an empty -tls-listen means off and is allowed", err)
	}
}

// TestEventLoopIsTheDefaultButNotInClusterMode: the event loop serves unless the router
// runs in cluster mode, which it does not serve; asking for both is left to the
// router's configuration to refuse.
func TestEventLoopIsTheDefaultButNotInClusterMode(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"-event-loop=false"}, false},
		{[]string{"-cluster"}, false},
		{[]string{"-cluster", "-event-loop=false"}, false},
		{[]string{"-cluster", "-event-loop"}, true},
	} {
		cfg, _, _, err := parseFlags(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.EventLoop != tc.want {
			t.Errorf("%v: event loop %v, want %v", tc.args, cfg.EventLoop, tc.want)
		}
	}
	if code := run([]string{"-cluster", "-event-loop", "-consul", "127.0.0.1:1"}); code != 2 {
		t.Errorf("-cluster -event-loop: exit %d, want 2 (refused)", code)
	}
}

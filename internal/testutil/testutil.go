// Package testutil holds what the project's tests share and what needs nothing but the
// standard library: the switch between the unit tier and the agent tier, and the one
// helper that polls for a condition with a deadline. It imports nothing of the project,
// so any test may use it without pulling in the agents.
//
// The tiers: `go test ./...` runs the unit tier, which needs no root, no agents and no
// Debian packages. A test that needs any of them (root, the Nomad and Consul agents, a
// server from a Debian package such as postgres, memcached, thin or haproxy, or network
// namespaces) belongs to the agent tier and starts with E2E. That tier runs only when
// DYNO_E2E=1 is set, as `make test` does; then a missing requirement fails the test, so
// a run that asked for the agent tier never skips part of it silently.
package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// EnvE2E is the environment variable that turns on the agent tier when set to 1.
const EnvE2E = "DYNO_E2E"

// Need is something a test of the agent tier needs from the machine.
type Need struct {
	name  string
	check func() error
}

// Root is the need for root: the test isolates tasks, changes the firewall or makes
// network namespaces.
var Root = Need{name: "root", check: func() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("running as uid %d, not root", os.Geteuid())
	}
	return nil
}}

// Program is the need for an executable: a path, or a name looked up in $PATH.
func Program(name string) Need {
	return Need{name: name, check: func() error {
		_, err := exec.LookPath(name)
		return err
	}}
}

// E2EEnabled reports whether DYNO_E2E=1 turns the agent tier on. Any value other than
// empty, 0 or 1 is an error, so that a typo cannot skip the tier.
func E2EEnabled() (bool, error) {
	switch v := os.Getenv(EnvE2E); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want 1 (run the agent tier) or 0", EnvE2E, v)
	}
}

// E2E marks t as a test of the agent tier: why says in a few words what it needs, such
// as "starts Nomad and Consul agents". Without DYNO_E2E=1 it skips t with why as the
// reason. With DYNO_E2E=1 it fails t unless every need is met.
func E2E(t testing.TB, why string, needs ...Need) {
	t.Helper()
	on, err := E2EEnabled()
	if err != nil {
		t.Fatal(err)
	}
	if !on {
		t.Skipf("agent tier: %s; set %s=1 to run it (make test does)", why, EnvE2E)
	}
	var missing []error
	for _, n := range needs {
		if err := n.check(); err != nil {
			missing = append(missing, fmt.Errorf("needs %s: %w", n.name, err))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("agent tier (%s=1): %s, and the machine lacks it: %v", EnvE2E, why, errors.Join(missing...))
	}
}

// Condition is what WaitFor polls: a func() bool, or a func() error that returns nil
// once the condition holds and otherwise says what it saw.
type Condition interface {
	func() bool | func() error
}

// WaitFor polls cond until it holds and returns how long that took. It fails t if cond
// does not hold within d, saying what it waited for and, for a func() error, the last
// error. It polls at once, then at intervals that double from 1 ms up to d/500 (at
// least 2 ms, at most 100 ms): a condition of the test's own process is seen within a
// few milliseconds, and a wait of a minute on an agent's API asks it ten times a second.
func WaitFor[C Condition](t testing.TB, d time.Duration, what string, cond C) time.Duration {
	t.Helper()
	check := func() error {
		switch c := any(cond).(type) {
		case func() bool:
			if !c() {
				return errNotYet
			}
			return nil
		case func() error:
			return c()
		}
		panic("unreachable: Condition is a func() bool or a func() error")
	}
	start := time.Now()
	deadline := start.Add(d)
	interval, most := time.Millisecond, min(max(d/500, 2*time.Millisecond), 100*time.Millisecond)
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			if errors.Is(err, errNotYet) {
				t.Fatalf("timed out after %s waiting for %s", d, what)
			}
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, err)
		}
		time.Sleep(interval)
		interval = min(2*interval, most)
	}
}

var errNotYet = errors.New("not yet")

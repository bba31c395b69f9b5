package deploy

import (
	"testing"
	"time"
)

// TestHealthCheckTimings checks the web dyno's check against what Nomad v1.6.3 and
// Consul do with it: a booted dyno is checked within a second (Consul's first check
// comes within one interval of registration), Nomad accepts the interval (at least
// 1 s), and Nomad kills a dyno whose check has been critical for HungAfter (its
// interval times the check_restart limit minus one).
func TestHealthCheckTimings(t *testing.T) {
	t.Parallel()
	c := healthCheck("/health")
	if c.Type != "http" || c.Path != "/health" {
		t.Errorf("check = %s %s, want an HTTP check of /health", c.Type, c.Path)
	}
	if c.Interval != time.Second {
		t.Errorf("check interval = %s, want 1 s: the shortest Nomad v1.6.3 allows, so a booted dyno is routed within a second", c.Interval)
	}
	if c.Timeout < time.Second || c.FailuresBeforeCritical != 2 {
		t.Errorf("check timeout %s (Nomad's least is 1 s), critical after %d failures, want 2", c.Timeout, c.FailuresBeforeCritical)
	}
	if c.CheckRestart == nil || c.CheckRestart.Grace == nil || *c.CheckRestart.Grace != HungGrace {
		t.Fatalf("check_restart = %+v, want a grace of %s", c.CheckRestart, HungGrace)
	}
	if hung := c.Interval * time.Duration(c.CheckRestart.Limit-1); hung != 28*time.Second {
		t.Errorf("Nomad restarts a dyno whose check is critical for %s (interval %s, limit %d), want 28 s", hung, c.Interval, c.CheckRestart.Limit)
	}
}

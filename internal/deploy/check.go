package deploy

import (
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// The health check of a web dyno: Consul runs it, the router routes only dynos whose
// check passes, and Nomad's deployments count a dyno healthy by it.
const (
	// CheckInterval is how often Consul asks a web dyno's health check path. Consul
	// runs a new check first at a random moment within one interval of its
	// registration, and again one interval after each check: a dyno that has booted
	// waits up to one interval to be routed. Nomad v1.6.3 allows no interval below
	// 1 s.
	CheckInterval = time.Second
	// CheckTimeout is how long one check waits for the dyno's answer.
	CheckTimeout = 2 * time.Second
	// CheckFailures is how many failed checks in a row take a dyno out of routing:
	// 1 to 2 s for a dyno that refuses connections, 5 to 6 s for one that does not
	// answer (CheckTimeout each, CheckInterval apart).
	CheckFailures = 2
	// HungAfter is how long a dyno's check must have failed for Nomad to kill the
	// dyno and start another in its place; HungGrace is how long after a start
	// failures do not count.
	HungAfter = 28 * time.Second
	HungGrace = 15 * time.Second
)

// healthCheck is the Consul check of a web dyno's health check path.
func healthCheck(path string) nomadapi.ServiceCheck {
	return nomadapi.ServiceCheck{
		Name:                   "http",
		Type:                   "http",
		Path:                   path,
		Interval:               CheckInterval,
		Timeout:                CheckTimeout,
		FailuresBeforeCritical: CheckFailures,
		// Nomad restarts a task whose check has been critical for its interval times
		// (limit - 1).
		CheckRestart: &nomadapi.CheckRestart{Limit: int(HungAfter/CheckInterval) + 1, Grace: ptr(HungGrace)},
	}
}

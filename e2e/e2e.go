// Package e2e holds tests that run Dynogrid against real Nomad and Consul agents. The
// agents come from e2e/harness; job files live in e2e/jobs.
package e2e

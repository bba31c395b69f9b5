// Package e2e holds tests that run Dynogrid against real Nomad and Consul agents. The
// agents come from e2e/harness; job files live in e2e/jobs.
package e2e

import (
	"testing"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	nomadapi "github.com/hashicorp/nomad/api"
)

func mustNomad(t *testing.T, g *devgrid.Grid) *nomadapi.Client {
	t.Helper()
	c, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

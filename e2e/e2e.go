// Package e2e holds tests that run Dynogrid against real Nomad and Consul agents. The
// agents come from e2e/harness; job files live in e2e/jobs.
package e2e

import (
	"testing"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// appNomad is a Nomad client with the grid's management token for app's namespace.
func appNomad(t testing.TB, g *devgrid.Grid, app string) *nomadapi.Client {
	t.Helper()
	c, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	c.SetNamespace(tenancy.Namespace(app))
	return c
}

package multihost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/policies"
)

// routerJob is the router's system job as an operator runs it.
const routerJob = "jobs/dyno-router.nomad.hcl"

// runRouterJob runs examples/cluster/jobs/dyno-router.nomad.hcl on the edge hosts, with
// its tokens in the job's Variable, and waits until every router accepts connections.
func (g *Grid) runRouterJob(ctx context.Context) error {
	src, err := os.ReadFile(filepath.Join(g.repo, "examples", "cluster", routerJob))
	if err != nil {
		return err
	}
	nomad := g.NomadClient()
	job, err := nomad.Jobs().ParseHCLOpts(&nomadapi.JobsParseRequest{
		JobHCL: string(src), Variables: `domain = "localhost"` + "\n", Canonicalize: true})
	if err != nil {
		return fmt.Errorf("examples/cluster/%s: %w", routerJob, err)
	}
	_, _, err = nomad.Variables().Create(&nomadapi.Variable{
		Namespace: "default", Path: "nomad/jobs/dyno-router",
		Items: map[string]string{
			"nomad_token":  g.tokens.Nomad[policies.NomadRouter],
			"consul_token": g.tokens.Consul[policies.ConsulCluster],
		},
	}, nil)
	if err != nil {
		return fmt.Errorf("failed to store the router's tokens: %w", err)
	}
	if _, _, err := nomad.Jobs().Register(job, nil); err != nil {
		return fmt.Errorf("failed to run the router's job: %w", err)
	}
	for _, r := range g.Routers {
		err := g.wait(ctx, r.Host.Name+" dyno-router (job)", func(ctx context.Context) error {
			c, err := net.DialTimeout("tcp", r.Addr, time.Second)
			if err != nil {
				return g.routerJobState(err)
			}
			return c.Close()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// routerJobState adds the state of the router job's allocations to err.
func (g *Grid) routerJobState(err error) error {
	allocs, _, lerr := g.NomadClient().Jobs().Allocations("dyno-router", false, nil)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	for _, a := range allocs {
		msg := ""
		if ts := a.TaskStates["router"]; ts != nil && len(ts.Events) > 0 {
			ev := ts.Events[len(ts.Events)-1]
			msg = ev.Type + ": " + ev.DisplayMessage
		}
		err = fmt.Errorf("%w; alloc %s on %s %s %s", err, a.ID[:8], a.NodeName, a.ClientStatus, msg)
	}
	return err
}

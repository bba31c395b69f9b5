package deploy

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/internal/slug"
	nomadapi "github.com/hashicorp/nomad/api"
)

// WaitHealthy waits until the deployment of the job version registered at modifyIndex
// has every new dyno healthy, printing progress as it changes. A failed deployment is
// an error that says why; Nomad's auto-revert leaves the previous release serving.
func (d *Deployer) WaitHealthy(ctx context.Context, app string, modifyIndex uint64) error {
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := func() *nomadapi.QueryOptions { return (&nomadapi.QueryOptions{}).WithContext(ctx) }

	var last string
	noDeploymentSince := time.Now()
	for {
		dep, _, err := d.Nomad.Jobs().LatestDeployment(app, q())
		switch {
		case err != nil:
			return fmt.Errorf("failed to follow the deployment of %s: %w", app, err)
		case dep == nil || dep.JobModifyIndex < modifyIndex:
			// Nomad makes no deployment when no group needs one (all counts 0, or a
			// scale). Then the release is done once its evaluation has placed.
			if time.Since(noDeploymentSince) > 5*time.Second {
				return d.waitPlaced(ctx, app)
			}
		default:
			line := deploymentLine(dep)
			if line != last {
				d.progress("    %s", line)
				last = line
			}
			switch dep.Status {
			case nomadapi.DeploymentStatusSuccessful:
				return nil
			case nomadapi.DeploymentStatusFailed, nomadapi.DeploymentStatusCancelled:
				return fmt.Errorf("release of %s failed: %s%s", app, dep.StatusDescription, d.failureHint(ctx, app, dep))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("release of %s is not healthy after %s (it goes on in the background; see `dyno ps --app %s`)", app, timeout, app)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func deploymentLine(dep *nomadapi.Deployment) string {
	names := make([]string, 0, len(dep.TaskGroups))
	for n := range dep.TaskGroups {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		s := dep.TaskGroups[n]
		parts = append(parts, fmt.Sprintf("%s %d/%d healthy", n, s.HealthyAllocs, s.DesiredTotal))
		if s.UnhealthyAllocs > 0 {
			parts[len(parts)-1] += fmt.Sprintf(" (%d unhealthy)", s.UnhealthyAllocs)
		}
	}
	return fmt.Sprintf("%s: %s", dep.Status, strings.Join(parts, ", "))
}

// failureHint finds the last event of a failed dyno of the deployment, which usually
// says why (a command not found, a crash, a failing health check).
func (d *Deployer) failureHint(ctx context.Context, app string, dep *nomadapi.Deployment) string {
	allocs, _, err := d.Nomad.Deployments().Allocations(dep.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return ""
	}
	for _, a := range allocs {
		for task, st := range a.TaskStates {
			for i := len(st.Events) - 1; i >= 0; i-- {
				e := st.Events[i]
				if msg := e.DisplayMessage; msg != "" && (e.FailsTask || e.Type == nomadapi.TaskTerminated || e.Type == nomadapi.TaskDriverFailure || e.Type == nomadapi.TaskNotRestarting) {
					return fmt.Sprintf(" (%s: %s: %s); the previous release keeps serving", task, e.Type, msg)
				}
			}
		}
	}
	return "; the previous release keeps serving"
}

// waitPlaced waits until the app's latest evaluation is complete and no allocation of
// the job waits to be placed.
func (d *Deployer) waitPlaced(ctx context.Context, app string) error {
	for {
		evals, _, err := d.Nomad.Jobs().Evaluations(app, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("failed to follow %s: %w", app, err)
		}
		pending := false
		for _, e := range evals {
			if e.Status == "pending" {
				pending = true
			}
		}
		if !pending {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s was not scheduled in time: %w", app, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// slugDryRun computes the slug a deploy would make, in a throwaway store.
func slugDryRun(dir string) (*slug.Slug, error) {
	store, err := os.MkdirTemp("", "dyno-plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(store)
	return slug.Pack(dir, store)
}

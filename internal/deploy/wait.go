package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/slug"
)

// WaitHealthy waits until the deployment of the job version registered at modifyIndex
// has every new dyno healthy, printing progress as it changes. A failed deployment is
// an error that says why; Nomad's auto-revert leaves the previous release serving.
func (d *Deployer) WaitHealthy(ctx context.Context, app string, modifyIndex uint64) error {
	timeout := d.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dep, err := d.deploymentOf(ctx, app, modifyIndex)
	if err != nil {
		return err
	}
	if dep == nil {
		return nil // nothing to roll out: a scale-down, or counts of zero
	}
	return d.follow(ctx, app, dep, timeout)
}

// follow follows deployment dep of app until it ends, printing progress as it
// changes, and fails it as soon as one of its dynos is unhealthy.
func (d *Deployer) follow(ctx context.Context, app string, dep *nomadapi.Deployment, timeout time.Duration) error {
	var last, noStack string
	failed := false
	var err error
	// Follow this deployment by its ID (once it fails, Nomad's revert makes another),
	// with blocking queries: each change is seen as Nomad makes it.
	var index uint64
	for {
		q := (&nomadapi.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(ctx)
		if dep, _, err = d.Nomad.Deployments().Info(dep.ID, q); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("release of %s is not healthy after %s (it goes on in the background; see `dyno ps --app %s`)", app, timeout, app)
			}
			return fmt.Errorf("failed to follow the deployment of %s: %w", app, err)
		}
		index = dep.ModifyIndex
		line := deploymentLine(dep)
		if line != last {
			d.progress("    %s", line)
			last = line
		}
		if dep.Status == nomadapi.DeploymentStatusRunning && !failed && noStack == "" {
			noStack = d.noStackHost(ctx, app, dep.JobModifyIndex)
		}
		if dep.Status == nomadapi.DeploymentStatusRunning && (unhealthy(dep) || noStack != "") && !failed {
			// A dyno of the release failed its checks or crashed, or no host has the
			// stack the release needs: fail the release now rather than at its
			// deadline, so that Nomad reverts it at once.
			failed = true
			if _, _, err := d.Nomad.Deployments().Fail(dep.ID, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
				return fmt.Errorf("failed to stop the failing release of %s: %w", app, err)
			}
		}
		switch dep.Status {
		case nomadapi.DeploymentStatusSuccessful:
			return nil
		case nomadapi.DeploymentStatusFailed, nomadapi.DeploymentStatusCancelled:
			if noStack != "" {
				return fmt.Errorf("release of %s failed: %w (%s); rebuild it on the hosts' stack with `dyno deploy`, or add a host with that stack; the previous release keeps serving", app, ErrNoStackHost, noStack)
			}
			return fmt.Errorf("release of %s failed: %s%s", app, dep.StatusDescription, d.failureHint(ctx, app, dep))
		}
	}
}

// ErrNoStackHost means that no host of the grid has the stack a release's slug was
// built on, so its new dynos cannot be placed anywhere.
var ErrNoStackHost = errors.New("no host of the grid has the stack its slug was built on")

// noStackHost says why no host of the grid can take the dynos of app's job change at
// modifyIndex, when that is because none has the stack its slug was built on: Nomad
// filtered out every host it evaluated, some of them by the stack's constraints
// (addStack). It returns "" otherwise: a grid that is only full waits for room.
func (d *Deployer) noStackHost(ctx context.Context, app string, modifyIndex uint64) string {
	evals, _, err := d.Nomad.Jobs().Evaluations(app, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return ""
	}
	for _, e := range evals {
		if e.JobModifyIndex < modifyIndex {
			continue
		}
		for _, m := range e.FailedTGAllocs {
			if why := stackFiltered(m); why != "" {
				return why
			}
		}
	}
	return ""
}

// stackFiltered says which constraints of the stack filtered hosts out of a placement
// that no host passed, or "".
func stackFiltered(m *nomadapi.AllocationMetric) string {
	if m == nil || m.NodesEvaluated == 0 || m.NodesFiltered < m.NodesEvaluated {
		return ""
	}
	var why []string
	for c, n := range m.ConstraintFiltered {
		if strings.Contains(c, "${attr."+AttrStack) {
			why = append(why, fmt.Sprintf("%s filtered %d of %d hosts", c, n, m.NodesEvaluated))
		}
	}
	sort.Strings(why)
	return strings.Join(why, ", ")
}

// timeout is how long the deployer waits for new dynos to be healthy.
func (d *Deployer) timeout() time.Duration {
	if d.Timeout == 0 {
		return 5 * time.Minute
	}
	return d.Timeout
}

// settle waits until a deployment of a scale of app that still runs ends: Nomad
// refuses to scale a job while a deployment of it runs, and a scale that returned once
// its dynos were routed leaves Nomad's deployment running for its min_healthy_time.
// A release's deployment (one with a canary) is not waited for: Nomad's refusal
// says the app is being released.
func (d *Deployer) settle(ctx context.Context, app string) error {
	dep, _, err := d.Nomad.Jobs().LatestDeployment(app, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil || dep == nil || dep.Status != nomadapi.DeploymentStatusRunning {
		return nil // Nomad's answer to the scale says what is wrong, if anything
	}
	for _, s := range dep.TaskGroups {
		if s.DesiredCanaries > 0 {
			return nil
		}
	}
	d.progress("    waiting for Nomad to count the previous scale's dynos healthy")
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	return d.follow(ctx, app, dep, d.timeout())
}

// deploymentOf returns the deployment Nomad made for the job change at modifyIndex, or
// nil when it made none. Nomad creates a deployment while it evaluates the change, so
// once no evaluation of the job is pending, a missing deployment means there is none.
func (d *Deployer) deploymentOf(ctx context.Context, app string, modifyIndex uint64) (*nomadapi.Deployment, error) {
	for {
		q := (&nomadapi.QueryOptions{}).WithContext(ctx)
		dep, _, err := d.Nomad.Jobs().LatestDeployment(app, q)
		if err != nil {
			return nil, fmt.Errorf("failed to follow the deployment of %s: %w", app, err)
		}
		if dep != nil && dep.JobModifyIndex >= modifyIndex {
			return dep, nil
		}
		evals, _, err := d.Nomad.Jobs().Evaluations(app, q)
		if err != nil {
			return nil, fmt.Errorf("failed to follow %s: %w", app, err)
		}
		pending := false
		for _, e := range evals {
			if e.Status == "pending" && e.JobModifyIndex >= modifyIndex {
				pending = true
			}
		}
		if !pending {
			if dep, _, err = d.Nomad.Jobs().LatestDeployment(app, q); err == nil && dep != nil && dep.JobModifyIndex >= modifyIndex {
				return dep, nil
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s was not scheduled in time: %w", app, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func unhealthy(dep *nomadapi.Deployment) bool {
	for _, s := range dep.TaskGroups {
		if s.UnhealthyAllocs > 0 {
			return true
		}
	}
	return false
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
			if why := failureOf(st); why != "" {
				return fmt.Sprintf(" (%s: %s); the previous release keeps serving", task, why)
			}
		}
	}
	return "; the previous release keeps serving"
}

// failureOf is the last event of a task that says why it failed: a driver failure, an
// exit, a failing event. Nomad's "Not Restarting" that follows says only that it gave up,
// so it comes after the cause it follows.
func failureOf(st *nomadapi.TaskState) string {
	if st == nil {
		return ""
	}
	gaveUp := ""
	for i := len(st.Events) - 1; i >= 0; i-- {
		e := st.Events[i]
		msg := e.DisplayMessage
		switch {
		case msg == "":
		case e.Type == nomadapi.TaskNotRestarting:
			if gaveUp == "" {
				gaveUp = fmt.Sprintf("%s: %s", e.Type, msg)
			}
		case e.FailsTask || e.Type == nomadapi.TaskTerminated || e.Type == nomadapi.TaskDriverFailure:
			if gaveUp != "" {
				return fmt.Sprintf("%s: %s; %s", e.Type, msg, gaveUp)
			}
			return fmt.Sprintf("%s: %s", e.Type, msg)
		}
	}
	return gaveUp
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

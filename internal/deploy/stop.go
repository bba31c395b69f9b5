package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// StopDyno stops one dyno, the allocation allocID of job jobID, as Heroku's
// `ps:stop DYNO` does. A dyno of the app's formation stops and Nomad starts another in
// its place, since the formation's count is unchanged: stopping it for good is a scale
// down. A one-off dyno or a scheduled run stops for good; its job stays, dead, so that
// its logs remain readable until Nomad's job garbage collection.
func (d *Deployer) StopDyno(ctx context.Context, app, jobID, allocID string) error {
	q := (&nomadapi.WriteOptions{}).WithContext(ctx)
	if jobID != app {
		if _, _, err := d.Nomad.Jobs().Deregister(jobID, false, q); err != nil {
			return fmt.Errorf("failed to stop %s: %w", jobID, err)
		}
		d.removeEnvCopy(ctx, "nomad/jobs/"+jobID)
		return d.waitAllocDone(ctx, allocID)
	}
	if _, err := d.Nomad.Allocations().Stop(&nomadapi.Allocation{ID: allocID}, (&nomadapi.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to stop dyno %s: %w", allocID, err)
	}
	return d.waitAllocDone(ctx, allocID)
}

// StopProcess stops every dyno of a process type of the app's formation at once, as
// Heroku's `ps:stop TYPE` does: the type's count is unchanged, so Nomad starts a new
// dyno in place of each (to stop them for good is a scale to 0). It returns how many
// dynos stopped, once they all have.
func (d *Deployer) StopProcess(ctx context.Context, app, process string) (int, error) {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return 0, err
	}
	if _, ok := cur.Counts[process]; !ok {
		return 0, fmt.Errorf("%s has no process type %q (it has: %s)", app, process, strings.Join(SortedKeys(cur.Counts), ", "))
	}
	allocs, _, err := d.Nomad.Jobs().Allocations(app, false, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("failed to list the %s dynos: %w", process, err)
	}
	var stopped []string
	for _, a := range allocs {
		if a.TaskGroup != process || a.DesiredStatus != nomadapi.AllocDesiredStatusRun ||
			(a.ClientStatus != nomadapi.AllocClientStatusRunning && a.ClientStatus != nomadapi.AllocClientStatusPending) {
			continue
		}
		if _, err := d.Nomad.Allocations().Stop(&nomadapi.Allocation{ID: a.ID}, (&nomadapi.QueryOptions{}).WithContext(ctx)); err != nil {
			return len(stopped), fmt.Errorf("failed to stop dyno %s: %w", a.ID, err)
		}
		stopped = append(stopped, a.ID)
	}
	for _, id := range stopped {
		if err := d.waitAllocDone(ctx, id); err != nil {
			return len(stopped), err
		}
	}
	return len(stopped), nil
}

// waitAllocDone waits, within the deployer's timeout, until the allocation's tasks
// have ended.
func (d *Deployer) waitAllocDone(ctx context.Context, allocID string) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	for {
		a, _, err := d.Nomad.Allocations().Info(allocID, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("failed to follow the stopped dyno: %w", err)
		}
		if a.ClientTerminalStatus() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the dyno did not stop in time: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

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

// StopProcess stops every dyno of a process type of the app's formation, as Heroku's
// `ps:stop TYPE` does: it scales the type to 0, within the spec's min, so that they
// stay stopped until `dyno ps:scale` starts them again. It returns how many dynos
// stopped.
func (d *Deployer) StopProcess(ctx context.Context, app, process string) (int, error) {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return 0, err
	}
	count, ok := cur.Counts[process]
	if !ok {
		return 0, fmt.Errorf("%s has no process type %q (it has: %s)", app, process, strings.Join(SortedKeys(cur.Counts), ", "))
	}
	if lo, _, ok := scaleRange(cur.Job.LookupTaskGroup(process)); ok && lo > 0 {
		return 0, fmt.Errorf("process type %s of %s runs at least %d dynos (its min in the app spec), so its dynos cannot all stop; stop one with `dyno ps:stop %s.1`, which Nomad replaces, or set min = 0 in the spec and deploy", process, app, lo, process)
	}
	if count == 0 {
		return 0, nil
	}
	if err := d.settle(ctx, app); err != nil {
		return 0, err
	}
	zero := 0
	resp, _, err := d.Nomad.Jobs().Scale(app, process, &zero, "dyno ps:stop "+process, false, nil, (&nomadapi.WriteOptions{}).WithContext(ctx))
	if err != nil && strings.Contains(err.Error(), "active deployment") {
		return 0, fmt.Errorf("%s is being released; stop its dynos once the release is done (see `dyno ps --app %s`)", app, app)
	}
	if err != nil {
		return 0, fmt.Errorf("failed to stop the %s dynos: %w", process, err)
	}
	d.progress("    %s: %d -> 0 dynos", process, count)
	return count, d.WaitHealthy(ctx, app, resp.JobModifyIndex)
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

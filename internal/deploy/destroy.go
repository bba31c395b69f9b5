package deploy

import (
	"context"
	"fmt"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// Destroy stops the app's dynos, purges its job (releases included) and its release
// phases' jobs, and removes its config variables. It returns once no dyno of the app runs.
func (d *Deployer) Destroy(ctx context.Context, app string) error {
	if _, err := d.Current(ctx, app); err != nil {
		return err
	}
	d.progress("==> Stopping the dynos of %s", app)
	if _, _, err := d.Nomad.Jobs().DeregisterOpts(app, &nomadapi.DeregisterOptions{Purge: false}, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to stop %s: %w", app, err)
	}
	if err := d.waitStopped(ctx, app); err != nil {
		return err
	}
	if _, _, err := d.Nomad.Jobs().DeregisterOpts(app, &nomadapi.DeregisterOptions{Purge: true}, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to purge %s: %w", app, err)
	}
	phases, err := d.ReleasePhases(ctx, app)
	if err != nil {
		return err
	}
	for _, p := range phases {
		if _, _, err := d.Nomad.Jobs().DeregisterOpts(p.JobID, &nomadapi.DeregisterOptions{Purge: true}, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
			return fmt.Errorf("failed to remove the release phase of %s %s: %w", app, p.Release, err)
		}
	}
	vars, _, err := d.Nomad.Variables().PrefixList("nomad/jobs/"+app+"/", (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("failed to list the config of %s: %w", app, err)
	}
	for _, v := range vars {
		if _, err := d.Nomad.Variables().Delete(v.Path, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
			return fmt.Errorf("failed to remove %s: %w", v.Path, err)
		}
	}
	return nil
}

func (d *Deployer) waitStopped(ctx context.Context, app string) error {
	deadline := time.Now().Add(KillTimeout + time.Minute)
	for {
		allocs, _, err := d.Nomad.Jobs().Allocations(app, false, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("failed to follow %s: %w", app, err)
		}
		running := 0
		for _, a := range allocs {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning || a.ClientStatus == nomadapi.AllocClientStatusPending {
				running++
			}
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d dynos of %s still run after %s", running, app, KillTimeout+time.Minute)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

package cli

import (
	"context"
	"fmt"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// releasePhaseDynos are the dynos of the app's release phases that Nomad still keeps
// and that started, newest first, named release.vN after their release: `dyno logs`
// shows their output beside the running dynos'.
func releasePhaseDynos(ctx context.Context, d *deploy.Deployer, app string) ([]Dyno, error) {
	phases, err := d.ReleasePhases(ctx, app)
	if err != nil {
		return nil, err
	}
	var dynos []Dyno
	for _, p := range phases {
		allocs, _, err := d.Nomad.Jobs().Allocations(p.JobID, false, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("failed to read the release phase of %s: %w", p.Release, err)
		}
		for _, a := range allocs {
			st := a.TaskStates[appspec.ReleaseProcess]
			if st == nil || st.StartedAt.IsZero() {
				continue // it never ran, and has no output
			}
			dynos = append(dynos, Dyno{Name: deploy.ReleasePhaseDyno(p.Release), Process: appspec.ReleaseProcess,
				State: st.State, Host: a.NodeName, Release: p.Release, Since: st.StartedAt, AllocID: a.ID})
		}
	}
	return dynos, nil
}

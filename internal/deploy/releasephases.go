package deploy

import (
	"context"
	"fmt"
	"sort"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// keptReleasePhases is how many release phase jobs of an app Nomad keeps at most, with
// their output: each release phase purges the oldest beyond it (Nomad's own job garbage
// collection may remove them sooner).
const keptReleasePhases = 5

// ReleasePhase is a release phase whose job Nomad still keeps.
type ReleasePhase struct {
	JobID   string
	Release string
	// Status is Nomad's job status: pending, running or dead.
	Status    string
	Submitted time.Time
}

// ReleasePhases lists the app's release phases that Nomad still keeps, newest first.
func (d *Deployer) ReleasePhases(ctx context.Context, app string) ([]ReleasePhase, error) {
	opts := &nomadapi.JobListOptions{Fields: &nomadapi.JobListFields{Meta: true}}
	stubs, _, err := d.Nomad.Jobs().ListOptions(opts, (&nomadapi.QueryOptions{Prefix: app + "-run-"}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to list the release phases of %s: %w", app, err)
	}
	var phases []ReleasePhase
	for _, s := range stubs {
		if s.Meta[MetaApp] != app || s.Meta[MetaReleasePhase] == "" {
			continue
		}
		phases = append(phases, ReleasePhase{JobID: s.ID, Release: s.Meta[MetaReleasePhase], Status: s.Status, Submitted: time.Unix(0, s.SubmitTime)})
	}
	sort.Slice(phases, func(i, j int) bool { return phases[i].Submitted.After(phases[j].Submitted) })
	return phases, nil
}

// pruneReleasePhases purges the app's oldest ended release phases, leaving room for
// one more within keptReleasePhases. It is best effort: a phase left is removed later.
func (d *Deployer) pruneReleasePhases(ctx context.Context, app string) {
	phases, err := d.ReleasePhases(ctx, app)
	if err != nil {
		return
	}
	for i, p := range phases {
		if i >= keptReleasePhases-1 && p.Status == "dead" {
			_, _, _ = d.Nomad.Jobs().DeregisterOpts(p.JobID, &nomadapi.DeregisterOptions{Purge: true}, (&nomadapi.WriteOptions{}).WithContext(ctx))
		}
	}
}

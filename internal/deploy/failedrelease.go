package deploy

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// keptFailedReleases is how many failed releases of an app are remembered.
const keptFailedReleases = 20

// maxFailureReason bounds the reason a failed release keeps.
const maxFailureReason = 1024

// FailedRelease is a release that never reached Nomad because its release phase
// failed. Its number is taken: the next release has the one after it.
type FailedRelease struct {
	Version     int
	Description string
	Reason      string
	Created     time.Time
}

func failedReleasesPrefix(app string) string { return "nomad/jobs/" + app + "/releases/" }

// recordFailedRelease remembers release r as failed, for `dyno releases`, in a Nomad
// Variable of its own, and forgets the oldest beyond keptFailedReleases.
func (d *Deployer) recordFailedRelease(ctx context.Context, r Release, reason string) error {
	if len(reason) > maxFailureReason {
		reason = reason[:maxFailureReason] + "..."
	}
	v := &nomadapi.Variable{Path: failedReleasesPrefix(r.Spec.Name) + ReleaseName(r.Version), Items: nomadapi.VariableItems{
		"description": r.Description, "reason": reason, "created": time.Now().UTC().Format(time.RFC3339),
	}}
	if _, _, err := d.Nomad.Variables().Update(v, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to record the failed release %s: %w", ReleaseName(r.Version), err)
	}
	versions, err := d.failedVersions(ctx, r.Spec.Name)
	if err != nil {
		return err
	}
	for i := 0; i+keptFailedReleases < len(versions); i++ {
		_, _ = d.Nomad.Variables().Delete(failedReleasesPrefix(r.Spec.Name)+ReleaseName(versions[i]), (&nomadapi.WriteOptions{}).WithContext(ctx))
	}
	return nil
}

// failedVersions lists the numbers of the app's remembered failed releases, in order.
func (d *Deployer) failedVersions(ctx context.Context, app string) ([]int, error) {
	metas, _, err := d.Nomad.Variables().PrefixList(failedReleasesPrefix(app), (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to list the failed releases of %s: %w", app, err)
	}
	var versions []int
	for _, m := range metas {
		if n, err := strconv.Atoi(strings.TrimPrefix(m.Path, failedReleasesPrefix(app)+"v")); err == nil {
			versions = append(versions, n)
		}
	}
	sort.Ints(versions)
	return versions, nil
}

// FailedReleases returns the app's remembered failed releases, newest first.
func (d *Deployer) FailedReleases(ctx context.Context, app string) ([]FailedRelease, error) {
	versions, err := d.failedVersions(ctx, app)
	if err != nil {
		return nil, err
	}
	var out []FailedRelease
	for i := len(versions) - 1; i >= 0; i-- {
		path := failedReleasesPrefix(app) + ReleaseName(versions[i])
		v, _, err := d.Nomad.Variables().Read(path, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", path, err)
		}
		created, _ := time.Parse(time.RFC3339, v.Items["created"])
		out = append(out, FailedRelease{Version: versions[i], Description: v.Items["description"], Reason: v.Items["reason"], Created: created})
	}
	return out, nil
}

package autoscale

import (
	"context"
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// policyCache keeps the policies read from Nomad by ID, re-read when they change.
type policyCache map[string]cachedPolicy

type cachedPolicy struct {
	modify uint64
	policy Policy
	err    error
}

// policies lists the enabled autoscale policies of every app's web process type.
// Policies the autoscaler does not act on are left out: disabled ones, those of jobs
// that are not apps (an app's job is in the namespace of its name), of other groups,
// and invalid ones, which are returned with why in skipped when first read.
func (c policyCache) policies(ctx context.Context, nomad *nomadapi.Client) (ps []Policy, skipped map[string]error, err error) {
	stubs, _, err := nomad.Scaling().ListPolicies((&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to list Nomad's scaling policies: %w", err)
	}
	seen := map[string]bool{}
	skipped = map[string]error{}
	for _, s := range stubs {
		ns, job, group := s.Target["Namespace"], s.Target["Job"], s.Target["Group"]
		if !s.Enabled || group != "web" || ns != job || appspec.ValidateAppName(job) != nil {
			continue
		}
		seen[s.ID] = true
		cp, ok := c[s.ID]
		fresh := !ok || cp.modify != s.ModifyIndex
		if fresh {
			cp = cachedPolicy{modify: s.ModifyIndex}
			np, _, err := nomad.Scaling().GetPolicy(s.ID, (&nomadapi.QueryOptions{Namespace: ns}).WithContext(ctx))
			if err != nil {
				return nil, nil, fmt.Errorf("failed to read scaling policy %s of %s: %w", s.ID, job, err)
			}
			cp.policy, cp.err = fromNomad(job, np)
			c[s.ID] = cp
		}
		if cp.err != nil {
			if fresh {
				skipped[job] = cp.err
			}
			continue
		}
		ps = append(ps, cp.policy)
	}
	for id := range c {
		if !seen[id] {
			delete(c, id)
		}
	}
	return ps, skipped, nil
}

// fromNomad checks a Nomad scaling policy as the spec would have: whoever wrote the
// job, the autoscaler acts within the spec's limits only.
func fromNomad(app string, np *nomadapi.ScalingPolicy) (Policy, error) {
	if np.Min == nil || np.Max == nil {
		return Policy{}, fmt.Errorf("policy of %s has no min or max", app)
	}
	lo, hi := *np.Min, *np.Max
	if lo < 1 || hi < lo || hi > appspec.MaxCount {
		return Policy{}, fmt.Errorf("policy of %s: min %d and max %d are not 1 <= min <= max <= %d", app, lo, hi, appspec.MaxCount)
	}
	a, err := appspec.AutoscaleFromPolicy(np.Policy)
	if err != nil {
		return Policy{}, fmt.Errorf("policy of %s: %w", app, err)
	}
	return Policy{App: app, Group: "web", Min: int(lo), Max: int(hi), Target: a.P95QueueWait, MaxCostMicroUSD: a.MaxCostMicroUSD}, nil
}

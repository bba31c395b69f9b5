package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// waitRouted waits until the added web dynos that Nomad placed for the scale
// registered at modifyIndex and evaluated by evalID pass their health check in Consul: the router routes a dyno as soon as it
// passes. It returns false, nil when it cannot tell (Consul refuses the query, or a
// new dyno failed): the caller then follows the scale's deployment instead, which
// says why a dyno failed.
func (d *Deployer) waitRouted(ctx context.Context, app, evalID string, modifyIndex uint64, added int) (bool, error) {
	allocs, ok, err := d.placed(ctx, evalID, modifyIndex, added)
	if err != nil || !ok {
		return false, err
	}
	var index uint64
	for {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: 2 * time.Second}).WithContext(ctx)
		entries, meta, err := d.Consul.Health().Service(ServiceName(app), "dyno", true, q)
		if err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("the new dynos of %s are not routed in time: %w", app, ctx.Err())
			}
			d.progress("    cannot read Consul (%v); waiting for Nomad's deployment instead", err)
			return false, nil
		}
		index = meta.LastIndex
		passing := 0
		for _, id := range allocs {
			if passes(entries, id) {
				passing++
			}
		}
		if passing == len(allocs) {
			return true, nil
		}
		if failed, err := d.anyFailed(ctx, app, allocs); err != nil || failed {
			return false, err
		}
	}
}

// placed waits until Nomad's scheduler has placed the added dynos of the scale
// registered at modifyIndex and evaluated by evalID, and returns their allocation IDs;
// ok is false when the evaluation ended with fewer placed (the grid is full).
func (d *Deployer) placed(ctx context.Context, evalID string, modifyIndex uint64, added int) (ids []string, ok bool, err error) {
	var index uint64
	settled := false
	for {
		q := (&nomadapi.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(ctx)
		allocs, meta, err := d.Nomad.Evaluations().Allocations(evalID, q)
		if err != nil {
			return nil, false, fmt.Errorf("failed to follow the scale's evaluation %s: %w", evalID, err)
		}
		index = meta.LastIndex
		ids = ids[:0]
		for _, a := range allocs {
			// The evaluation also updates the running dynos in place to the new job
			// version; the new ones were created after the scale.
			if a.DesiredStatus == nomadapi.AllocDesiredStatusRun && a.CreateIndex > modifyIndex {
				ids = append(ids, a.ID)
			}
		}
		if len(ids) >= added {
			return ids, true, nil
		}
		if settled {
			return ids, false, nil
		}
		eval, _, err := d.Nomad.Evaluations().Info(evalID, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("failed to follow the scale's evaluation %s: %w", evalID, err)
		}
		if eval.Status != "pending" {
			// Its placements are written: look once more, without blocking.
			settled, index = true, 0
		}
	}
}

// passes says whether the web dyno of allocation allocID is among entries: Nomad names
// the service of a task _nomad-task-<alloc id>-<task>-<service>-<port>.
func passes(entries []*consulapi.ServiceEntry, allocID string) bool {
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Service.ID, "_nomad-task-")
		if id, _, found := strings.Cut(rest, "-web-"); ok && found && id == allocID {
			return true
		}
	}
	return false
}

// anyFailed says whether a dyno of allocs, allocations of app's job, failed or stopped
// on its own. One read of the job's allocations answers for all of them.
func (d *Deployer) anyFailed(ctx context.Context, app string, allocs []string) (bool, error) {
	stubs, _, err := d.Nomad.Jobs().Allocations(app, false, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("failed to follow the dynos of %s: %w", app, err)
	}
	byID := make(map[string]*nomadapi.AllocationListStub, len(stubs))
	for _, a := range stubs {
		byID[a.ID] = a
	}
	for _, id := range allocs {
		a, ok := byID[id]
		if !ok {
			return false, fmt.Errorf("failed to follow dyno %s: Nomad no longer has it", id)
		}
		if a.ClientStatus == nomadapi.AllocClientStatusFailed || a.ClientStatus == nomadapi.AllocClientStatusComplete ||
			a.ClientStatus == nomadapi.AllocClientStatusLost {
			return true, nil
		}
		for _, st := range a.TaskStates {
			if st.Restarts > 0 || st.Failed {
				return true, nil
			}
		}
	}
	return false, nil
}

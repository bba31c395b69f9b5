package router

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/apierr"
)

// Any Nomad job names the Consul services its tasks register, and Nomad registers them
// with a Consul token of its own: an app's deploy token can register a job whose service
// is "<another app>-web", tagged as that app's dynos are. With Nomad's address (-nomad)
// the router routes an instance of "<app>-web" only when Nomad says its allocation is of
// the job <app> in the namespace <app>, the app's own job that only its deployers write.
// Nomad names the services it registers "_nomad-task-<allocation ID>-..."; an
// allocation's namespace and job never change, so each is read once per instance.
// Without -nomad there is no one to ask, and every passing instance is routed.

// nomadServicePrefix starts the ID of every service Nomad registers in Consul.
const nomadServicePrefix = "_nomad-task-"

// allocIDOf returns the allocation ID in the ID of a service Nomad registered.
func allocIDOf(serviceID string) (string, bool) {
	rest, ok := strings.CutPrefix(serviceID, nomadServicePrefix)
	if !ok || len(rest) < 36 || (len(rest) > 36 && rest[36] != '-') {
		return "", false
	}
	id := rest[:36]
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return "", false
		}
	}
	return id, true
}

// ownDynos keeps the instances that are dynos of app's own job, as Nomad says, with
// known the verdicts already reached (service ID: own), which it brings up to date: it
// drops the instances gone, and adds those read now. An instance Nomad could not be read
// for is left out until it can; the error says why. checks, if not nil, gets the HTTP
// checks the job gives each own dyno's service (probe.go), kept as known is.
func (r *Router) ownDynos(ctx context.Context, app string, insts []Instance, known map[string]bool, checks map[string][]httpCheck) (own []Instance, failed error) {
	if r.nomad == nil {
		return insts, nil
	}
	present := make(map[string]bool, len(insts))
	for _, in := range insts {
		present[in.ID] = true
		mine, ok := known[in.ID]
		if !ok {
			var err error
			var hcs []httpCheck
			mine, hcs, err = r.allocOfApp(ctx, app, in)
			if err != nil {
				failed = fmt.Errorf("cannot tell from Nomad whose dyno %s is (not routed until it can): %w", in.ID, err)
				continue
			}
			known[in.ID] = mine
			if mine && checks != nil && len(hcs) > 0 {
				checks[in.ID] = hcs
			}
			if !mine {
				r.metrics.foreignInstances.WithLabelValues(app).Inc()
				r.log.Warn("an instance of the app's service is not at a host port of a dyno of the app's own job: not routed", "app", app, "service_id", in.ID, "address", in.addr())
			}
		}
		if mine {
			own = append(own, in)
		}
	}
	for id := range known {
		if !present[id] {
			delete(known, id)
			delete(checks, id)
		}
	}
	return own, failed
}

// allocOfApp says whether the service instance in was registered by an allocation of
// the job app in the namespace app, at a host port the allocation holds, and if so, the
// HTTP checks the job gives the app's web service.
func (r *Router) allocOfApp(ctx context.Context, app string, in Instance) (bool, []httpCheck, error) {
	id, ok := allocIDOf(in.ID)
	if !ok {
		return false, nil, nil
	}
	// Nomad finds an allocation by its ID in any namespace.
	a, _, err := r.nomad.Allocations().Info(id, (&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx))
	switch {
	case apierr.IsStatus(err, http.StatusNotFound):
		return false, nil, nil
	case apierr.IsStatus(err, http.StatusForbidden):
		// A token from before this check (policies/nomad/router.hcl without read-job):
		// route as before it, and say so, rather than route nothing.
		if r.unverified.CompareAndSwap(false, true) {
			r.log.Error("the router's Nomad token may not read allocations (read-job): every passing instance of an app's service is routed, also one another app's job registered; give the token policies/nomad/router.hcl", "error", err)
		}
		return true, nil, nil
	case err != nil:
		return false, nil, err
	}
	if a.Namespace != app || a.JobID != app {
		return false, nil, nil
	}
	// A job's service may name any address and port (the router host's loopback
	// among them): only a host port the allocation holds is a dyno's.
	if !holdsPort(a, in) {
		return false, nil, nil
	}
	return true, httpChecksOf(a, app+"-web"), nil
}

// holdsPort says whether the allocation holds the instance's address and port as a host
// port: the only place the router routes to, and probes.
func holdsPort(a *nomadapi.Allocation, in Instance) bool {
	if a == nil || a.AllocatedResources == nil {
		return false
	}
	for _, p := range a.AllocatedResources.Shared.Ports {
		if p.Value == in.Port && p.HostIP == in.Address {
			return true
		}
	}
	return false
}

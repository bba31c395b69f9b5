package router

import (
	"context"
	"fmt"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/agentapi"
)

// The router reads Nomad, when it has Nomad's address, for two things: which apps exist,
// so that an app with no web dyno gets H14 rather than 404, and each app's router log
// key (logserve.go). Its token needs list-jobs and the read of one variable path in
// every namespace (policies/nomad/router.hcl).

func newNomadClient(cfg Config) (*nomadapi.Client, error) {
	c := nomadapi.DefaultConfig()
	c.Address = cfg.NomadAddr
	if !strings.Contains(c.Address, "://") {
		c.Address = "http://" + c.Address
	}
	c.SecretID = cfg.NomadToken
	n, err := agentapi.NewNomad(c)
	if err != nil {
		return nil, fmt.Errorf("invalid nomad address %q: %w", cfg.NomadAddr, err)
	}
	return n, nil
}

// followNomad runs a blocking query of every namespace (query, which answers with its
// meta) again and again until ctx ends, each waiting for a change past the last answer's
// index. A failure is logged once (failed), retried with a backoff, and its end logged
// (back).
func (r *Router) followNomad(ctx context.Context, failed, back string, query func(*nomadapi.QueryOptions) (*nomadapi.QueryMeta, error)) {
	var index uint64
	bo := backoff{}
	failing := false
	for ctx.Err() == nil {
		q := (&nomadapi.QueryOptions{Namespace: "*", WaitIndex: index, WaitTime: blockWait}).WithContext(ctx)
		meta, err := query(q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !failing {
				r.log.Error(failed, "error", err)
				failing = true
			}
			index = 0
			bo.wait(ctx)
			continue
		}
		if failing {
			r.log.Info(back)
			failing = false
		}
		bo.reset()
		index = nextIndex(index, meta.LastIndex)
	}
}

// watchNomadApps follows Nomad's job list and keeps the names of the apps that exist: an
// app is the job of its own name in the namespace of its own name, not stopped.
func (r *Router) watchNomadApps(ctx context.Context) {
	r.followNomad(ctx, "failed to read nomad's jobs; apps without web dynos answer 404 until it is back", "nomad's jobs read again",
		func(q *nomadapi.QueryOptions) (*nomadapi.QueryMeta, error) {
			jobs, meta, err := r.nomad.Jobs().List(q)
			if err != nil {
				return nil, err
			}
			apps := make(map[string]bool, len(jobs))
			for _, j := range jobs {
				if j.ID == j.Namespace && !j.Stop {
					apps[j.ID] = true
				}
			}
			r.nomadApps.Store(&apps)
			r.mu.Lock()
			r.domains.poke() // an app Nomad no longer has gives up its domains
			r.mu.Unlock()
			known := func(app string) bool { return apps[app] || r.appRef(app) != nil }
			r.logRings.keep(known)
			r.logKeys.keep(known)
			return meta, nil
		})
}

// appInNomad says whether Nomad has the app, as last read.
func (r *Router) appInNomad(name string) bool {
	p := r.nomadApps.Load()
	return p != nil && (*p)[name]
}

// appWithoutDynos is the app a Host names when that app exists in Nomad but is not in
// the routing table (it has no web dyno registered), or "".
func (r *Router) appWithoutDynos(host string) string {
	name, ok := strings.CutSuffix(host, "."+r.cfg.Domain)
	if !ok || !r.appInNomad(name) {
		return ""
	}
	return name
}

// Package memcached is the built-in add-on that gives each attachment a memcached of
// its own: a Nomad job addon-memcached-<app>-<id> (exec driver, /usr/bin/memcached on a
// dynamic port, registered in Consul), with its own memory and keyspace, and ASCII
// authentication with credentials kept in a Nomad Variable. It sets MEMCACHED_SERVERS,
// MEMCACHED_USERNAME and MEMCACHED_PASSWORD.
package memcached

import (
	"github.com/dynogrid/dynogrid/plugins/addon"
)

// Name is the add-on's name; the binary is dyno-addon-memcached.
const Name = "memcached"

// Version is this add-on's version.
const Version = "0.1.0"

var plans = []struct {
	addon.Plan
	memoryMB int
}{
	{addon.Plan{Name: "dev", Description: "a memcached of its own with 64 MB of cache"}, 64},
	{addon.Plan{Name: "standard", Description: "a memcached of its own with 256 MB of cache"}, 256},
}

func memoryMB(plan string) int {
	for _, p := range plans {
		if p.Name == plan {
			return p.memoryMB
		}
	}
	return plans[0].memoryMB
}

func (a *Addon) description() addon.Description {
	d := addon.Description{
		Name:        Name,
		Version:     Version,
		Summary:     "memcached: a cache of its own for each attachment, run by Nomad",
		DefaultPlan: "dev",
		EnvVars:     []string{"MEMCACHED_SERVERS"},
	}
	if a.cfg.auth {
		d.EnvVars = append(d.EnvVars, "MEMCACHED_USERNAME", "MEMCACHED_PASSWORD")
	}
	for _, p := range plans {
		d.Plans = append(d.Plans, p.Plan)
	}
	return d
}

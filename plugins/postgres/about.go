// Package postgres is the built-in add-on that gives each app its own PostgreSQL
// database and role on a server the operator runs, and sets DATABASE_URL.
package postgres

import (
	"github.com/dynogrid/dynogrid/plugins/addon"
)

// Name is the add-on's name; the binary is dyno-addon-postgres.
const Name = "postgres"

// Version is this add-on's version.
const Version = "0.1.0"

// plans are the add-on's plans: each sets the role's connection limit.
var plans = []struct {
	addon.Plan
	connLimit int
}{
	{addon.Plan{Name: "dev", Description: "a database and role of its own, at most 20 connections"}, 20},
	{addon.Plan{Name: "standard", Description: "a database and role of its own, at most 100 connections"}, 100},
}

func description() addon.Description {
	d := addon.Description{
		Name:        Name,
		Version:     Version,
		Summary:     "PostgreSQL: a database and a role of its own for each attachment",
		DefaultPlan: "dev",
		EnvVars:     []string{"DATABASE_URL"},
	}
	for _, p := range plans {
		d.Plans = append(d.Plans, p.Plan)
	}
	return d
}

func connLimit(plan string) int {
	for _, p := range plans {
		if p.Name == plan {
			return p.connLimit
		}
	}
	return plans[0].connLimit
}

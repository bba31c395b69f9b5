//go:build race

package router

// underRace: the race detector slows the router and the tests several times over, and
// bounds on timing are widened by it.
const underRace = true

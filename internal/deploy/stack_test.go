package deploy

import (
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestStackFilteredOnlyWhenNoHostHasIt fails a release at once only when Nomad filtered
// out every host it evaluated and the stack's constraints were among the reasons: a
// grid that is full, or has a host with the stack, waits for room.
func TestStackFilteredOnlyWhenNoHostHasIt(t *testing.T) {
	stack := "${attr." + AttrStack + "} = debian-12"
	ruby := "${attr." + AttrStackRuby + "} regexp ^3\\.1\\."
	for _, c := range []struct {
		name string
		m    *nomadapi.AllocationMetric
		want string
	}{
		{"no host has the stack", &nomadapi.AllocationMetric{NodesEvaluated: 2, NodesFiltered: 2, ConstraintFiltered: map[string]int{stack: 1, ruby: 1}},
			ruby + " filtered 1 of 2 hosts, " + stack + " filtered 1 of 2 hosts"},
		{"one host has it but is full", &nomadapi.AllocationMetric{NodesEvaluated: 2, NodesFiltered: 1, NodesExhausted: 1, ConstraintFiltered: map[string]int{stack: 1}}, ""},
		{"hosts without the dyno driver", &nomadapi.AllocationMetric{NodesEvaluated: 1, NodesFiltered: 1, ConstraintFiltered: map[string]int{"missing drivers": 1}}, ""},
		{"no host evaluated", &nomadapi.AllocationMetric{}, ""},
		{"none", nil, ""},
	} {
		if got := stackFiltered(c.m); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

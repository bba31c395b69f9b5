package deploy

import (
	"testing"

	consulapi "github.com/hashicorp/consul/api"
)

// TestPassesFindsTheDynoOfAnAllocation checks that a new dyno is found among Consul's
// passing instances by the service ID Nomad gives it, and never by a prefix of
// another allocation's ID.
func TestPassesFindsTheDynoOfAnAllocation(t *testing.T) {
	t.Parallel()
	entries := []*consulapi.ServiceEntry{
		{Service: &consulapi.AgentService{ID: "_nomad-task-0c2f1a3e-5b6d-7e8f-9a0b-1c2d3e4f5a6b-web-shop-web-http"}},
	}
	if !passes(entries, "0c2f1a3e-5b6d-7e8f-9a0b-1c2d3e4f5a6b") {
		t.Error("the dyno of allocation 0c2f1a3e-... is passing, passes says it is not")
	}
	for _, other := range []string{"0c2f1a3e-5b6d-7e8f-9a0b-1c2d3e4f5a6c", "0c2f1a3e", ""} {
		if passes(entries, other) {
			t.Errorf("passes(%q) = true, want false: no dyno of that allocation is passing", other)
		}
	}
}

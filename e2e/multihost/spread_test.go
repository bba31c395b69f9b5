package multihost

import (
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// TestSpread: two web dynos on a grid of three hosts land on two different hosts, as
// Nomad's allocations and Consul's addresses both say; after a new release (a rolling
// update) too.
func TestSpread(t *testing.T) {
	g := Start(t, Options{Hosts: 3})
	deployThin(t, g, "spread", 2)
	assertSpread(t, g, "spread", "v1")
	newCLI(t, g, "spread").must("config:set", "GREETING=hi")
	assertSpread(t, g, "spread", "v2")
}

func assertSpread(t *testing.T, g *Grid, app, release string) {
	t.Helper()
	consul := g.ConsulClient()
	entries := waitPassing(t, consul, app, 2*time.Minute, "2 passing dynos of "+release, func(e []*consulapi.ServiceEntry) bool {
		return len(e) == 2 && e[0].Service.Meta["release"] == release && e[1].Service.Meta["release"] == release
	})
	allocs := runningAllocs(t, g, app)
	nodes := map[string]string{} // alloc ID -> node name
	for _, a := range allocs {
		nodes[a.ID] = a.NodeName
	}
	hosts := map[string]bool{}
	for _, e := range entries {
		h := g.HostByAddr(e.Service.Address)
		if h == nil {
			t.Fatalf("%s registered at %s, no test host's address", e.Service.Meta["dyno"], e.Service.Address)
		}
		if e.Node.Node != h.Name {
			t.Errorf("%s at %s is registered by Consul node %s, want %s", e.Service.Meta["dyno"], e.Service.Address, e.Node.Node, h.Name)
		}
		var node string
		for id, n := range nodes {
			if strings.Contains(e.Service.ID, id) {
				node = n
			}
		}
		if node != h.Name {
			t.Errorf("%s at %s (%s) runs on Nomad node %q", e.Service.Meta["dyno"], e.Service.Address, h.Name, node)
		}
		hosts[h.Name] = true
	}
	if len(hosts) != 2 {
		for _, a := range allocs {
			full, _, err := g.NomadClient().Allocations().Info(a.ID, nil)
			if err != nil || full.Metrics == nil {
				continue
			}
			t.Logf("alloc %s on %s: nodes evaluated %d, filtered %d, exhausted %d", a.ID[:8], a.NodeName,
				full.Metrics.NodesEvaluated, full.Metrics.NodesFiltered, full.Metrics.NodesExhausted)
			t.Logf("  filtered by constraint %v, by class %v", full.Metrics.ConstraintFiltered, full.Metrics.ClassFiltered)
			for _, sm := range full.Metrics.ScoreMetaData {
				t.Logf("  node %s: norm %.3f scores %v", sm.NodeID[:8], sm.NormScore, sm.Scores)
			}
		}
		t.Fatalf("%s %s: 2 dynos on %d host(s): %s", app, release, len(hosts), describe(entries))
	}
	t.Logf("%s %s: dynos on two hosts: %s", app, release, describe(entries))
}

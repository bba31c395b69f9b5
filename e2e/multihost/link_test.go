package multihost

import (
	"fmt"
	"testing"
	"time"
)

// TestLinkCut cuts the link of the host of one of two dynos under load, then restores
// it: the dyno leaves routing once Consul sees its node fail, the other dyno serves
// every request meanwhile, and after the restore the same dyno (same allocation, never
// restarted) is routed again.
func TestLinkCut(t *testing.T) {
	const app = "link"
	g, entries := twoDynoGrid(t, Options{Hosts: 2}, app)
	load := startLoad(t, g, app)
	r := g.Routers[0]
	routes := func() int {
		st, err := r.Status()
		if err != nil {
			return -1
		}
		return st.Apps[app].Dynos
	}

	e, h, alloc, before := firstDyno(t, g, app, entries)
	consul := g.ConsulClient()
	cutAt := time.Now()
	if err := g.CutLink(h); err != nil {
		t.Fatal(err)
	}
	// A burst of slower requests needs both dynos: the router sends some to the cut one.
	load.Burst(4, "/sleep?ms=200")
	out := waitWithin(t, cutAt, time.Minute, "the dyno of "+h.Name+" out of Consul", func() bool {
		es, err := passing(consul, app)
		return err == nil && !hasService(es, e.Service.ID) && len(es) == 1
	})
	unrouted := waitWithin(t, cutAt, time.Minute, "the dyno of "+h.Name+" out of the router's table", func() bool { return routes() == 1 })
	// The other dyno serves alone for a while.
	serveMore(t, load)
	node := nodeStatus(t, g, h)
	restoredAt := time.Now()
	cutFor := restoredAt.Sub(cutAt)
	if err := g.RestoreLink(h); err != nil {
		t.Fatal(err)
	}
	// Serf reconnects a failed member every 30 s at most.
	back := waitWithin(t, restoredAt, 2*time.Minute, "the dyno of "+h.Name+" back in Consul", func() bool {
		es, err := passing(consul, app)
		return err == nil && hasService(es, e.Service.ID) && len(es) == 2
	})
	rerouted := waitWithin(t, restoredAt, time.Minute, "the dyno of "+h.Name+" back in the router's table", func() bool { return routes() == 2 })
	serveMore(t, load)
	results := load.Stop()
	// A request the router had just sent to the cut dyno waits for the link (TCP
	// retransmits) or times out (H12); one connecting to it times out and goes to
	// the other dyno.
	s := checkFailures(t, results, cutAt, 1, "H12")
	cutDyno := e.Service.Meta["dyno"]
	var slow []string
	for _, res := range results {
		if res.Sent.After(cutAt) && res.Sent.Before(restoredAt) && res.Done.Sub(res.Sent) > time.Second {
			slow = append(slow, fmt.Sprintf("%s answered by %s after %s", res.ID, res.Dyno, ms(res.Done.Sub(res.Sent))))
		}
	}
	if n, state := restarts(t, g, alloc.ID); n != before || state != "running" {
		t.Errorf("the dyno was restarted (%d restarts, state %q) while its link was cut", n, state)
	}
	if got := runningAllocs(t, g, app); len(got) != 2 {
		t.Errorf("%d running allocations, want the same 2", len(got))
	}
	t.Logf("link cut of %s's host: %s; slower than 1 s during the cut: %v; the dyno left Consul after %s, the router's table after %s; the link was cut for %s, Nomad node %s then; after the restore the same dyno was back in Consul after %s, in the router's table after %s",
		cutDyno, s, slow, ms(out), ms(unrouted), ms(cutFor), node, ms(back), ms(rerouted))
}

// nodeStatus is host h's Nomad node status.
func nodeStatus(t *testing.T, g *Grid, h *Host) string {
	t.Helper()
	nodes, _, err := g.NomadClient().Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name == h.Name {
			return n.Status
		}
	}
	return "unknown"
}

package multihost

import (
	"testing"
	"time"
)

// TestHostConsulAgentLoss kills the Consul agent of one dyno's host under load, then
// starts it again: the site keeps serving (the dyno leaves routing with its node's
// health, the other serves), and the dyno is routed again once its agent is back.
func TestHostConsulAgentLoss(t *testing.T) {
	const app = "agent"
	g, entries := twoDynoGrid(t, Options{Hosts: 2}, app)
	load := startLoad(t, g, app)

	e, h, alloc, before := firstDyno(t, g, app, entries)
	consul := g.ConsulClient()

	killedAt := time.Now()
	agent, err := g.KillProcesses(h, "consul agent")
	if err != nil {
		t.Fatal(err)
	}
	out := waitWithin(t, killedAt, time.Minute, "the dyno of "+h.Name+" out of Consul", func() bool {
		es, err := passing(consul, app)
		return err == nil && !hasService(es, e.Service.ID) && len(es) == 1
	})
	waitWithin(t, killedAt, time.Minute, "the killed Consul agent gone", func() bool { return !alive(agent) })
	startedAt := time.Now()
	if err := g.StartConsul(h); err != nil {
		t.Fatal(err)
	}
	back := waitWithin(t, startedAt, time.Minute, "the dyno of "+h.Name+" back in Consul", func() bool {
		es, err := passing(consul, app)
		return err == nil && hasService(es, e.Service.ID) && len(es) == 2
	})
	serveMore(t, load)
	s := checkFailures(t, load.Stop(), killedAt, 0)
	if n, state := restarts(t, g, alloc.ID); n != before || state != "running" {
		t.Errorf("the dyno was restarted (%d restarts, state %q) while its Consul agent was away", n, state)
	}
	t.Logf("host consul agent loss: %s; dyno out of Consul after %s; back in Consul %s after its agent started again",
		s, ms(out), ms(back))
}

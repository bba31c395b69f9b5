package multihost

import (
	"fmt"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/router"
)

// TestRouterRestart stops the router gracefully (SIGTERM) under load and starts it
// again: every request it had accepted, in flight or queued, is answered 200; the others
// were refused at connect while no router listened, so no router ever had them.
func TestRouterRestart(t *testing.T) {
	const app = "reboot"
	g, _ := twoDynoGrid(t, Options{Hosts: 2}, app)
	r := g.Routers[0]
	load := startLoadOn(t, []string{r.Addr}, app, "/sleep?ms=80")

	// A burst of slower requests fills both dynos and the router's queue: the SIGTERM
	// finds requests in flight and queued.
	load.Burst(6, "/sleep?ms=300")
	var queued int
	waitWithin(t, time.Now(), time.Minute, "requests queued in the router", func() bool {
		st, err := r.Status()
		queued = st.Apps[app].Waiting
		return err == nil && queued > 0
	})
	stopAt := time.Now()
	if err := g.StopRouter(r, syscall.SIGTERM, time.Minute); err != nil {
		t.Fatal(err)
	}
	drained := time.Since(stopAt)
	if err := g.StartRouter(r); err != nil {
		t.Fatal(err)
	}
	listening := time.Since(stopAt)
	serveMore(t, load)
	results := load.Stop()

	s := Summarize(results)
	inFlight, refusedN := 0, 0
	var firstOK time.Duration
	for _, res := range results {
		ok := res.Status == 200 && res.Err == nil
		// A request refused at connect never reached the router, however early it was
		// launched (its dial may come after the listener closed).
		if res.Sent.Before(stopAt) && res.Done.After(stopAt) && !res.Refused {
			inFlight++
			if !ok {
				t.Errorf("request %s, in flight when the router got SIGTERM, failed: status %d code %q err %v",
					res.ID, res.Status, res.Code, res.Err)
			}
		}
		switch {
		case ok:
			if since := res.Sent.Sub(stopAt); since > 0 && res.Sent.After(stopAt.Add(drained)) && (firstOK == 0 || since < firstOK) {
				firstOK = since
			}
		case res.Refused:
			refusedN++
			if at := res.Sent.Sub(stopAt); res.Done.Before(stopAt) || at > listening {
				t.Errorf("request %s refused at connect %s after the SIGTERM, while a router listened (stopped %s after, listening again %s after)",
					res.ID, ms(at), ms(drained), ms(listening))
			}
		default:
			t.Errorf("request %s, accepted by the router, was lost: sent %s after the SIGTERM, status %d code %q err %v",
				res.ID, res.Sent.Sub(stopAt).Round(time.Millisecond), res.Status, res.Code, res.Err)
		}
	}
	if inFlight < queued+2 {
		t.Errorf("%d requests in flight when the router got SIGTERM, want at least %d (two dynos busy, %d queued)", inFlight, queued+2, queued)
	}
	t.Logf("router restart: %s; %d in flight at SIGTERM (%d of them queued in the router), all answered; router exited %s after SIGTERM, listened again after %s, first request answered 200 sent %s after SIGTERM; %d refused at connect meanwhile (never accepted)",
		s, inFlight, queued, msec(drained), msec(listening), msec(firstOK), refusedN)
}

func msec(d time.Duration) string { return d.Round(time.Millisecond).String() }

// owningID returns a router ID, beside other, under which a router owns app in cluster
// mode.
func owningID(other, app string) string {
	for k := 0; ; k++ {
		if id := fmt.Sprintf("router-b%d", k); router.Owner([]string{other, id}, app) == id {
			return id
		}
	}
}

// TestRouterTakeover runs two routers in cluster mode under load spread over both; the
// one that owns the app (its queue and both dynos; the other forwards to it) is killed
// with SIGKILL: no request the live router accepted is lost, and it takes the app over
// within a bound.
func TestRouterTakeover(t *testing.T) {
	const app = "takeover"
	g, entries := twoDynoGrid(t, Options{Hosts: 2, Routers: 2, Cluster: true}, app)
	live, victim := g.Routers[0], g.Routers[1]
	// Pick IDs under which the router to be killed owns the app.
	for _, r := range g.Routers {
		if err := g.StopRouter(r, syscall.SIGTERM, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	live.ID = "router-a"
	victim.ID = owningID(live.ID, app)
	for _, r := range g.Routers {
		if err := g.StartRouter(r); err != nil {
			t.Fatal(err)
		}
	}
	routes := func(r *Router) int {
		st, err := r.Status()
		if err != nil {
			return -1
		}
		return st.Apps[app].Dynos
	}
	waitWithin(t, time.Now(), time.Minute, "the owning router routing both dynos", func() bool { return routes(live) == 0 && routes(victim) == 2 })
	load := startLoadOn(t, []string{live.Addr, victim.Addr}, app, "/sleep?ms=20")
	serveMore(t, load)

	kv := g.ConsulClient().KV()
	killedAt := time.Now()
	if err := g.StopRouter(victim, syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	deadAt := time.Now()
	var gone, takeover time.Duration
	for deadline := killedAt.Add(time.Minute); takeover == 0 || gone == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("router %s has not taken the dead router's dyno over within a minute (its session ended after %s)", live.ID, ms(gone))
		}
		if gone == 0 {
			if p, _, err := kv.Get("dynogrid/router/members/"+victim.ID, nil); err == nil && p == nil {
				gone = time.Since(killedAt)
			}
		}
		if takeover == 0 && routes(live) == 2 {
			takeover = time.Since(killedAt)
		}
	}
	takenAt := killedAt.Add(takeover)
	serveMore(t, load)
	results := load.Stop()

	s := Summarize(results)
	var viaLive, viaVictim []*Result
	for _, r := range results {
		if r.Router == live.Addr {
			viaLive = append(viaLive, r)
		} else {
			viaVictim = append(viaVictim, r)
		}
	}
	sl := Summarize(viaLive)
	if sl.FailedTotal() != 0 {
		t.Errorf("%d requests through the live router failed: %v", sl.FailedTotal(), formatCounts(sl.Failed))
	}
	lostOnVictim := 0
	for _, r := range viaVictim {
		switch {
		case r.Status == 200 && r.Err == nil:
			if r.Sent.After(killedAt) {
				t.Errorf("request %s answered by the killed router", r.ID)
			}
		case r.Refused:
			// Sent just before the kill, it may have connected just after.
			if r.Done.Before(killedAt) {
				t.Errorf("request %s refused by router %s before it was killed", r.ID, victim.ID)
			}
		default:
			// Accepted by the router that died: lost with it.
			lostOnVictim++
			if r.Sent.After(deadAt) {
				t.Errorf("request %s sent %s after the killed router had exited failed without a refusal: %v", r.ID, msec(r.Sent.Sub(killedAt)), r.Err)
			}
		}
	}
	// The live router holds the lock of the dead router's dyno, and routes both.
	lock, _, err := kv.Get("dynogrid/router/dynos/"+url.PathEscape(entries[1].Service.ID), nil)
	if err != nil || lock == nil || lock.Session == "" || string(lock.Value) != live.ID {
		t.Errorf("the dead router's dyno %s: lock %+v (%v), want held by %s", entries[1].Service.ID, lock, err, live.ID)
	}
	served := map[string]int{}
	for _, r := range viaLive {
		if r.Sent.After(takenAt) && r.Dyno != "" {
			served[r.Dyno]++
		}
	}
	t.Logf("router takeover: %s; via the live router %s; via the killed one %s (%d lost with it, sent before it had exited); the killed router's process exited %s after SIGKILL, its session ended after %s, the live router routed its dynos after %s (served %s after)",
		s, sl, Summarize(viaVictim), lostOnVictim, msec(deadAt.Sub(killedAt)), msec(gone), msec(takeover), formatCounts(served))
	if takeover > 15*time.Second {
		t.Errorf("takeover took %s, more than 15 s", msec(takeover))
	}
}

// TestRouterConsulAgentLoss kills the Consul agent of the router's host under load,
// then starts it again: the router keeps serving from its last table, marks its answers
// and its metrics stale, and is fresh again once its agent is back.
func TestRouterConsulAgentLoss(t *testing.T) {
	const app = "stale"
	g, _ := twoDynoGrid(t, Options{Hosts: 2}, app)
	load := startLoad(t, g, app)
	r := g.Routers[0]
	staleMetric := func(want float64) bool {
		v, err := r.Metric("dyno_router_consul_stale")
		return err == nil && v == want
	}

	killedAt := time.Now()
	agent, err := g.KillProcesses(r.Host, "consul agent")
	if err != nil {
		t.Fatal(err)
	}
	staleAfter := waitWithin(t, killedAt, time.Minute, "the router stale", func() bool {
		st, err := r.Status()
		return err == nil && st.Stale && st.Apps[app].Dynos == 2 && staleMetric(1)
	})
	staleAt := killedAt.Add(staleAfter)
	serveMore(t, load)
	waitWithin(t, killedAt, time.Minute, "the killed Consul agent gone", func() bool { return !alive(agent) })
	startedAt := time.Now()
	if err := g.StartConsul(r.Host); err != nil {
		t.Fatal(err)
	}
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("the router's last state: %s", last)
		}
	}()
	freshAfter := waitWithin(t, startedAt, time.Minute, "the router fresh again", func() bool {
		st, err := r.Status()
		v, merr := r.Metric("dyno_router_consul_stale")
		last = fmt.Sprintf("status %+v (%v), metric %v (%v)", st, err, v, merr)
		return err == nil && !st.Stale && st.Apps[app].Dynos == 2 && staleMetric(0)
	})
	freshAt := startedAt.Add(freshAfter)
	serveMore(t, load)
	results := load.Stop()
	s := checkFailures(t, results, killedAt, 0)
	staleN := 0
	for _, res := range results {
		if res.Stale {
			staleN++
		}
		switch {
		case res.Sent.Before(killedAt) && res.Stale:
			t.Errorf("request %s, sent before the agent was killed, marked stale", res.ID)
		case res.Sent.After(staleAt) && res.Sent.Before(startedAt) && !res.Stale:
			t.Errorf("request %s, sent %s after the agent was killed, while the router was stale, not marked stale", res.ID, msec(res.Sent.Sub(killedAt)))
		case res.Sent.After(freshAt) && res.Stale:
			t.Errorf("request %s, sent after the router was fresh again, marked stale", res.ID)
		}
	}
	t.Logf("router consul agent loss: %s; %d answers marked stale; the router was stale (status, header, metric) %s after its agent was killed, fresh again %s after it started again",
		s, staleN, msec(staleAfter), msec(freshAfter))
}

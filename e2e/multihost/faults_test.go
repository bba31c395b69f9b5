package multihost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// loadRate is the steady load of the fault scenarios, in requests per second, each
// request a 20 ms /sleep: about a quarter of what two shared dynos serve here.
const loadRate = 20

// startLoad starts the load on app through the grid's first router and waits until it
// is being served.
func startLoad(t *testing.T, g *Grid, app string) *Load {
	t.Helper()
	return startLoadOn(t, []string{g.RouterAddr}, app, "/sleep?ms=20")
}

// startLoadOn starts the load of GET path on app, spread over routers, and waits until
// it is being served.
func startLoadOn(t *testing.T, routers []string, app, path string) *Load {
	t.Helper()
	l := StartLoadOn(routers, app+".localhost", path, loadRate)
	t.Cleanup(func() { l.Stop() })
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("the load's first %d answers", 2*loadRate), func() error {
		if n := l.Answered(); n < 2*loadRate {
			return fmt.Errorf("%d answers", n)
		}
		return nil
	})
	return l
}

// serveMore waits until the load has had two more seconds' worth of answers.
func serveMore(t *testing.T, l *Load) {
	t.Helper()
	served := l.Answered() + 2*loadRate
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d more answers to the load", 2*loadRate), func() bool { return l.Answered() >= served })
}

// twoDynoGrid starts a grid, deploys app with two web dynos and waits for them, on two
// hosts.
func twoDynoGrid(t *testing.T, opts Options, app string) (*Grid, []*consulapi.ServiceEntry) {
	t.Helper()
	g := Start(t, opts)
	deployThin(t, g, app, 2)
	return g, twoDynos(t, g, app)
}

// twoDynos waits for the app's two passing dynos on two hosts.
func twoDynos(t *testing.T, g *Grid, app string) []*consulapi.ServiceEntry {
	t.Helper()
	return waitPassing(t, g.ConsulClient(), app, 2*time.Minute, "2 passing dynos on 2 hosts", func(e []*consulapi.ServiceEntry) bool {
		return len(e) == 2 && e[0].Service.Address != e[1].Service.Address
	})
}

// firstDyno is the dyno a fault hits, the first of entries: its Consul entry, host,
// allocation, and how many times it restarted so far.
func firstDyno(t *testing.T, g *Grid, app string, entries []*consulapi.ServiceEntry) (*consulapi.ServiceEntry, *Host, *nomadapi.Allocation, int) {
	t.Helper()
	e := entries[0]
	alloc := allocOf(t, g, app, e)
	n, _ := restarts(t, g, alloc.ID)
	return e, g.HostByAddr(e.Service.Address), alloc, n
}

// allocOf is the allocation that registered a Consul service instance.
func allocOf(t *testing.T, g *Grid, app string, e *consulapi.ServiceEntry) *nomadapi.Allocation {
	t.Helper()
	for _, a := range runningAllocs(t, g, app) {
		if strings.Contains(e.Service.ID, a.ID) {
			full, _, err := g.NomadClient().Allocations().Info(a.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			return full
		}
	}
	t.Fatalf("no running allocation registered %s", e.Service.ID)
	return nil
}

// dynoPIDs lists the processes of a dyno (its cgroup on its host), and the pid of its
// app server (thin).
func dynoPIDs(t *testing.T, h *Host, allocID string) (all []int, app int) {
	t.Helper()
	all = cgroupProcs(filepath.Join(h.CgroupParent, allocID+".web"))
	for _, p := range all {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if strings.Contains(string(b), "thin") {
			app = p
		}
	}
	if app == 0 {
		t.Fatalf("no thin process among the dyno's processes %v (cgroup %s/%s.web)", all, h.CgroupParent, allocID)
	}
	return all, app
}

func restarts(t *testing.T, g *Grid, allocID string) (int, string) {
	t.Helper()
	a, _, err := g.NomadClient().Allocations().Info(allocID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := a.TaskStates["web"]
	if ts == nil {
		return 0, ""
	}
	return int(ts.Restarts), ts.State
}

// waitOutAndBack follows a dyno after a fault at since: when its service left the
// passing instances of app (out), when Nomad restarted its task (restarted), and when it
// passes again beside the app's other dyno (back). It fails the test after within.
func waitOutAndBack(t *testing.T, g *Grid, app, serviceID, allocID string, before int, since time.Time, within, poll time.Duration) (out, restarted, back time.Duration) {
	t.Helper()
	consul := g.ConsulClient()
	for deadline := since.Add(within); back == 0; time.Sleep(poll) {
		if time.Now().After(deadline) {
			t.Fatalf("dyno not back within %s (out of routing after %s, restarted after %s)", within, ms(out), ms(restarted))
		}
		es, err := passing(consul, app)
		if err != nil {
			continue
		}
		if out == 0 && !hasService(es, serviceID) {
			out = time.Since(since)
		}
		if restarted == 0 {
			if n, state := restarts(t, g, allocID); n > before && state == "running" {
				restarted = time.Since(since)
			}
		}
		if restarted != 0 && hasService(es, serviceID) && len(es) == 2 {
			back = time.Since(since)
		}
	}
	return out, restarted, back
}

func hasService(entries []*consulapi.ServiceEntry, id string) bool {
	for _, e := range entries {
		if e.Service.ID == id {
			return true
		}
	}
	return false
}

// checkFailures asserts that every request got an answer, that at most max failed, each
// with one of the codes allowed, and logs the failed ones.
func checkFailures(t *testing.T, results []*Result, since time.Time, max int, codes ...string) Summary {
	t.Helper()
	s := Summarize(results)
	for _, r := range results {
		if r.Status == 200 && r.Err == nil {
			continue
		}
		t.Logf("failed request %s: sent %s after the fault, status %d code %q err %v, took %s",
			r.ID, r.Sent.Sub(since).Round(time.Millisecond), r.Status, r.Code, r.Err, r.Done.Sub(r.Sent).Round(time.Millisecond))
		allowed := false
		for _, c := range codes {
			allowed = allowed || r.Code == c
		}
		if !allowed {
			t.Errorf("request %s failed with %q (status %d, %v); only %v may", r.ID, r.Code, r.Status, r.Err, codes)
		}
	}
	if s.Failed["no answer"] != 0 {
		t.Errorf("%d requests got no answer at all", s.Failed["no answer"])
	}
	if s.FailedTotal() > max {
		t.Errorf("%d requests failed, at most %d may (one dyno holds one request)", s.FailedTotal(), max)
	}
	return s
}

func ms(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

// TestHostLoss kills every process of the host of one of two dynos under load through
// the router: the site stays up, only the request in flight on the dead host may fail,
// with a coded answer, and a replacement dyno passes on a live host.
func TestHostLoss(t *testing.T) {
	const app = "loss"
	g, entries := twoDynoGrid(t, Options{Hosts: 3}, app)
	load := startLoad(t, g, app)

	victim := g.HostByAddr(entries[0].Service.Address)
	survivor := entries[1].Service.Address
	killedAt := time.Now()
	n, err := g.KillHost(victim)
	if err != nil {
		t.Fatal(err)
	}
	killedIn := time.Since(killedAt)
	t.Logf("killed %d processes of %s (%s, dyno %s) in %s", n, victim.Name, victim.Addr, entries[0].Service.Meta["dyno"], killedIn.Round(time.Millisecond))

	consul, nomad := g.ConsulClient(), g.NomadClient()
	var consulGone, nodeDown, replaced time.Duration
	var final []*consulapi.ServiceEntry
	for deadline := killedAt.Add(2 * time.Minute); replaced == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no replacement within 2m (consul dropped the dyno after %s, node down after %s)", ms(consulGone), ms(nodeDown))
		}
		es, err := passing(consul, app)
		if err != nil {
			continue
		}
		onVictim := false
		for _, e := range es {
			onVictim = onVictim || e.Service.Address == victim.Addr
		}
		if consulGone == 0 && !onVictim {
			consulGone = time.Since(killedAt)
		}
		if nodeDown == 0 {
			nodes, _, err := nomad.Nodes().List(nil)
			for _, nd := range nodes {
				if err == nil && nd.Name == victim.Name && nd.Status == nomadapi.NodeStatusDown {
					nodeDown = time.Since(killedAt)
				}
			}
		}
		if len(es) == 2 && !onVictim && es[0].Service.Address != es[1].Service.Address {
			replaced, final = time.Since(killedAt), es
		}
	}
	// The replacement serves under the load for a while before the load stops.
	serveMore(t, load)
	results := load.Stop()
	s := checkFailures(t, results, killedAt, 1, "H13", "H18")
	for _, r := range results {
		// Killing every process of a host takes a few milliseconds: a request sent
		// meanwhile may still have reached the dyno before it died.
		if !(r.Status == 200 && r.Err == nil) && r.Sent.After(killedAt.Add(killedIn)) {
			t.Errorf("request %s sent %s after the host was dead failed: only one in flight on it may",
				r.ID, ms(r.Sent.Sub(killedAt.Add(killedIn))))
		}
	}
	var newAddr string
	for _, e := range final {
		if e.Service.Address != survivor {
			newAddr = e.Service.Address
		}
	}
	t.Logf("host loss: %s; consul dropped the dead dyno after %s, nomad marked its node down after %s, replacement on %s passing after %s",
		s, ms(consulGone), ms(nodeDown), g.HostByAddr(newAddr).Name, ms(replaced))
	if replaced > time.Minute {
		t.Errorf("replacement took %s, more than a minute", ms(replaced))
	}
}

// TestCrash SIGKILLs a dyno's app process under load: the router stops sending to it at
// once, and Nomad restarts it in place.
func TestCrash(t *testing.T) {
	const app = "crash"
	g, entries := twoDynoGrid(t, Options{Hosts: 2}, app)
	load := startLoad(t, g, app)

	e, h, alloc, before := firstDyno(t, g, app, entries)
	_, pid := dynoPIDs(t, h, alloc.ID)
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	critical, restarted, back := waitOutAndBack(t, g, app, e.Service.ID, alloc.ID, before, killedAt, time.Minute, 50*time.Millisecond)
	serveMore(t, load)
	s := checkFailures(t, load.Stop(), killedAt, 1, "H13", "H18")
	if n, _ := restarts(t, g, alloc.ID); n != before+1 {
		t.Errorf("allocation %s restarted %d times, want %d", alloc.ID[:8], n, before+1)
	}
	t.Logf("crash: %s; out of Consul after %s, task restarted in place after %s, passing again after %s",
		s, ms(critical), ms(restarted), ms(back))
}

// TestHang SIGSTOPs a dyno under load: it leaves routing when its health check fails,
// and Nomad kills it and starts it again.
func TestHang(t *testing.T) {
	const app = "hang"
	g, entries := twoDynoGrid(t, Options{Hosts: 2}, app)
	load := startLoad(t, g, app)

	e, h, alloc, before := firstDyno(t, g, app, entries)
	pids, _ := dynoPIDs(t, h, alloc.ID)
	stoppedAt := time.Now()
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	left, restarted, back := waitOutAndBack(t, g, app, e.Service.ID, alloc.ID, before, stoppedAt, 3*time.Minute, 100*time.Millisecond)
	serveMore(t, load)
	s := checkFailures(t, load.Stop(), stoppedAt, 1, "H12")
	t.Logf("hang: %s; left routing after %s, killed and restarted in place after %s, passing again after %s",
		s, ms(left), ms(restarted), ms(back))
	if left == 0 || left > 15*time.Second {
		t.Errorf("the hung dyno left routing after %s, want within 15 s", ms(left))
	}
}

package multihost

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestPluginAndClientRestart kills the dyno driver plugin of a host, then its Nomad
// client, and starts the client again, under load: the running dynos keep serving and
// none is restarted or replaced.
func TestPluginAndClientRestart(t *testing.T) {
	const app = "restart"
	g, entries := twoDynoGrid(t, Options{Hosts: 2}, app)
	load := startLoad(t, g, app)

	h := g.HostByAddr(entries[0].Service.Address)
	type dyno struct {
		alloc    string
		restarts int
		pid      int
	}
	var before []dyno
	for _, e := range entries {
		a := allocOf(t, g, app, e)
		n, _ := restarts(t, g, a.ID)
		_, pid := dynoPIDs(t, g.HostByAddr(e.Service.Address), a.ID)
		before = append(before, dyno{a.ID, n, pid})
	}

	faultAt := time.Now()
	killed, err := g.KillPlugin(h)
	if err != nil {
		t.Fatal(err)
	}
	// Nomad starts the plugin again and the driver recovers its dyno: the client
	// serves the dyno's stats (from the driver) again.
	pluginBack := waitWithin(t, faultAt, time.Minute, "the dyno recovered by a new plugin on "+h.Name, func() bool {
		pids := g.pluginPIDs(h)
		return len(pids) > 0 && pids[0] != killed[0] && clientStats(g, h, before[0].alloc)
	})

	t.Logf("after the plugin kill: %s", g.dynoStates(t, app))
	clientAt := time.Now()
	agent, err := g.KillProcesses(h, "nomad agent")
	if err != nil {
		t.Fatal(err)
	}
	waitWithin(t, clientAt, time.Minute, "the killed Nomad client gone", func() bool { return !alive(agent) })
	if err := g.StartNomad(h); err != nil {
		t.Fatal(err)
	}
	// The restarted client has recovered the dyno once it serves its stats.
	clientBack := waitWithin(t, clientAt, time.Minute, "the dyno recovered by the restarted client on "+h.Name, func() bool {
		return clientStats(g, h, before[0].alloc)
	})
	waitNode(t, g, h, clientAt, "ready", func(n *nomadapi.Node) bool { return n.Status == nomadapi.NodeStatusReady })
	if len(g.pluginPIDs(h)) != 1 {
		t.Errorf("%s runs %d dyno driver plugins under its Nomad client, want 1", h.Name, len(g.pluginPIDs(h)))
	}
	serveMore(t, load)
	s := checkFailures(t, load.Stop(), faultAt, 0)
	for i, d := range before {
		n, state := restarts(t, g, d.alloc)
		if n != d.restarts || state != "running" {
			a, _, _ := g.NomadClient().Allocations().Info(d.alloc, nil)
			for _, ev := range a.TaskStates["web"].Events {
				t.Logf("alloc %s event at +%s: %s %s %s", d.alloc[:8], time.Unix(0, ev.Time).Sub(faultAt).Round(time.Millisecond), ev.Type, ev.DisplayMessage, ev.DriverError)
			}
			t.Errorf("dyno %d (alloc %s): %d restarts, state %q; want %d, running", i+1, d.alloc[:8], n, state, d.restarts)
		}
		_, pid := dynoPIDs(t, g.HostByAddr(entries[i].Service.Address), d.alloc)
		if pid != d.pid {
			t.Errorf("dyno %d (alloc %s): app process %d, was %d: it was started again", i+1, d.alloc[:8], pid, d.pid)
		}
	}
	// Both dynos answer directly too (the router may have kept one of them idle).
	for _, e := range entries {
		url := fmt.Sprintf("http://%s:%d/", e.Service.Address, e.Service.Port)
		resp, err := httpClient.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "Hello from " + e.Service.Meta["dyno"]; resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %q, want %q", url, resp.StatusCode, body, want)
		}
	}
	if got := len(runningAllocs(t, g, app)); got != 2 {
		t.Errorf("%d running allocations, want the same 2", got)
	}
	t.Logf("plugin and client restart: %s; dyno recovered by a new plugin after %s, by the restarted client after %s",
		s, ms(pluginBack), ms(clientBack))
}

func (g *Grid) dynoStates(t *testing.T, app string) string {
	var out string
	for _, a := range runningAllocs(t, g, app) {
		n, state := restarts(t, g, a.ID)
		out += a.ID[:8] + ":" + state + "/" + string(rune('0'+n)) + " "
	}
	return out
}

// alive reports whether any of pids is a live process (not a zombie).
func alive(pids []int) bool {
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err == nil && !strings.Contains(string(b), ") Z ") {
			return true
		}
	}
	return false
}

// clientStats reports whether host h's Nomad client serves the stats of an allocation's
// task, which it gets from the driver's handle of the running dyno.
func clientStats(g *Grid, h *Host, allocID string) bool {
	req, err := http.NewRequest("GET", fmt.Sprintf("https://%s:4646/v1/client/allocation/%s/stats", h.Addr, allocID), nil)
	if err != nil {
		return false
	}
	req.Header.Set("X-Nomad-Token", g.Tokens().NomadManagement)
	resp, err := g.HTTPSClient().Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var stats nomadapi.AllocResourceUsage
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&stats) != nil {
		return false
	}
	_, ok := stats.Tasks["web"]
	return ok
}

// waitWithin polls cond with testutil.WaitFor until it holds, within at most, and
// returns the time since from.
func waitWithin(t *testing.T, from time.Time, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	testutil.WaitFor(t, within, what, cond)
	return time.Since(from)
}

// waitNode waits until cond holds for host h's Nomad node and returns the time since from.
func waitNode(t *testing.T, g *Grid, h *Host, from time.Time, what string, cond func(*nomadapi.Node) bool) time.Duration {
	t.Helper()
	nomad := g.NomadClient()
	testutil.WaitFor(t, time.Minute, h.Name+" "+what, func() error {
		nodes, _, err := nomad.Nodes().List(nil)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Name != h.Name {
				continue
			}
			node, _, err := nomad.Nodes().Info(n.ID, nil)
			if err != nil {
				return err
			}
			if cond(node) {
				return nil
			}
			return fmt.Errorf("node status %s", node.Status)
		}
		return fmt.Errorf("no node named %s", h.Name)
	})
	return time.Since(from)
}

package router

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/policies"
)

// register adds a web dyno of app to the Consul agent as the deployer does, with a TTL
// check the test drives (and, when httpCheck, the contract's HTTP check instead).
func register(t *testing.T, c *consulapi.Client, app, dyno string, b *backend, meta map[string]string, httpCheck bool) string {
	t.Helper()
	in := b.instance(dyno)
	id := app + "-web-" + dyno
	m := map[string]string{"dyno": dyno, "release": "v1"}
	for k, v := range meta {
		m[k] = v
	}
	reg := &consulapi.AgentServiceRegistration{
		ID: id, Name: app + "-web", Tags: []string{"dyno", "app=" + app},
		Address: in.Address, Port: in.Port, Meta: m,
	}
	if httpCheck {
		reg.Check = &consulapi.AgentServiceCheck{CheckID: id + "-http",
			HTTP: "http://" + in.addr() + "/health", Interval: "1s", Timeout: "1s"}
	} else {
		reg.Check = &consulapi.AgentServiceCheck{CheckID: id + "-ttl", TTL: "10m", Status: consulapi.HealthPassing}
	}
	if err := c.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	return id
}

func routes(tr *testRouter, host string) int {
	req, _ := http.NewRequest("GET", tr.url+"/", nil)
	req.Host = host
	resp, err := testClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestConsulDiscovery(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	b1 := newBackend(t, nil)
	b2 := newBackend(t, nil)
	tr := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulRouter]
	})

	id1 := register(t, c, "shop", "web.1", b1, map[string]string{"domains": "www.shop.test", "timeout": "45s"}, false)
	waitFor(t, "shop routed", func() bool { return routes(tr, "shop.localhost") == 200 })
	if s := routes(tr, "www.shop.test"); s != 200 {
		t.Errorf("custom domain from meta: status %d", s)
	}
	tr.mu.Lock()
	timeout := tr.apps["shop"].settings.load().timeout
	tr.mu.Unlock()
	if timeout != 45*time.Second {
		t.Errorf("timeout from meta %s, want 45s", timeout)
	}

	// A check that turns critical takes the dyno out within milliseconds.
	start := time.Now()
	if err := c.Agent().UpdateTTL(id1+"-ttl", "test", consulapi.HealthCritical); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "critical dyno out", func() bool { return tr.appStats("shop").Dynos == 0 })
	out := time.Since(start)
	if err := c.Agent().UpdateTTL(id1+"-ttl", "test", consulapi.HealthPassing); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitFor(t, "passing dyno back", func() bool { return tr.appStats("shop").Dynos == 1 })
	in := time.Since(start)
	t.Logf("critical to out of the table: %s; passing to back in: %s", out, in)
	if out > time.Second || in > time.Second {
		t.Errorf("table followed Consul in %s / %s, want well under a second", out, in)
	}

	// The contract's HTTP check: the dyno joins once Consul sees it passing.
	register(t, c, "shop", "web.2", b2, nil, true)
	waitFor(t, "second dyno passing", func() bool { return tr.appStats("shop").Dynos == 2 })

	// Deregistering every instance removes the app.
	c.Agent().ServiceDeregister(id1)
	c.Agent().ServiceDeregister("shop-web-web.2")
	waitFor(t, "app gone", func() bool { return routes(tr, "shop.localhost") == 404 })
}

func TestConsulOutageKeepsLastTable(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, nil)
	ml := listen(t)
	tr := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulRouter]
		cfg.MetricsListener = ml
	})
	register(t, c, "keep", "web.1", b, nil, false)
	waitFor(t, "routed", func() bool { return routes(tr, "keep.localhost") == 200 })

	// Freeze Consul (no resets: blocking queries just hang) and see the router notice.
	pid := g.Agents[0].PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	waitFor(t, "stale", tr.Stale)
	resp, _ := tr.do(t, "GET", "keep.localhost", "/", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get(StaleHeader) != "true" {
		t.Fatalf("during outage: status %d, stale header %q; want 200 from the last table, marked stale", resp.StatusCode, resp.Header.Get(StaleHeader))
	}
	st, err := http.Get("http://" + ml.Addr().String() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(st.Body)
	st.Body.Close()
	if st.StatusCode != 503 {
		t.Errorf("/status during outage: %d %s", st.StatusCode, body)
	}
	if m := scrape(t, ml.Addr().String()); !contains(m, "dyno_router_consul_stale 1") {
		t.Errorf("metrics do not say stale:\n%s", m)
	}
	waitFor(t, "stale logged", func() bool { return tr.logHas("consul unreachable") })

	resume()
	waitFor(t, "fresh again", func() bool { return !tr.Stale() })
	if resp, _ := tr.do(t, "GET", "keep.localhost", "/", nil, nil); resp.Header.Get(StaleHeader) != "" {
		t.Fatalf("stale header after recovery")
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var _ = strconv.Itoa
var _ = fmt.Sprint

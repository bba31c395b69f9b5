package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestHTTPChecksOf: the router probes the HTTP checks its job gives the app's web service
// in the allocation's task group, as Consul runs them, and none it could not probe as
// Consul would.
func TestHTTPChecksOf(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	svc := &nomadapi.Service{Name: "shop-web", PortLabel: "web", Checks: []nomadapi.ServiceCheck{
		{Name: "http", Type: "http", Path: "/health?deep=1", Interval: time.Second, Timeout: 5 * time.Second,
			Header: map[string][]string{"X-Check": {"yes"}}, SuccessBeforePassing: 2},
		{Name: "head", Type: "http", Path: "up", Method: "head"},
		{Name: "tcp", Type: "tcp"},
		{Name: "tls", Type: "http", Path: "/h", Protocol: "https"},
		{Name: "other-port", Type: "http", Path: "/h", PortLabel: "admin"},
		{Name: "post", Type: "http", Path: "/h", Method: "POST"},
		{Name: "body", Type: "http", Path: "/h", Body: "x"},
		{Name: "var", Type: "http", Path: "/${NOMAD_ALLOC_ID}"},
		{Name: "big", Type: "http", Path: "/h", Header: map[string][]string{"X-Big": {strings.Repeat("x", probeHeaderLimit)}}},
	}}
	a := &nomadapi.Allocation{TaskGroup: "web", Job: &nomadapi.Job{TaskGroups: []*nomadapi.TaskGroup{
		{Name: str("worker"), Services: []*nomadapi.Service{{Name: "shop-web", Checks: []nomadapi.ServiceCheck{{Name: "w", Type: "http", Path: "/"}}}}},
		{Name: str("web"), Services: []*nomadapi.Service{svc, {Name: "shop-admin", Checks: []nomadapi.ServiceCheck{{Name: "a", Type: "http", Path: "/"}}}}},
	}}}
	got := httpChecksOf(a, "shop-web")
	if len(got) != 2 {
		t.Fatalf("checks %+v; want http and head alone", got)
	}
	c := got[0]
	if c.name != "http" || c.path.String() != "/health?deep=1" || c.method != "GET" || c.header.Get("X-Check") != "yes" ||
		c.timeout != probeTimeout || c.hold != 8*time.Second || c.successes != 2 {
		t.Errorf("http check %+v", c)
	}
	if h := got[1]; h.name != "head" || h.path.String() != "/up" || h.method != "HEAD" || h.timeout != probeTimeout ||
		h.hold != 40*time.Second || h.successes != 1 {
		t.Errorf("head check %+v (Consul's defaults: 10 s timeout)", h)
	}
	if httpChecksOf(&nomadapi.Allocation{TaskGroup: "web"}, "shop-web") != nil {
		t.Error("an allocation without its job has checks")
	}
}

// TestProbedOnlyOnItsOwnHostPort: a job's service may name any address and port (the
// router host's loopback, say); the router probes an instance only at a host port its
// allocation holds, and leaves any other to Consul's check.
func TestProbedOnlyOnItsOwnHostPort(t *testing.T) {
	t.Parallel()
	a := &nomadapi.Allocation{AllocatedResources: &nomadapi.AllocatedResources{Shared: nomadapi.AllocatedSharedResources{
		Ports: []nomadapi.PortMapping{{Label: "web", Value: 23456, To: 23456, HostIP: "10.0.0.5"}}}}}
	for _, c := range []struct {
		in   Instance
		want bool
	}{
		{Instance{Address: "10.0.0.5", Port: 23456}, true},
		{Instance{Address: "127.0.0.1", Port: 23456}, false},
		{Instance{Address: "127.0.0.1", Port: 8500}, false},
		{Instance{Address: "10.0.0.5", Port: 4646}, false},
	} {
		if got := holdsPort(a, c.in); got != c.want {
			t.Errorf("holdsPort(%s:%d) = %v, want %v", c.in.Address, c.in.Port, got, c.want)
		}
	}
	if holdsPort(&nomadapi.Allocation{}, Instance{Address: "10.0.0.5", Port: 23456}) {
		t.Error("an allocation without resources holds a port")
	}
}

// TestProbeURLStaysOnTheInstance: whatever a check's path names (a scheme, a host, user
// information), the probe asks the instance's own address and port, and nothing else.
func TestProbeURLStaysOnTheInstance(t *testing.T) {
	t.Parallel()
	var evilAsked atomic.Int32
	evil := newBackend(t, func(http.ResponseWriter, *http.Request) { evilAsked.Add(1) })
	evilAddr := evil.srv.Listener.Addr().String()
	dyno, seen := recordingBackend(t)
	in := dyno.instance("web.1")
	paths := []string{
		"http://" + evilAddr + "/health?x=1",
		"//" + evilAddr + "/health?x=1",
		"http://user:pw@" + evilAddr + "/health?x=1",
		"https://evil.test:1/health?x=1",
	}
	for _, path := range paths {
		c, ok := httpCheckOf(&nomadapi.Service{}, nomadapi.ServiceCheck{Name: "http", Type: "http", Path: path})
		if !ok {
			t.Fatalf("check with path %q not probed", path)
		}
		u, err := url.Parse(c.probeURL(in))
		if err != nil || u.Host != in.addr() || u.User != nil || u.Scheme != "http" || u.RequestURI() != "/health?x=1" {
			t.Errorf("path %q: probe URL %q, want http://%s/health?x=1", path, c.probeURL(in), in.addr())
		}
		p := testProber(t, time.Minute)
		if !p.probe(context.Background(), c.probeURL(in), c) {
			t.Errorf("path %q: the instance's answer did not pass", path)
		}
	}
	if n := evilAsked.Load(); n != 0 {
		t.Errorf("the host named in checks' paths was asked %d times", n)
	}
	if got := seen(); len(got) != len(paths) || got[0] != "GET /health=" {
		t.Errorf("the instance was asked %q", got)
	}
}

// TestUnrunCheck tells a check Consul has not run yet from one it has, and from the
// checks that keep an instance out whatever it answers.
func TestUnrunCheck(t *testing.T) {
	t.Parallel()
	serf := &consulapi.HealthCheck{CheckID: "serfHealth", Status: "passing", Output: "Agent alive and reachable"}
	unrun := func() *consulapi.HealthCheck {
		return &consulapi.HealthCheck{CheckID: "c1", Name: "http", Type: "http", Status: "critical", ServiceID: "s1"}
	}
	ran := unrun()
	ran.Output = "Get \"http://10.0.0.1:20000/health\": dial tcp 10.0.0.1:20000: connect: connection refused"
	other := unrun()
	other.ServiceID = "s2"
	for _, tc := range []struct {
		name   string
		checks []*consulapi.HealthCheck
		want   string
	}{
		{"not run yet", []*consulapi.HealthCheck{serf, unrun()}, "http"},
		{"run, failed", []*consulapi.HealthCheck{serf, ran}, ""},
		{"passing", []*consulapi.HealthCheck{serf, {CheckID: "c1", Name: "http", Type: "http", Status: "passing", ServiceID: "s1", Output: "ok"}}, ""},
		{"warning", []*consulapi.HealthCheck{serf, {CheckID: "c1", Name: "http", Type: "http", Status: "warning", ServiceID: "s1"}}, ""},
		{"node down", []*consulapi.HealthCheck{{CheckID: "serfHealth", Status: "critical", Output: "Agent not live"}, unrun()}, ""},
		{"node maintenance", []*consulapi.HealthCheck{serf, unrun(), {CheckID: "_node_maintenance", Type: "maintenance", Status: "critical"}}, ""},
		{"service maintenance", []*consulapi.HealthCheck{serf, unrun(), {CheckID: "_service_maintenance:s1", Type: "maintenance", Status: "critical", ServiceID: "s1"}}, ""},
		{"two not run", []*consulapi.HealthCheck{serf, unrun(), unrun()}, ""},
		{"another service's", []*consulapi.HealthCheck{serf, other}, ""},
		{"a TTL check", []*consulapi.HealthCheck{serf, {CheckID: "t", Name: "ttl", Type: "ttl", Status: "critical", ServiceID: "s1"}}, ""},
	} {
		e := &consulapi.ServiceEntry{Service: &consulapi.AgentService{ID: "s1"}, Checks: tc.checks}
		if got := unrunCheck(e); got != tc.want {
			t.Errorf("%s: unrunCheck = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestProberRoutes: with Consul's answers injected, an instance whose check Consul has
// not run yet is routed once its probe passes, and for the check's hold only; one that
// Consul has checked, that is in maintenance, whose node is down, that does not answer
// 2xx, or that starts answering after the window, is not. Consul's verdict, once it has
// one, counts both ways.
func TestProberRoutes(t *testing.T) {
	t.Parallel()
	type dyno struct {
		b     *backend
		in    Instance
		entry *consulapi.ServiceEntry
	}
	var slow atomic.Bool
	mk := func(name string, h http.HandlerFunc, checks ...*consulapi.HealthCheck) dyno {
		b := newBackend(t, h)
		in := b.instance(name)
		e := &consulapi.ServiceEntry{Service: &consulapi.AgentService{ID: in.ID, Address: in.Address, Port: in.Port,
			Meta: map[string]string{"dyno": name}}}
		e.Checks = append([]*consulapi.HealthCheck{{CheckID: "serfHealth", Status: "passing", Output: "alive"}}, checks...)
		for _, c := range e.Checks {
			if c.CheckID != "serfHealth" {
				c.ServiceID = in.ID
			}
		}
		return dyno{b, in, e}
	}
	unrun := func() *consulapi.HealthCheck {
		return &consulapi.HealthCheck{CheckID: "http", Name: "http", Type: "http", Status: "critical"}
	}
	fresh := mk("web.1", nil, unrun())
	ran := unrun()
	ran.Output = "HTTP GET: 500 Internal Server Error"
	failed := mk("web.2", nil, ran)
	maint := mk("web.3", nil, unrun())
	maint.entry.Service.Meta[MetaMaintenance] = "true"
	maint.in.Maintenance = true
	nodeDown := mk("web.4", nil, unrun())
	nodeDown.entry.Checks[0].Status = "critical"
	unhealthy := mk("web.5", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, unrun())
	late := mk("web.6", func(w http.ResponseWriter, _ *http.Request) {
		if slow.Load() {
			w.WriteHeader(503)
		}
	}, unrun())
	slow.Store(true)

	hold := 300 * time.Millisecond
	check := func() []httpCheck {
		c, _ := httpCheckOf(&nomadapi.Service{}, nomadapi.ServiceCheck{Name: "http", Type: "http", Path: "/health", Timeout: time.Second})
		c.hold = hold
		return []httpCheck{c}
	}
	// late is for the short prober alone: p would go on probing it meanwhile, and the
	// backend would see two probes at once (two routers probe a new instance each, as
	// Consul checks any; only routed requests are one at a time).
	all := []dyno{fresh, failed, maint, nodeDown, unhealthy}
	p := testProber(t, time.Minute)
	woken := make(chan struct{}, 1)
	p.wake = func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); p.stop() })
	w := &watcher{log: testLogger(t)}
	checks := map[string][]httpCheck{}
	for _, d := range append(all, late) {
		checks[d.in.ID] = check()
	}
	route := func() []string {
		var entries []*consulapi.ServiceEntry
		for _, d := range all {
			entries = append(entries, d.entry)
		}
		insts, unrunIDs := w.instances("shop", entries)
		var names []string
		for _, in := range p.route(ctx, entries, insts, unrunIDs, checks) {
			names = append(names, in.Dyno)
		}
		return names
	}
	if got := route(); len(got) != 0 {
		t.Fatalf("routed %v before any probe", got)
	}
	start := time.Now()
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("no probe passed")
	}
	admittedAt := time.Now()
	if got := route(); strings.Join(got, ",") != "web.1" {
		t.Fatalf("routed %v once a probe passed; want web.1 alone", got)
	}
	t.Logf("admitted after %s", admittedAt.Sub(start))
	if n := counted(p.admitted); n != 1 {
		t.Errorf("admissions counted: %v, want 1", n)
	}
	for _, d := range []dyno{failed, maint, nodeDown} {
		if n := d.b.served.Load(); n != 0 {
			t.Errorf("%s, which Consul keeps out, was probed %d times", d.in.Dyno, n)
		}
	}
	waitFor(t, "the dyno answering 503 probed", func() bool { return unhealthy.b.served.Load() > 0 })

	// The hold ends: only Consul's verdict counts, and web.1 has none yet.
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake at the end of the hold")
	}
	if time.Since(admittedAt) < hold {
		t.Errorf("woken %s after the admission, before the hold of %s ended", time.Since(admittedAt), hold)
	}
	if got := route(); len(got) != 0 {
		t.Fatalf("routed %v after the hold", got)
	}
	served := fresh.b.served.Load()

	// Consul's verdict: passing routes it, critical after a run takes it out.
	fresh.entry.Checks[1] = &consulapi.HealthCheck{CheckID: "http", Name: "http", Type: "http", Status: "passing", ServiceID: fresh.in.ID, Output: "ok"}
	if got := route(); strings.Join(got, ",") != "web.1" {
		t.Fatalf("routed %v with web.1 passing", got)
	}
	failedRun := *ran
	failedRun.ServiceID = fresh.in.ID
	fresh.entry.Checks[1] = &failedRun
	if got := route(); len(got) != 0 {
		t.Fatalf("routed %v with web.1 failed by Consul", got)
	}
	if n := fresh.b.served.Load(); n != served {
		t.Errorf("web.1 probed %d more times once Consul had a verdict", n-served)
	}
	if n := counted(p.admitted); n != 1 {
		t.Errorf("admissions counted: %v, want 1", n)
	}

	// A dyno that answers only after the window is not routed: the window closes on a
	// prober whose instances it first saw long enough ago.
	short := testProber(t, 200*time.Millisecond)
	short.wake = func() {}
	t.Cleanup(short.stop)
	only := []*consulapi.ServiceEntry{late.entry}
	insts, unrunIDs := w.instances("shop", only)
	short.route(ctx, only, insts, unrunIDs, checks)
	waitFor(t, "the window closed", func() bool {
		short.mu.Lock()
		defer short.mu.Unlock()
		return short.states[late.in.ID].decided
	})
	slow.Store(false)
	if got := short.route(ctx, only, insts, unrunIDs, checks); len(got) != 0 {
		t.Fatalf("routed %v after the window", got)
	}
	if n := counted(short.admitted); n != 0 {
		t.Errorf("admissions after the window: %v", n)
	}
}

func testProber(t *testing.T, window time.Duration) *prober {
	return &prober{app: "shop", log: testLogger(t), admitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}),
		client: newProbeClient((&net.Dialer{}).DialContext), slots: make(chan struct{}, 4*maxProbing), wake: func() {},
		window: window, states: map[string]*probeState{}}
}

// counted is the value of a counter.
func counted(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestWatchRoutesWhatItsProbeFound runs a router against a Consul that registered a dyno
// and never checks it (its blocking queries answer no change), and a Nomad whose job
// gives the dyno's check: the router routes the dyno once its probe passes, for the
// check's hold, and then no more.
func TestWatchRoutesWhatItsProbeFound(t *testing.T) {
	t.Parallel()
	const alloc = "11111111-1111-1111-1111-111111111111"
	var asked atomic.Int32
	var agent atomic.Value
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			asked.Add(1)
			agent.Store(r.Header.Get("User-Agent"))
		}
	})
	in := b.instance("web.1")
	id := nomadServicePrefix + alloc + "-web-shop-web-http"
	entries := []*consulapi.ServiceEntry{{
		Node: &consulapi.Node{Node: "n1", Address: in.Address},
		Service: &consulapi.AgentService{ID: id, Service: "shop-web", Address: in.Address, Port: in.Port,
			Tags: []string{"dyno", "app=shop"}, Meta: map[string]string{"dyno": "web.1"}},
		Checks: []*consulapi.HealthCheck{
			{CheckID: "serfHealth", Status: "passing", Output: "Agent alive and reachable"},
			{CheckID: "c1", Name: "http", Type: "http", Status: "critical", ServiceID: id, ServiceName: "shop-web"},
		},
	}}
	consul := httptest.NewServer(blockingAPI("X-Consul-Index", func(path string) (any, bool) {
		switch {
		case path == "/v1/catalog/services":
			return map[string][]string{"shop-web": {"dyno", "app=shop"}}, true
		case path == "/v1/health/service/shop-web":
			return entries, true
		case path == "/v1/status/leader":
			return "127.0.0.1:8300", true
		}
		return nil, false
	}))
	t.Cleanup(consul.Close)
	web := "web"
	job := &nomadapi.Job{TaskGroups: []*nomadapi.TaskGroup{{Name: &web, Tasks: []*nomadapi.Task{{Name: "web",
		Services: []*nomadapi.Service{{Name: "shop-web", PortLabel: "web", Checks: []nomadapi.ServiceCheck{
			{Name: "http", Type: "http", Path: "/health", Interval: time.Second, Timeout: time.Second}}}}}}}}}
	nomad := httptest.NewServer(blockingAPI("X-Nomad-Index", func(path string) (any, bool) {
		switch path {
		case "/v1/allocation/" + alloc:
			return nomadapi.Allocation{ID: alloc, Namespace: "shop", JobID: "shop", TaskGroup: "web", Job: job,
				AllocatedResources: &nomadapi.AllocatedResources{Shared: nomadapi.AllocatedSharedResources{
					Ports: []nomadapi.PortMapping{{Label: "web", Value: in.Port, To: in.Port, HostIP: in.Address}}}}}, true
		case "/v1/jobs":
			return []nomadapi.JobListStub{{ID: "shop", Namespace: "shop"}}, true
		case "/v1/vars":
			return []nomadapi.VariableMetadata{}, true
		}
		return nil, false
	}))
	t.Cleanup(nomad.Close)
	tr := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr = strings.TrimPrefix(consul.URL, "http://")
		cfg.NomadAddr = nomad.URL
	})
	waitFor(t, "the dyno routed", func() bool { return tr.appStats("shop").Up == 1 })
	routedAt := time.Now()
	if s := routes(tr, "shop.localhost"); s != 200 {
		t.Errorf("request to the routed dyno: status %d", s)
	}
	if ua, _ := agent.Load().(string); asked.Load() == 0 || ua != "Consul Health Check" {
		t.Errorf("health check path asked %d times, User-Agent %q", asked.Load(), ua)
	}
	if n := counted(tr.metrics.admittedByProbe.WithLabelValues("shop")); n != 1 {
		t.Errorf("admissions counted %v, want 1", n)
	}
	if !tr.logHas("routing a dyno its probe found answering", "web.1") {
		t.Error("admission not logged")
	}
	waitFor(t, "the dyno out at the end of its hold", func() bool { return tr.appStats("shop").Up == 0 })
	if held := time.Since(routedAt); held < 3*time.Second {
		t.Errorf("routed for %s, want the check's hold of 4 s", held)
	}
	served := asked.Load()
	if s := routes(tr, "shop.localhost"); s == 200 {
		t.Errorf("request after the hold: status %d, want no dyno", s)
	}
	if n := asked.Load(); n != served {
		t.Errorf("probed %d times more after the hold", n-served)
	}
}

// blockingAPI serves what answer gives for a path as JSON, under index 1, and holds a
// blocking query for index 1 until its client leaves: nothing ever changes. Paths answer
// gives nothing for are 404.
func blockingAPI(indexHeader string, answer func(path string) (any, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("index") == "1" {
			<-r.Context().Done()
			return
		}
		w.Header().Set(indexHeader, "1")
		v, ok := answer(r.URL.Path)
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
}

// TestProbeSlotsPerApp: one app's new dynos that never answer take at most
// maxProbingPerApp of the router's probe slots, and another app's new dyno is probed
// and routed meanwhile. A slot freed routes the starved app again.
func TestProbeSlotsPerApp(t *testing.T) {
	t.Parallel()
	// Every probe of the first app's dynos hangs until the test ends.
	var inProbe, most atomic.Int32
	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inProbe.Add(1)
		defer inProbe.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(hang) })
	answers := newBackend(t, nil)

	check, _ := httpCheckOf(&nomadapi.Service{}, nomadapi.ServiceCheck{Name: "http", Type: "http", Path: "/health", Timeout: time.Minute})
	entry := func(id, addr string, port int) *consulapi.ServiceEntry {
		return &consulapi.ServiceEntry{
			Service: &consulapi.AgentService{ID: id, Address: addr, Port: port, Meta: map[string]string{"dyno": id}},
			Checks: []*consulapi.HealthCheck{{CheckID: "serfHealth", Status: "passing", Output: "alive"},
				{CheckID: "http", Name: "http", Type: "http", Status: "critical", ServiceID: id}},
		}
	}
	slots := make(chan struct{}, maxProbing) // shared, as the watch shares them
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &watcher{log: testLogger(t)}
	route := func(p *prober, entries []*consulapi.ServiceEntry) []Instance {
		checks := map[string][]httpCheck{}
		for _, e := range entries {
			checks[e.Service.ID] = []httpCheck{check}
		}
		insts, unrun := w.instances(p.app, entries)
		return p.route(ctx, entries, insts, unrun, checks)
	}

	flood := testProber(t, time.Minute)
	flood.app, flood.slots = "flood", slots
	wakes := make(chan struct{}, 1)
	flood.wake = func() {
		select {
		case wakes <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { cancel(); flood.stop() })
	host, port := hostPort(t, stuck.Listener.Addr().String())
	var many []*consulapi.ServiceEntry
	for i := range maxProbingPerApp + 36 {
		many = append(many, entry(fmt.Sprintf("flood-web-%d", i), host, port))
	}
	route(flood, many)
	waitFor(t, fmt.Sprintf("%d probes of the flooding app under way", maxProbingPerApp), func() bool {
		return inProbe.Load() == maxProbingPerApp
	})

	shop := testProber(t, time.Minute)
	shop.slots = slots
	admitted := make(chan struct{}, 1)
	shop.wake = func() {
		select {
		case admitted <- struct{}{}:
		default:
		}
	}
	t.Cleanup(shop.stop)
	one := []*consulapi.ServiceEntry{entry(answers.instance("web.1").ID, answers.instance("web.1").Address, answers.instance("web.1").Port)}
	route(shop, one)
	select {
	case <-admitted:
	case <-time.After(10 * time.Second):
		t.Fatal("the other app's new dyno was not probed while the flooding app's hung")
	}
	if got := route(shop, one); len(got) != 1 {
		t.Errorf("the other app routes %d dynos after its probe passed, want 1", len(got))
	}
	// The admitted dyno's hold takes no slot.
	waitFor(t, "the passed probe's slot freed", func() bool { return len(slots) == maxProbingPerApp })
	if n := most.Load(); n > maxProbingPerApp {
		t.Errorf("%d probes of one app at once, want at most %d", n, maxProbingPerApp)
	}
	select {
	case <-wakes:
		t.Error("the flooding app was routed again with no slot freed")
	default:
	}
	// A hung probe ends (its timeout): the starved app is routed again.
	flood.mu.Lock()
	for _, st := range flood.states {
		if st.cancel != nil {
			st.cancel()
			break
		}
	}
	flood.mu.Unlock()
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("a slot freed and the starved app was not routed again")
	}
}

// hostPort splits a listener's address.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

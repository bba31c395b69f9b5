package router

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
)

// A new dyno's HTTP check is first run by Consul at a random moment within one interval
// of its registration, so a dyno that answers waits on average half an interval more to
// be routed. The router probes such an instance itself, as Consul's check would, and
// routes it once the probe is answered like a passing check; Consul's verdict counts as
// soon as Consul has one.
//
// Consul keeps a check it has not run yet critical with no output. It keeps a check that
// has run and failed critical too, and may not have written the failure's output to the
// catalog yet: Consul defers a change of output alone (check_update_interval, 5 min by
// default), and does not record a failure at all before failures_before_critical of them
// in a row. So the router probes an instance for probeFor at most after it first saw it,
// and counts a probe's admission for a few of the check's intervals only (its hold):
// long enough for Consul's next check to pass, after which only Consul's verdict counts.
const (
	// probeEvery is the pause between two probes of an instance, plus up to as much
	// again at random.
	probeEvery = 25 * time.Millisecond
	// probeFor is how long after the router first saw an instance it probes it.
	probeFor = time.Minute
	// probeTimeout caps the check's own timeout for one probe.
	probeTimeout = 2 * time.Second
	// probeReadLimit is the most of an answer's body a probe reads.
	probeReadLimit = 4 << 10
	// probeHeaderLimit is the largest answer head a probe reads, and the most bytes of
	// header fields a check may name for the router to probe it.
	probeHeaderLimit = 8 << 10
	// maxProbing is how many instances the router probes at once, over all apps.
	maxProbing = 256
	// maxProbingPerApp is how many of them one app's may be: an app whose new dynos
	// never answer cannot keep the other apps' from being probed.
	maxProbingPerApp = maxProbing / 4
	// maxHold caps how long a probe's admission counts.
	maxHold = 2 * time.Minute
)

// httpCheck is an HTTP check of a dyno, as the job that registered it in Consul says,
// in what the router needs to probe it.
type httpCheck struct {
	name      string   // the check's name, in Consul as in the job
	path      *url.URL // the path and query to ask, nothing else
	method    string
	header    http.Header
	timeout   time.Duration // one probe's, probeTimeout at most
	hold      time.Duration // how long an admission counts: 3 intervals and the timeout
	successes int           // answers in a row that make the check pass
}

// httpChecksOf returns the HTTP checks of service in the allocation's task group that
// the router can probe as Consul would run them: over plain HTTP, on the service's own
// port, with GET or HEAD and no body, at a path without Nomad variables.
func httpChecksOf(a *nomadapi.Allocation, service string) []httpCheck {
	if a == nil || a.Job == nil {
		return nil
	}
	var out []httpCheck
	for _, tg := range a.Job.TaskGroups {
		if tg == nil || tg.Name == nil || *tg.Name != a.TaskGroup {
			continue
		}
		svcs := tg.Services
		for _, task := range tg.Tasks {
			if task != nil {
				svcs = append(svcs, task.Services...)
			}
		}
		for _, s := range svcs {
			if s == nil || s.Name != service {
				continue
			}
			for _, c := range s.Checks {
				if hc, ok := httpCheckOf(s, c); ok {
					out = append(out, hc)
				}
			}
		}
	}
	return out
}

func httpCheckOf(s *nomadapi.Service, c nomadapi.ServiceCheck) (httpCheck, bool) {
	if c.Type != "http" || c.Name == "" || (c.Protocol != "" && c.Protocol != "http") ||
		(c.PortLabel != "" && c.PortLabel != s.PortLabel) || c.Expose || c.Body != "" ||
		strings.Contains(c.Path, "${") {
		return httpCheck{}, false
	}
	method := strings.ToUpper(c.Method)
	switch method {
	case "":
		method = http.MethodGet
	case http.MethodGet, http.MethodHead:
	default:
		return httpCheck{}, false
	}
	u, err := url.Parse(c.Path)
	if err != nil {
		return httpCheck{}, false
	}
	// Only the path and the query: whatever else the check names (a scheme, a host, user
	// information), the router asks the instance's own address and port.
	p := &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if !strings.HasPrefix(p.Path, "/") {
		p.Path, p.RawPath = "/"+p.Path, ""
	}
	size := 0
	for k, vs := range c.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if size > probeHeaderLimit {
		return httpCheck{}, false
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second // Consul's default
	}
	interval := c.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return httpCheck{
		name: c.Name, path: p, method: method, header: http.Header(c.Header).Clone(),
		timeout: min(timeout, probeTimeout), hold: min(3*interval+timeout, maxHold),
		successes: max(c.SuccessBeforePassing, 1),
	}, true
}

// probeURL is the URL a probe of in asks: the instance's own address and port, and the
// check's path and query.
func (c *httpCheck) probeURL(in Instance) string {
	u := *c.path
	u.Scheme = "http"
	u.Host = net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
	return u.String()
}

// isMaintenance reports whether c is Consul's maintenance mode of a node or a service.
func isMaintenance(c *consulapi.HealthCheck) bool {
	return c.Type == "maintenance" || c.CheckID == "_node_maintenance" ||
		strings.HasPrefix(c.CheckID, "_service_maintenance:")
}

// passing reports whether every check of e passes (Consul's ?passing).
func passing(e *consulapi.ServiceEntry) bool {
	for _, c := range e.Checks {
		if c.Status != consulapi.HealthPassing {
			return false
		}
	}
	return true
}

// unrunCheck returns the name of e's one check that Consul has not run yet, when every
// other check passes: an HTTP check of the instance itself, critical with no output. Any
// other check not passing (the node's serfHealth, maintenance of the node or the
// service, a second check not run yet) makes it "": Consul's verdict alone counts.
func unrunCheck(e *consulapi.ServiceEntry) string {
	name := ""
	for _, c := range e.Checks {
		switch {
		case c.Status == consulapi.HealthPassing && !isMaintenance(c):
		case c.Status == consulapi.HealthCritical && c.Output == "" && c.Type == "http" && !isMaintenance(c) &&
			e.Service != nil && c.ServiceID == e.Service.ID && name == "" && c.Name != "":
			name = c.Name
		default:
			return ""
		}
	}
	return name
}

// prober probes the instances of one app's service that Consul has registered but not
// checked yet, and keeps which of them answered.
type prober struct {
	app      string
	log      hclog.Logger
	admitted prometheus.Counter // the app's series of dyno_router_instances_admitted_by_probe_total
	client   *http.Client
	slots    chan struct{} // shared by the router's probers: maxProbing
	wake     func()        // asks the watch to route the app again
	// window is probeFor, shorter in tests.
	window time.Duration

	mu      sync.Mutex
	states  map[string]*probeState // by service ID
	running int                    // probes under way: maxProbingPerApp at most
	// starved: an instance was not probed for want of a slot; the app is routed again
	// when one frees.
	starved bool
	wg      sync.WaitGroup
}

type probeState struct {
	seen time.Time // when the router first saw the instance
	// decided: Consul has a verdict on the instance, or the router's probing of it is
	// over; only Consul's verdict counts from now on.
	decided  bool
	cancel   context.CancelFunc // the instance's probe, once started
	admitted time.Time          // when a probe found it answering
	hold     time.Duration
}

func (s *probeState) decide() {
	s.decided = true
	if s.cancel != nil {
		s.cancel()
	}
}

// newProbeClient is the HTTP client of probes: no proxy, no kept-alive connections, no
// redirects followed, a bounded answer head.
func newProbeClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, MaxResponseHeaderBytes: probeHeaderLimit},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// route returns the instances to route among own, the app's instances that pass or
// whose one check Consul has not run yet (unrun: service ID -> that check's name) and
// that are the app's own dynos (checks: what their jobs say of their HTTP checks), out
// of entries, everything Consul has of the app's service. It starts probing an unrun
// instance the router has seen for less than the window, and stops probing those that
// left or that Consul has a verdict on.
func (p *prober) route(ctx context.Context, entries []*consulapi.ServiceEntry, own []Instance,
	unrun map[string]string, checks map[string][]httpCheck) []Instance {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		id := e.Service.ID
		present[id] = true
		st := p.states[id]
		if st == nil {
			st = &probeState{seen: now}
			p.states[id] = st
		}
		if _, ok := unrun[id]; !ok {
			st.decide()
		}
	}
	for id, st := range p.states {
		if !present[id] {
			st.decide()
			delete(p.states, id)
		}
	}
	out := make([]Instance, 0, len(own))
	for _, in := range own {
		name, pending := unrun[in.ID]
		st := p.states[in.ID]
		switch {
		case !pending:
			out = append(out, in)
		case st == nil || st.decided || in.Maintenance:
		case !st.admitted.IsZero():
			if now.Before(st.admitted.Add(st.hold)) {
				out = append(out, in)
			} else {
				st.decide()
			}
		case st.cancel == nil:
			p.startLocked(ctx, in, st, name, checks[in.ID])
		}
	}
	return out
}

// startLocked starts probing in with its check called name, when the job says how and a
// slot is free. Caller holds p.mu.
func (p *prober) startLocked(ctx context.Context, in Instance, st *probeState, name string, checks []httpCheck) {
	var c *httpCheck
	for i := range checks {
		if checks[i].name == name {
			c = &checks[i]
		}
	}
	until := st.seen.Add(p.window)
	if c == nil || !time.Now().Before(until) {
		return
	}
	if p.running >= maxProbingPerApp {
		p.starved = true
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.starved = true
		return
	}
	p.running++
	dctx, cancel := context.WithCancel(ctx) // ends with Consul's verdict
	st.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.run(dctx, until, in, st, *c, sync.OnceFunc(p.release))
	}()
}

// release gives back a probe's slot once its probing is over, and routes the app again
// when an instance waits for one.
func (p *prober) release() {
	<-p.slots
	p.mu.Lock()
	p.running--
	starved := p.starved
	p.starved = false
	p.mu.Unlock()
	if starved {
		p.wake()
	}
}

// run probes in until it answers as its check would pass, the window ends (until) or
// dctx does (Consul's verdict, or the end of the watch); then routes it for the check's
// hold, and asks for the app to be routed again at its end. It calls release once the
// probing is over, before the hold.
func (p *prober) run(dctx context.Context, until time.Time, in Instance, st *probeState, c httpCheck, release func()) {
	defer release()
	u := c.probeURL(in)
	wctx, cancel := context.WithDeadline(dctx, until)
	defer cancel()
	for ok := 0; ok < c.successes; {
		if p.probe(wctx, u, c) {
			ok++
			if ok == c.successes {
				break
			}
		} else {
			ok = 0
		}
		t := time.NewTimer(probeEvery + rand.N(probeEvery))
		select {
		case <-wctx.Done():
			t.Stop()
			p.mu.Lock()
			st.decided = true // the window is over, or Consul has decided
			p.mu.Unlock()
			return
		case <-t.C:
		}
	}
	p.mu.Lock()
	if dctx.Err() != nil || st.decided {
		p.mu.Unlock()
		return
	}
	st.admitted, st.hold = time.Now(), c.hold
	seen := st.seen
	p.mu.Unlock()
	release()
	p.admitted.Inc()
	p.log.Debug("routing a dyno its probe found answering before Consul's first check", "app", p.app,
		"service_id", in.ID, "dyno", in.Dyno, "after", time.Since(seen), "for", c.hold)
	p.wake()
	t := time.NewTimer(c.hold)
	defer t.Stop()
	select {
	case <-dctx.Done(): // Consul's verdict, which routes the app again itself
	case <-t.C:
		p.wake()
	}
}

// probe asks u once as Consul's check would, and says whether it passed (2xx).
func (p *prober) probe(ctx context.Context, u string, c httpCheck) bool {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, u, nil)
	if err != nil {
		return false
	}
	req.Header = c.header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Consul Health Check")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/plain, text/*, */*")
	}
	// A Host field names the request's host, as in Consul's check; never where it goes.
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, probeReadLimit))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// stop ends every probe and waits for them.
func (p *prober) stop() {
	p.mu.Lock()
	for _, st := range p.states {
		st.decide()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

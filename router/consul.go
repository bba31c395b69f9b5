package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/internal/agentapi"
)

// The routing contract in Consul (docs/design.md, "Web dynos in Consul"): each web dyno
// registers service "<app>-web" tagged DynoTag and "app=<app>", with meta "dyno" and
// "release", and optionally the per-app meta below, the same on every instance.
const (
	DynoTag         = "dyno"
	MetaDyno        = "dyno"
	MetaRelease     = "release"
	MetaDomains     = "domains"     // comma-separated custom domains
	MetaTimeout     = "timeout"     // Go duration, the app's H12 timeout
	MetaMaintenance = "maintenance" // "true": answer H80
)

// nomadReadTimeout bounds the reads of Nomad that decide whose dynos an app's service
// instances are.
const nomadReadTimeout = 5 * time.Second

// blockWait is how long a blocking query may wait for a change.
const blockWait = 5 * time.Minute

// firstTableWait bounds how long a starting router waits for its first routing table
// before it serves clients (with whatever it has, marked stale if Consul is unreachable).
const firstTableWait = 10 * time.Second

// watcher follows Consul with blocking queries: one on the catalog's service list, to
// learn which apps exist, and one per app on its instances.
type watcher struct {
	r      *Router
	client *consulapi.Client
	log    hclog.Logger
	// probeClient and probeSlots are the probes' (probe.go).
	probeClient *http.Client
	probeSlots  chan struct{}

	mu       sync.Mutex
	services map[string]*serviceWatch // by service name
	failing  map[string]error         // query name -> last error

	// synced is closed once the catalog has been read and every app it listed then has
	// been read once: the router's first table is complete.
	synced      chan struct{}
	catalogRead bool
	unread      map[string]bool // services of the first catalog not read yet
}

type serviceWatch struct {
	app    string
	cancel context.CancelFunc
	done   chan struct{}
	// own is what Nomad said of each instance: a dyno of the app's own job or not
	// (provenance.go); nomadFailing, that it could not be asked, logged once.
	own          map[string]bool
	nomadFailing bool
	// checks are the HTTP checks of the own dynos, as their job says; probes probes
	// those Consul has not checked yet.
	checks map[string][]httpCheck
	probes *prober

	// woken: a probe's admission or its end wants the app routed again; interrupt ends
	// the blocking query under way, if any.
	mu        sync.Mutex
	woken     bool
	interrupt context.CancelFunc
}

// wake has the watch route the app again now.
func (sw *serviceWatch) wake() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.woken = true
	if sw.interrupt != nil {
		sw.interrupt()
		sw.interrupt = nil
	}
}

// arm makes cancel the blocking query's interrupt, unless the watch was woken meanwhile:
// then it says false, and the app is routed again from the last read.
func (sw *serviceWatch) arm(cancel context.CancelFunc) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.woken {
		sw.woken = false
		return false
	}
	sw.interrupt = cancel
	return true
}

// disarm ends the interrupt of a blocking query that returned: what it read is routed
// now, with any admission made meanwhile.
func (sw *serviceWatch) disarm() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.interrupt = nil
	sw.woken = false
}

func newWatcher(r *Router) (*watcher, error) {
	cfg := consulapi.DefaultConfig()
	cfg.Address = r.cfg.ConsulAddr
	if r.cfg.ConsulToken != "" {
		cfg.Token = r.cfg.ConsulToken
	}
	c, err := agentapi.NewConsul(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create a Consul client for %s: %w", r.cfg.ConsulAddr, err)
	}
	return &watcher{r: r, client: c, log: r.log.Named("consul"),
		probeClient: newProbeClient(r.dialer.DialContext), probeSlots: make(chan struct{}, maxProbing),
		services: map[string]*serviceWatch{}, failing: map[string]error{},
		synced: make(chan struct{}), unread: map[string]bool{}}, nil
}

// awaitTable waits until the first routing table is complete (ready closed; nil: there
// is nothing to wait for), firstTableWait at most, or ctx ends. A router that served
// before would answer "no such app" to the first requests after a restart.
func (r *Router) awaitTable(ctx context.Context, ready <-chan struct{}) {
	if ready == nil {
		return
	}
	t := time.NewTimer(firstTableWait)
	defer t.Stop()
	start := time.Now()
	select {
	case <-ready:
		r.log.Debug("first routing table complete", "after", time.Since(start))
	case <-t.C:
		r.log.Warn("no complete routing table yet; serving with what there is", "after", firstTableWait)
	case <-ctx.Done():
	}
}

// tableReady returns a channel closed once the watcher has its first table and, in
// cluster mode, the cluster has routed it once.
func (w *watcher) tableReady(ctx context.Context) <-chan struct{} {
	c := w.r.cluster
	if c == nil {
		return w.synced
	}
	ch := make(chan struct{})
	go func() {
		select {
		case <-w.synced:
		case <-ctx.Done():
			return
		}
		c.setSynced()
		select {
		case <-c.ready:
			close(ch)
		case <-ctx.Done():
		}
	}()
	return ch
}

// bothClosed is a channel closed once a and b are, or never if ctx ends first.
func bothClosed(ctx context.Context, a, b <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for _, c := range []<-chan struct{}{a, b} {
			select {
			case <-c:
			case <-ctx.Done():
				return
			}
		}
		close(ch)
	}()
	return ch
}

// checkSyncedLocked closes synced once the first table is complete. Caller holds w.mu.
func (w *watcher) checkSyncedLocked() {
	select {
	case <-w.synced:
		return
	default:
	}
	if w.catalogRead && len(w.unread) == 0 {
		close(w.synced)
	}
}

// run watches until ctx ends.
func (w *watcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.probe(ctx) }()
	w.watchCatalog(ctx)
	w.mu.Lock()
	var all []*serviceWatch
	for _, sw := range w.services {
		sw.cancel()
		all = append(all, sw)
	}
	w.mu.Unlock()
	for _, sw := range all {
		<-sw.done
	}
	wg.Wait()
}

// probe asks the agent for its leader every second, so that an outage that leaves
// blocking queries hanging (no reset) is noticed quickly.
func (w *watcher) probe(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := w.client.Status().LeaderWithQueryOptions((&consulapi.QueryOptions{}).WithContext(pctx))
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.result("probe", err)
	}
}

// result records how a query went and updates the router's staleness.
func (w *watcher) result(name string, err error) {
	w.mu.Lock()
	if err != nil {
		w.failing[name] = err
	} else {
		delete(w.failing, name)
	}
	stale := len(w.failing) > 0
	w.mu.Unlock()
	w.r.setStale(stale, err)
}

func (w *watcher) watchCatalog(ctx context.Context) {
	var index uint64
	bo := backoff{}
	for ctx.Err() == nil {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockWait}).WithContext(ctx)
		svcs, meta, err := w.client.Catalog().Services(q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.result("catalog", err)
			// The next query returns at once: a blocking one would leave the
			// router stale until the catalog changes, after Consul is back.
			index = 0
			bo.wait(ctx)
			continue
		}
		w.result("catalog", nil)
		bo.reset()
		index = nextIndex(index, meta.LastIndex)
		w.syncServices(ctx, svcs)
		w.mu.Lock()
		w.catalogRead = true
		w.checkSyncedLocked()
		w.mu.Unlock()
	}
}

// appOf says which app a catalog service routes, if any: "<app>-web" tagged "dyno".
func appOf(name string, tags []string) (string, bool) {
	app, ok := strings.CutSuffix(name, "-web")
	if !ok || app == "" {
		return "", false
	}
	hasDyno := false
	for _, t := range tags {
		if t == DynoTag {
			hasDyno = true
		}
		if v, ok := strings.CutPrefix(t, "app="); ok && v != app {
			return "", false
		}
	}
	return app, hasDyno
}

// syncServices starts a watch for each new app service and stops those that left.
func (w *watcher) syncServices(ctx context.Context, svcs map[string][]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, tags := range svcs {
		app, ok := appOf(name, tags)
		if !ok || w.services[name] != nil {
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		sw := &serviceWatch{app: app, cancel: cancel, done: make(chan struct{}), own: map[string]bool{},
			checks: map[string][]httpCheck{}}
		sw.probes = &prober{app: app, log: w.log, admitted: w.r.metrics.admittedByProbe.WithLabelValues(app),
			client: w.probeClient, slots: w.probeSlots, wake: sw.wake, window: probeFor,
			states: map[string]*probeState{}}
		w.services[name] = sw
		if !w.catalogRead {
			w.unread[name] = true
		}
		w.log.Info("watching app", "app", app, "service", name)
		go w.watchService(sctx, name, sw)
	}
	for name, sw := range w.services {
		if _, ok := appOf(name, svcs[name]); ok {
			continue
		}
		sw.cancel()
		delete(w.services, name)
		delete(w.unread, name)
		delete(w.failing, "service "+name)
		w.r.dropApp(sw.app)
		w.log.Info("app left the catalog", "app", sw.app, "service", name)
	}
}

// watchService keeps one app's dynos in the routing table: those whose checks all pass,
// and those whose one check Consul has not run yet that the router's probe found
// answering (probe.go).
func (w *watcher) watchService(ctx context.Context, name string, sw *serviceWatch) {
	defer close(sw.done)
	defer sw.probes.stop()
	var index uint64
	var entries []*consulapi.ServiceEntry
	read := false
	bo, nomadBackoff := backoff{}, backoff{}
	for ctx.Err() == nil {
		qctx, qcancel := context.WithCancel(ctx)
		if sw.arm(qcancel) {
			q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockWait}).WithContext(qctx)
			got, meta, err := w.client.Health().Service(name, DynoTag, false, q)
			sw.disarm()
			woken := qctx.Err() != nil
			qcancel()
			if ctx.Err() != nil {
				return
			}
			switch {
			case err != nil && woken && read:
				// A probe's admission or its end: route again from the last read.
			case err != nil:
				w.result("service "+name, err)
				index = 0 // as in watchCatalog
				bo.wait(ctx)
				continue
			case meta.LastIndex != index:
				bo.reset()
				index = nextIndex(index, meta.LastIndex)
				entries, read = got, true
			case !woken:
				bo.reset()
				w.result("service "+name, nil)
				continue
			}
		} else {
			qcancel()
		}
		cands, unrun := w.instances(sw.app, entries)
		nctx, cancel := context.WithTimeout(ctx, nomadReadTimeout)
		own, nerr := w.r.ownDynos(nctx, sw.app, cands, sw.own, sw.checks)
		cancel()
		insts := sw.probes.route(ctx, entries, own, unrun, sw.checks)

		w.mu.Lock()
		if ctx.Err() == nil {
			w.r.updateApp(sw.app, insts)
			delete(w.unread, name)
			w.checkSyncedLocked()
		}
		w.mu.Unlock()
		w.result("service "+name, nil)
		switch {
		case nerr != nil && !sw.nomadFailing && ctx.Err() == nil:
			w.log.Warn("cannot tell from Nomad whose dynos an app's instances are", "app", sw.app, "error", nerr)
			sw.nomadFailing = true
		case nerr == nil && sw.nomadFailing:
			w.log.Info("Nomad tells whose dynos an app's instances are again", "app", sw.app)
			sw.nomadFailing = false
		}
		if nerr != nil {
			index = 0 // read again, and ask Nomad again, after a backoff of its own
			nomadBackoff.wait(ctx)
		} else {
			nomadBackoff.reset()
		}
	}
}

// instances converts the service entries that pass, or whose one check Consul has not
// run yet (unrun: service ID -> the check's name), into instances.
func (w *watcher) instances(app string, entries []*consulapi.ServiceEntry) (insts []Instance, unrun map[string]string) {
	insts = make([]Instance, 0, len(entries))
	unrun = map[string]string{}
	for _, e := range entries {
		check := ""
		if !passing(e) {
			if check = unrunCheck(e); check == "" {
				continue
			}
		}
		in, err := instanceOf(e)
		if err != nil {
			w.log.Warn("ignoring a bad setting in service meta", "app", app, "error", err)
		}
		if in.Address == "" || in.Port <= 0 {
			w.log.Warn("ignoring a dyno without address or port", "app", app, "service_id", in.ID)
			continue
		}
		if check != "" {
			unrun[in.ID] = check
		}
		insts = append(insts, in)
	}
	return insts, unrun
}

// instanceOf reads one entry. A bad per-app setting is reported and left at its default;
// the instance is still routable.
func instanceOf(e *consulapi.ServiceEntry) (Instance, error) {
	s := e.Service
	in := Instance{ID: s.ID, Address: s.Address, Port: s.Port}
	if in.Address == "" && e.Node != nil {
		in.Address = e.Node.Address
	}
	in.Dyno = s.Meta[MetaDyno]
	if in.Dyno == "" {
		in.Dyno = s.ID
	}
	in.Release = s.Meta[MetaRelease]
	var errs []error
	if v := s.Meta[MetaDomains]; v != "" {
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				in.Domains = append(in.Domains, d)
			}
		}
	}
	if v := s.Meta[MetaTimeout]; v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("service %s meta %s=%q: %w", s.ID, MetaTimeout, v, err))
		case d < 0:
			errs = append(errs, fmt.Errorf("service %s meta %s=%q: must not be negative", s.ID, MetaTimeout, v))
		case d == 0:
			// "0s": the router's default.
		default:
			in.Timeout = d
		}
	}
	in.Maintenance = s.Meta[MetaMaintenance] == "true"
	return in, errors.Join(errs...)
}

// nextIndex applies Consul's rules for blocking query indexes: reset when it goes
// backwards, never wait on 0.
func nextIndex(prev, last uint64) uint64 {
	if last < prev || last == 0 {
		return 0
	}
	return last
}

// backoff waits between failed queries: 50ms doubling to 2s, with jitter.
// watchKV follows a KV prefix with blocking queries until ctx ends and hands each new
// listing to f; failures are retried with a backoff, after failed (if not nil) has seen
// each.
func watchKV(ctx context.Context, client *consulapi.Client, prefix string, f func(consulapi.KVPairs), failed func(error)) {
	var index uint64
	bo := backoff{}
	for ctx.Err() == nil {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockWait}).WithContext(ctx)
		pairs, meta, err := client.KV().List(prefix, q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if failed != nil {
				failed(err)
			}
			bo.wait(ctx)
			continue
		}
		bo.reset()
		if meta.LastIndex == index {
			continue
		}
		index = nextIndex(index, meta.LastIndex)
		f(pairs)
	}
}

type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

func (b *backoff) wait(ctx context.Context) {
	if b.d == 0 {
		b.d = 50 * time.Millisecond
	} else if b.d *= 2; b.d > 2*time.Second {
		b.d = 2 * time.Second
	}
	j := time.Duration(rand.Int64N(int64(b.d) / 2))
	t := time.NewTimer(b.d/2 + j)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package router

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// table maps a request's Host to its app. It is immutable once published: the router
// builds a new one on every change and swaps it in atomically, so requests look hosts up
// without a lock.
type table struct {
	hosts map[string]*app
}

func (t *table) lookup(host string) *app {
	if t == nil {
		return nil
	}
	return t.hosts[host]
}

// appSettings are the per-app knobs the deployer sets in service meta.
type appSettings struct {
	// instances is how many passing instances the settings come from.
	instances   int
	domains     []string
	timeout     time.Duration // 0: the router's default
	maintenance bool
}

type atomicSettings struct{ p atomic.Pointer[appSettings] }

func (s *atomicSettings) load() *appSettings {
	if v := s.p.Load(); v != nil {
		return v
	}
	return &appSettings{}
}

func (s *atomicSettings) store(v *appSettings) { s.p.Store(v) }

// settingsOf merges the settings the instances of one app carry.
func settingsOf(insts []Instance) *appSettings {
	s := &appSettings{instances: len(insts)}
	for _, in := range insts {
		for _, d := range in.Domains {
			if d = canonicalHost(d); d != "" && !slices.Contains(s.domains, d) {
				s.domains = append(s.domains, d)
			}
		}
		if in.Timeout > s.timeout {
			s.timeout = in.Timeout
		}
		s.maintenance = s.maintenance || in.Maintenance
	}
	sort.Strings(s.domains)
	return s
}

// SetApp makes insts the routable dynos of app name (all passing instances of
// "<name>-web"), creating the app if it is new. Requests already queued keep their place.
func (r *Router) SetApp(name string, insts []Instance) { r.setApp(name, insts, insts) }

// setApp routes the dynos routable of app name and takes the app's settings (custom
// domains, timeout, maintenance) from all its passing instances: in cluster mode a
// router routes the dynos it owns only, and must still know every app's domains to
// forward their requests to the owner.
func (r *Router) setApp(name string, routable, all []Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.apps[name]
	if a == nil {
		a = newApp(r, name)
		r.apps[name] = a
	}
	a.settings.store(settingsOf(all))
	a.sync(routable)
	r.publishLocked()
}

// RemoveApp forgets an app: its idle dynos leave at once, its busy ones after their
// request, and its host names stop routing.
func (r *Router) RemoveApp(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.apps[name]
	if a == nil {
		return
	}
	a.sync(nil)
	delete(r.apps, name)
	r.publishLocked()
}

// Apps lists the names of the apps the router knows.
func (r *Router) Apps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.apps))
	for n := range r.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// publishLocked builds a new table from r.apps and swaps it in. Caller holds r.mu.
// An app's own host name wins over another app's custom domain, and no other name in the
// router domain is a custom domain; which app a custom domain routes to is routeDomains' decision (domains.go). A domain that is not routed
// to every app naming it is a conflict, logged when it begins, changes or ends, not at
// every publish.
func (r *Router) publishLocked() {
	t := &table{hosts: make(map[string]*app, 2*len(r.apps))}
	for n, a := range r.apps {
		t.hosts[n+"."+r.cfg.Domain] = a
	}
	claims, _ := r.claimsLocked()
	held, known := r.domains.holders()
	routes := routeDomains(claims, held)
	conflicts := map[string]string{}
	warn := func(d, msg string, kv ...any) {
		conflicts[d] = fmt.Sprint(msg, kv)
		if r.conflicts[d] != conflicts[d] {
			r.log.Warn(msg, append([]any{"domain", d}, kv...)...)
		}
	}
	for d, apps := range claims {
		if !known {
			break // the record is not read yet: no custom domain routes
		}
		if other, own := t.hosts[d]; own {
			if len(apps) > 1 || apps[0] != other.name {
				warn(d, "custom domain is another app's own host name: not routed to the app naming it", "apps", apps, "routed_to", other.name)
			}
			continue
		}
		if r.inRouterDomain(d) {
			warn(d, "custom domain is in the router domain, whose names are the apps' own: routed to none", "apps", apps)
			continue
		}
		to, ok := routes[d]
		switch {
		case ok:
			t.hosts[d] = r.apps[to]
			if len(apps) > 1 {
				warn(d, "custom domain named by more than one app: routed to the app that holds it", "apps", apps, "routed_to", to)
			}
		case held[d].app != "":
			warn(d, "custom domain held by an app that does not name it now: routed to none", "apps", apps, "held_by", held[d].app)
		default:
			warn(d, "custom domain named by more than one app: routed to none of them", "apps", apps)
		}
	}
	if known {
		for d := range r.conflicts {
			if _, still := conflicts[d]; still {
				continue
			}
			if a := t.hosts[d]; a != nil {
				r.log.Info("custom domain no longer in conflict", "domain", d, "routed_to", a.name)
			} else {
				r.log.Info("custom domain no longer in conflict", "domain", d)
			}
		}
		r.conflicts = conflicts
	}
	r.table.Store(t)
	r.domains.poke()
}

// inRouterDomain says whether host is the router domain or a name below it: the apps'
// own host names, also those of apps with no dyno now (not in the table), are never
// another app's custom domain.
func (r *Router) inRouterDomain(host string) bool {
	return host == r.cfg.Domain || strings.HasSuffix(host, "."+r.cfg.Domain)
}

// claimsLocked lists the apps naming each custom domain (sorted) and the apps that have
// passing instances. Caller holds r.mu.
func (r *Router) claimsLocked() (claims map[string][]string, present map[string]bool) {
	claims, present = map[string][]string{}, map[string]bool{}
	for n, a := range r.apps {
		s := a.settings.load()
		if s.instances > 0 {
			present[n] = true
		}
		for _, d := range s.domains {
			if !slices.Contains(claims[d], n) {
				claims[d] = append(claims[d], n)
			}
		}
	}
	for _, apps := range claims {
		sort.Strings(apps)
	}
	return claims, present
}

// canonicalHost lower-cases a Host header and drops its port and a trailing dot. A Host
// that is not a host[:port] (http1.ValidHost: "a:80,b", "a:b") names no app: "". The
// parser refuses such a Host already (HTTP/1.1, and HTTP/2 in serveH2Stream); this keeps
// any other way in from routing by the part before the colon.
func canonicalHost(h string) string {
	if !http1.ValidHost(h) {
		return ""
	}
	if strings.IndexByte(h, ':') >= 0 { // most Hosts have no port: no error to build
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// updateApp is SetApp for the Consul watcher; in cluster mode it keeps only the dynos
// this router owns.
func (r *Router) updateApp(name string, insts []Instance) {
	if c := r.cluster; c != nil {
		c.setInstances(name, insts)
		return
	}
	r.SetApp(name, insts)
}

// dropApp is RemoveApp for the Consul watcher.
func (r *Router) dropApp(name string) {
	if c := r.cluster; c != nil {
		c.setInstances(name, nil)
		return
	}
	r.RemoveApp(name)
}

// appRef returns the app's state, or nil.
func (r *Router) appRef(name string) *app {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apps[name]
}

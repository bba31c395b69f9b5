package router

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/internal/apierr"
)

// Nothing verifies that an app owns a custom domain it names (service meta "domains").
// So that no app takes another's domain (its traffic, or an ACME certificate for it),
// nor takes it down by naming it too, the routers record in Consul KV which app holds
// each custom domain: the first app seen naming it alone. Apps cannot write there
// (policies/consul/router.hcl). The holder keeps the domain while it names it, and also
// while it has no passing dyno (scaled to zero, crashed, mid-deploy); it gives the domain
// up once its dynos stop naming it, or once Nomad no longer has the app (with -nomad).
// Without a record (no Consul, or a token that may not read and write there) a domain
// that two apps name routes to neither.

// domainsPrefix holds one key per held custom domain, whose value is the holder's name.
const domainsPrefix = "dynogrid/router/domains/"

// maxHeldDomains is the most domains an app holds, however its dynos' meta was written:
// as many as a spec may name (appspec.MaxDomains; the router does not read specs).
const maxHeldDomains = 100

// domainHolder is the app that holds a domain, and the record's ModifyIndex.
type domainHolder struct {
	app   string
	index uint64
}

// domainRegistry keeps this router's view of the record and adds to and removes from it.
type domainRegistry struct {
	r      *Router
	client *consulapi.Client
	held   atomic.Pointer[map[string]domainHolder] // nil until first read
	// read is closed once the record has been read, or found unreadable: until then the
	// router routes no custom domain, so that none goes to an app that does not hold it.
	read     chan struct{}
	readOnce sync.Once
	kick     chan struct{}
	// off: the router's token may not read the record (until a read succeeds again);
	// with no record, a domain two apps name routes to neither.
	off    atomic.Bool
	warned atomic.Bool // a failure was logged
	// releaseGrace is how long a holder must be seen giving a domain up before its
	// record goes; releasing marks since when each was (used by run's goroutine alone).
	releaseGrace time.Duration
	releasing    map[string]time.Time
	now          func() time.Time
}

// newDomainRegistry keeps the record for r. Its release grace is the router's
// DomainReleaseGrace: routers see Consul each with its own lag, and one whose view of a
// holder is older than the record (the holder has just named the domain) must not
// release it.
func newDomainRegistry(r *Router, client *consulapi.Client) *domainRegistry {
	grace := r.cfg.DomainReleaseGrace
	if grace <= 0 {
		grace = DefaultConfig().DomainReleaseGrace
	}
	return &domainRegistry{r: r, client: client, read: make(chan struct{}), kick: make(chan struct{}, 1),
		releaseGrace: grace, releasing: map[string]time.Time{}, now: time.Now}
}

// holders is the record as last read, and whether custom domains may be routed: always
// without a registry (no Consul), and once the record has been read with one.
func (d *domainRegistry) holders() (map[string]domainHolder, bool) {
	if d == nil {
		return nil, true
	}
	if m := d.held.Load(); m != nil {
		return *m, true
	}
	return nil, false
}

// poke asks for the record to be brought up to date with the apps' claims.
func (d *domainRegistry) poke() {
	if d == nil {
		return
	}
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// watch follows the record and rebuilds the routing table on every change.
func (d *domainRegistry) watch(ctx context.Context) {
	watchKV(ctx, d.client, domainsPrefix, func(pairs consulapi.KVPairs) {
		held := make(map[string]domainHolder, len(pairs))
		for _, p := range pairs {
			dom := strings.TrimPrefix(p.Key, domainsPrefix)
			if dom != "" && len(p.Value) > 0 {
				held[dom] = domainHolder{app: string(p.Value), index: p.ModifyIndex}
			}
		}
		if d.off.CompareAndSwap(true, false) {
			d.warned.Store(false)
			d.r.log.Info("the record of custom domain holders is readable again")
		}
		d.store(held)
	}, func(err error) {
		if apierr.IsStatus(err, http.StatusForbidden) && d.off.CompareAndSwap(false, true) {
			d.failed("read", "", "", err)
			d.store(map[string]domainHolder{})
		}
	})
}

// store makes held the record the table is built from.
func (d *domainRegistry) store(held map[string]domainHolder) {
	d.held.Store(&held)
	d.readOnce.Do(func() { close(d.read) })
	d.r.mu.Lock()
	d.r.publishLocked()
	d.r.mu.Unlock()
}

// run brings the record up to date whenever poked, until ctx ends.
func (d *domainRegistry) run(ctx context.Context) {
	tick := time.NewTicker(d.releaseGrace / 4) // for releases whose grace ends
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
			d.sync(ctx)
		case <-tick.C:
			if len(d.releasing) > 0 {
				d.sync(ctx)
			}
		}
	}
}

// sync records a holder for each domain that one app alone names and no app holds (an
// app Nomad has, with -nomad: the number of keys is bounded by the apps), and
// removes the record of a holder that no longer names its domain while it has passing
// dynos, or that Nomad no longer has, once it has been seen so for releaseGrace.
func (d *domainRegistry) sync(ctx context.Context) {
	held, ok := d.holders()
	if !ok || d.off.Load() {
		return // not read yet (the watch publishes, and so pokes, when it has), or unreadable
	}
	d.r.mu.Lock()
	claims, present := d.r.claimsLocked()
	d.r.mu.Unlock()
	var apps map[string]bool
	if p := d.r.nomadApps.Load(); p != nil {
		apps = *p
	}
	kv := d.client.KV()
	w := (&consulapi.WriteOptions{}).WithContext(ctx)
	count := map[string]int{}
	for _, h := range held {
		count[h.app]++
	}
	for dom, names := range claims {
		if _, ok := held[dom]; ok || len(names) != 1 || !validDomainKey(dom) || d.r.inRouterDomain(dom) || count[names[0]] >= maxHeldDomains {
			continue
		}
		if apps != nil && !apps[names[0]] {
			continue // not an app (yet, or any more): a service "<name>-web" any job may register
		}
		count[names[0]]++
		if _, _, err := kv.CAS(&consulapi.KVPair{Key: domainsPrefix + dom, Value: []byte(names[0])}, w); err != nil {
			d.failed("record", dom, names[0], err)
		}
	}
	now := d.now()
	for dom := range d.releasing {
		if _, ok := held[dom]; !ok {
			delete(d.releasing, dom)
		}
	}
	for dom, h := range held {
		if slices.Contains(claims[dom], h.app) || !(present[h.app] || (apps != nil && !apps[h.app])) {
			delete(d.releasing, dom)
			continue
		}
		since, ok := d.releasing[dom]
		if !ok {
			d.releasing[dom] = now
			continue
		}
		if now.Sub(since) < d.releaseGrace {
			continue
		}
		delete(d.releasing, dom)
		if _, _, err := kv.DeleteCAS(&consulapi.KVPair{Key: domainsPrefix + dom, ModifyIndex: h.index}, w); err != nil {
			d.failed("release", dom, h.app, err)
		}
	}
}

func (d *domainRegistry) failed(what, dom, app string, err error) {
	if d.warned.CompareAndSwap(false, true) {
		d.r.log.Warn("cannot keep the record of custom domain holders; a domain two apps name routes to neither",
			"action", what, "domain", dom, "app", app, "error", err)
	}
}

// validDomainKey says whether a custom domain (canonical: lower case, no trailing dot)
// can be a key below domainsPrefix: a host name of letters, digits, '-' and '.', as a spec
// names them. Service meta is the tenant's to write, and the keys are read by operators
// (`consul kv get -recurse`): no escape sequence, path, wildcard or empty label is
// recorded. Such a domain still routes to the one app naming it.
func validDomainKey(dom string) bool {
	if dom == "" || len(dom) > 253 || dom[0] == '.' || strings.Contains(dom, "..") {
		return false
	}
	for i := 0; i < len(dom); i++ {
		if c := dom[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// routeDomains decides which app each custom domain routes to, from the apps that name
// it (claims) and the holders on record (held, nil when there is no record). A held
// domain routes to its holder while the holder names it, else to none; a domain no app
// holds routes to the one app naming it, or to none when several do.
func routeDomains(claims map[string][]string, held map[string]domainHolder) map[string]string {
	routes := make(map[string]string, len(claims))
	for dom, names := range claims {
		if h, ok := held[dom]; ok {
			if slices.Contains(names, h.app) {
				routes[dom] = h.app
			}
			continue
		}
		if len(names) == 1 {
			routes[dom] = names[0]
		}
	}
	return routes
}

package router

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestNoAppTakesAnotherAppsDomain: an app names, as custom domains, another app's custom
// domain and another app's own host name, at a router with no record of domain holders
// (no Consul). Neither routes to it: the own host name stays its app's, and a custom
// domain two apps name routes to none (else the router would send one app's traffic to
// the other, and order the other a certificate for it) until one of them stops naming
// it. With the record, the first app keeps it: TestFirstAppNamingADomainHoldsIt.
func TestNoAppTakesAnotherAppsDomain(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(http.ResponseWriter, *http.Request) {})
	tr := startRouter(t, nil)
	withDomains := func(ds ...string) []Instance {
		in := b.instance("web.1")
		in.Domains = ds
		return []Instance{in}
	}
	tr.SetApp("shop", withDomains("www.shop.test"))
	tr.SetApp("beta", nil)
	routed := func(host string) string {
		if a := tr.table.Load().lookup(host); a != nil {
			return a.name
		}
		return ""
	}
	if got := routed("www.shop.test"); got != "shop" {
		t.Fatalf("www.shop.test routes to %q: want shop", got)
	}
	// "aaa" sorts before "shop": it once won the domain that way.
	tr.SetApp("aaa", withDomains("www.shop.test", "beta."+tr.cfg.Domain))
	if got := routed("www.shop.test"); got != "" {
		t.Errorf("www.shop.test, named by shop and aaa, routes to %q: want none", got)
	}
	if got := routed("beta." + tr.cfg.Domain); got != "beta" {
		t.Errorf("beta's own host routes to %q: want beta", got)
	}
	tr.SetApp("aaa", withDomains())
	if got := routed("www.shop.test"); got != "shop" {
		t.Errorf("www.shop.test, named by shop alone again, routes to %q: want shop", got)
	}
}

// TestDomainConflictLoggedOncePerChange: a custom domain two apps name, or another app's
// own host name, is logged when the conflict begins, changes or ends; publishing the
// table again for other reasons (dynos coming and going) logs nothing more. First at a
// router with no record of domain holders (no Consul), then with one.
func TestDomainConflictLoggedOncePerChange(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	r, err := New(Config{Listen: "127.0.0.1:0", Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, func(http.ResponseWriter, *http.Request) {})
	withDomains := func(ds ...string) []Instance {
		in := b.instance("web.1")
		in.Domains = ds
		return []Instance{in}
	}
	count := func(msg string) int { return strings.Count(logs.String(), msg) }
	const twoApps = "custom domain named by more than one app"
	const ownHost = "custom domain is another app's own host name"
	const ended = "custom domain no longer in conflict"
	r.SetApp("shop", withDomains("www.shop.test"))
	r.SetApp("aaa", withDomains("www.shop.test", "shop.localhost"))
	for i := 0; i < 10; i++ { // republished: a dyno of another app comes and goes
		r.SetApp("other", withDomains())
		r.RemoveApp("other")
		r.SetApp("shop", withDomains("www.shop.test"))
	}
	if n, m := count(twoApps), count(ownHost); n != 1 || m != 1 {
		t.Fatalf("after 31 publishes with the same conflicts: %d lines %q and %d lines %q, want 1 each:\n%s", n, twoApps, m, ownHost, logs)
	}
	// A third app joins the conflict: the set changed, logged once more.
	r.SetApp("zzz", withDomains("www.shop.test"))
	r.SetApp("zzz", withDomains("www.shop.test"))
	if n := count(twoApps); n != 2 || !strings.Contains(logs.String(), `apps=["aaa", "shop", "zzz"]`) {
		t.Fatalf("a third app naming www.shop.test: %d lines %q, want 2, the last naming aaa, shop and zzz:\n%s", n, twoApps, logs)
	}
	// zzz leaves: changed again. Then the conflicts end: said once each; then a new one
	// is logged again.
	r.SetApp("zzz", withDomains())
	r.SetApp("zzz", withDomains())
	if n := count(twoApps); n != 3 {
		t.Fatalf("zzz no longer naming www.shop.test: %d lines %q, want 3:\n%s", n, twoApps, logs)
	}
	r.SetApp("aaa", withDomains())
	r.SetApp("aaa", withDomains())
	if n := count(ended); n != 2 || !strings.Contains(logs.String(), "domain=www.shop.test routed_to=shop") {
		t.Fatalf("conflicts ended: %d lines %q, want 2 (www.shop.test now routed to shop):\n%s", n, ended, logs)
	}
	r.SetApp("aaa", withDomains("www.shop.test"))
	if n := count(twoApps); n != 4 {
		t.Fatalf("the conflict back: %d lines %q, want 4:\n%s", n, twoApps, logs)
	}

	// With a record that shop holds www.shop.test (as read from Consul): aaa naming it
	// too is logged once, and so is shop no longer naming it.
	r.mu.Lock()
	r.domains = newDomainRegistry(r, nil)
	r.domains.held.Store(&map[string]domainHolder{"www.shop.test": {app: "shop", index: 1}})
	r.mu.Unlock()
	const toHolder = "routed to the app that holds it"
	const holderGone = "custom domain held by an app that does not name it now"
	for i := 0; i < 5; i++ {
		r.SetApp("other", withDomains())
		r.RemoveApp("other")
	}
	if n := count(toHolder); n != 1 {
		t.Fatalf("aaa naming shop's held domain, 10 publishes: %d lines %q, want 1:\n%s", n, toHolder, logs)
	}
	for i := 0; i < 5; i++ {
		r.SetApp("shop", withDomains())
	}
	if n := count(holderGone); n != 1 {
		t.Fatalf("shop no longer naming the domain it holds, 5 publishes: %d lines %q, want 1:\n%s", n, holderGone, logs)
	}
}

// TestNoCustomDomainInTheRouterDomain: an app names, as custom domains, the host name of
// an app that has no dyno now (scaled to zero, destroyed, not deployed yet: it is not in
// the table), the router domain itself and a name below an app's host. None routes to
// it, and none is recorded as held: the router domain's names are the apps' own, and an
// app naming them would otherwise get another app's requests (and its cookies), and a
// certificate for its host name, whenever that app has no dyno.
func TestNoCustomDomainInTheRouterDomain(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(http.ResponseWriter, *http.Request) {})
	tr := startRouter(t, nil)
	in := b.instance("web.1")
	d := tr.cfg.Domain
	in.Domains = []string{"victim." + d, d, "www.victim." + d, "www.evil.test"}
	tr.SetApp("evil", []Instance{in})
	for _, host := range []string{"victim." + d, d, "www.victim." + d} {
		if a := tr.table.Load().lookup(host); a != nil {
			t.Errorf("%s, in the router domain, routes to %q: want none", host, a.name)
		}
	}
	if a := tr.table.Load().lookup("www.evil.test"); a == nil || a.name != "evil" {
		t.Errorf("www.evil.test routes to %v: want evil", a)
	}
}

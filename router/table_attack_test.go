package router

import (
	"net/http"
	"testing"
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

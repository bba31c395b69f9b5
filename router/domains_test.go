package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/policies"
)

func TestRouteDomains(t *testing.T) {
	t.Parallel()
	if maxHeldDomains != appspec.MaxDomains {
		t.Errorf("an app holds up to %d domains, and a spec names up to %d", maxHeldDomains, appspec.MaxDomains)
	}
	held := map[string]domainHolder{"a.test": {app: "shop"}, "b.test": {app: "shop"}}
	got := routeDomains(map[string][]string{
		"a.test": {"evil", "shop"}, // the holder keeps it against a later app
		"b.test": {"evil"},         // held by an app that does not name it now: none
		"c.test": {"blog"},         // no holder, one app
		"d.test": {"blog", "evil"}, // no holder, two apps: none
	}, held)
	want := map[string]string{"a.test": "shop", "c.test": "blog"}
	if len(got) != len(want) || got["a.test"] != "shop" || got["c.test"] != "blog" {
		t.Errorf("routes %v, want %v", got, want)
	}
}

// TestFirstAppNamingADomainHoldsIt: an app that names a custom domain first holds it; a
// later app naming it too takes neither its traffic nor its service, also while the
// holder has no dyno and at a router that starts meanwhile; once the holder's dynos stop
// naming it, the other app gets it.
func TestFirstAppNamingADomainHoldsIt(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	token := harness.Tokens(t, g).Consul[policies.ConsulRouter]
	withConsul := func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), token
		cfg.DomainReleaseGrace = 200 * time.Millisecond
	}
	answer := func(name string) *backend {
		return newBackend(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })
	}
	shop, evil := answer("shop"), answer("evil")
	const domain = "www.first-holds.test"
	served := func(tr *testRouter) string {
		req, _ := http.NewRequest("GET", tr.url+"/", nil)
		req.Host = domain
		resp, err := testClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return resp.Status
		}
		return string(b)
	}
	holder := func() string {
		p, _, err := c.KV().Get(domainsPrefix+domain, nil)
		if err != nil || p == nil {
			return ""
		}
		return string(p.Value)
	}

	tr := startRouter(t, withConsul)
	shopID := register(t, c, "shop", "web.1", shop, map[string]string{"domains": domain}, false)
	waitFor(t, "shop serving and holding "+domain, func() bool { return served(tr) == "shop" && holder() == "shop" })

	register(t, c, "evil", "web.1", evil, map[string]string{"domains": domain + ",www.evil.test"}, false)
	waitFor(t, "evil routed", func() bool { return routes(tr, "www.evil.test") == 200 })
	for i := 0; i < 20; i++ {
		if got := served(tr); got != "shop" {
			t.Fatalf("with evil naming %s too, it served %q, want shop's answer", domain, got)
		}
	}

	// A router that starts now routes the domain to its holder from its first table.
	tr2 := startRouter(t, withConsul)
	if got := served(tr2); got != "shop" {
		t.Errorf("a router started after both apps named %s served %q, want shop's answer", domain, got)
	}

	// The holder scaled to zero keeps its domain: nobody gets it meanwhile.
	if err := c.Agent().ServiceDeregister(shopID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "shop gone", func() bool { return routes(tr, "shop.localhost") == 404 })
	if got := served(tr); !strings.HasPrefix(got, "404") || holder() != "shop" {
		t.Errorf("with the holder at no dyno, %s served %q and is held by %q; want 404 and shop", domain, got, holder())
	}

	// The holder's dynos stop naming the domain: the other app gets it.
	register(t, c, "shop", "web.1", shop, nil, false)
	waitFor(t, "evil holding "+domain+" once shop no longer names it", func() bool {
		return holder() == "evil" && served(tr) == "evil" && served(tr2) == "evil"
	})

	// Without the router's token, the record cannot be written.
	cfg := consulapi.DefaultConfig()
	cfg.Address, cfg.Token = g.Options.ConsulAddr(), ""
	anon, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.KV().Put(&consulapi.KVPair{Key: domainsPrefix + domain, Value: []byte("shop")}, nil); !apierr.IsStatus(err, http.StatusForbidden) {
		t.Errorf("an anonymous write of the record: %v, want 403", err)
	}
}

// kvWrites is a stand-in for Consul's KV API that answers every write and records the
// keys written (PUT) and deleted (DELETE), in order.
func kvWrites(t *testing.T) (*consulapi.Client, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		seen = append(seen, req.Method+" "+strings.TrimPrefix(req.URL.Path, "/v1/kv/"))
		mu.Unlock()
		io.WriteString(w, "true")
	}))
	t.Cleanup(srv.Close)
	cfg := consulapi.DefaultConfig()
	cfg.Address = srv.URL
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// TestDomainRecordIsForAppsThatExist: with Nomad's list of apps, a router records a
// holder only for an app Nomad has (a service "<name>-web" registered by some other
// job names no app), and never for a name of the router domain; each domain is recorded
// under its canonical form, and only a host name of letters, digits, '-' and '.' is.
func TestDomainRecordIsForAppsThatExist(t *testing.T) {
	t.Parallel()
	r, err := New(Config{Listen: "127.0.0.1:0", Domain: "apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	c, writes := kvWrites(t)
	r.mu.Lock()
	r.domains = newDomainRegistry(r, c)
	r.domains.held.Store(&map[string]domainHolder{})
	r.mu.Unlock()
	r.nomadApps.Store(&map[string]bool{"shop": true})
	in := func(ds ...string) []Instance {
		return []Instance{{ID: "1", Address: "127.0.0.1", Port: 1, Domains: ds}}
	}
	// A tenant that writes its job's service meta itself names what it likes: escapes
	// that an operator's `consul kv get -recurse` would run, a wildcard, a path.
	r.SetApp("shop", in("WWW.Shop.test.", "other.apps.test", "\x1b]52;c;cHduZWQ=\x07.shop.test", "*.shop.test",
		"a%2f..%2fmeter.test", "a?b.test", "shop..test", ".shop.test", "bücher.test"))
	r.SetApp("ghost", in("www.ghost.test"))
	r.domains.sync(context.Background())
	got := writes()
	slices.Sort(got)
	if want := []string{"PUT " + domainsPrefix + "www.shop.test"}; !slices.Equal(got, want) {
		t.Errorf("the record written: %q, want %q", got, want)
	}
}

// TestDomainRecordKeptOnceReadable: a router whose token may not read the record (403)
// routes as without one; once an operator gives the token its rights, the router reads
// the record and writes it again, without a restart.
func TestDomainRecordKeptOnceReadable(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	allowed := false
	var puts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !allowed:
			http.Error(w, "Permission denied", http.StatusForbidden)
		case req.Method == http.MethodGet:
			if req.URL.Query().Get("index") != "" {
				mu.Unlock()
				<-req.Context().Done() // a blocking query with nothing new
				mu.Lock()
				return
			}
			w.Header().Set("X-Consul-Index", "7")
			io.WriteString(w, "[]")
		default:
			puts = append(puts, req.Method+" "+strings.TrimPrefix(req.URL.Path, "/v1/kv/"))
			io.WriteString(w, "true")
		}
	}))
	t.Cleanup(srv.Close)
	cfg := consulapi.DefaultConfig()
	cfg.Address = srv.URL
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.domains = newDomainRegistry(r, c)
	r.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.domains.watch(ctx)
	waitFor(t, "the record found unreadable", func() bool { return r.domains.off.Load() })
	r.SetApp("shop", []Instance{{ID: "1", Address: "127.0.0.1", Port: 1, Domains: []string{"www.shop.test"}}})
	mu.Lock()
	allowed = true
	mu.Unlock()
	waitFor(t, "shop's domain recorded once the record is readable", func() bool {
		r.domains.sync(ctx)
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(puts, "PUT "+domainsPrefix+"www.shop.test")
	})
}

// TestDomainReleasedAfterItsGrace: a holder seen with dynos that no longer name its
// domain keeps the record for the release grace (a router's view of Consul may be older
// than the record), and loses it once seen so for longer; named again meanwhile, it
// keeps it.
func TestDomainReleasedAfterItsGrace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		after     time.Duration
		namedBack bool
		want      []string
	}{
		{time.Second, false, nil},
		{time.Minute, true, nil},
		{time.Minute, false, []string{"DELETE " + domainsPrefix + "www.shop.test"}},
	} {
		r, err := New(Config{Listen: "127.0.0.1:0", DomainReleaseGrace: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c, writes := kvWrites(t)
		r.mu.Lock()
		r.domains = newDomainRegistry(r, c)
		clock := time.Unix(1_000_000, 0)
		r.domains.now = func() time.Time { return clock }
		r.domains.held.Store(&map[string]domainHolder{"www.shop.test": {app: "shop", index: 9}})
		r.mu.Unlock()
		r.SetApp("shop", []Instance{{ID: "1", Address: "127.0.0.1", Port: 1}})
		r.domains.sync(context.Background()) // seen giving it up: the grace starts
		if tc.namedBack {
			r.SetApp("shop", []Instance{{ID: "1", Address: "127.0.0.1", Port: 1, Domains: []string{"www.shop.test"}}})
			r.domains.sync(context.Background())
			r.SetApp("shop", []Instance{{ID: "1", Address: "127.0.0.1", Port: 1}})
		}
		clock = clock.Add(tc.after)
		r.domains.sync(context.Background())
		if got := writes(); !slices.Equal(got, tc.want) {
			t.Errorf("%s later, named again meanwhile %v: the record written %q, want %q", tc.after, tc.namedBack, got, tc.want)
		}
	}
}

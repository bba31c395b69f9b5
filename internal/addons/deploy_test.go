package addons

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/plugins/addon"
)

// TestSpecAttach_OneReleaseForTheDeploy: the deploy's add-ons are provisioned and their
// variables handed to the deploy, without a release of their own, and recorded
// attached once the deploy's release is out.
func TestSpecAttach_OneReleaseForTheDeploy(t *testing.T) {
	t.Parallel()
	c := newCache(goodAnswer)
	m, f := newManager(t, appEnv, c, 0)
	ctx := context.Background()
	s := &SpecAttach{Manager: m, App: "shop", Want: []appspec.Addon{{Service: "cache", Name: "cache"}, {Service: "cache", Name: "sessions", Plan: "large"}}}

	vars, names, err := s.Provision(ctx, map[string]string{"RACK_ENV": "production"})
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if !equal(names, []string{"cache", "sessions"}) || vars["CACHE_URL"] != "cache://shop/small" || vars["SESSIONS_CACHE_URL"] != "cache://shop/large" || len(vars) != 4 {
		t.Errorf("Provision = %v, %v; want both add-ons' variables", vars, names)
	}
	if r := f.released(); len(r) != 0 {
		t.Errorf("provisioning made releases %q, want none: the deploy makes the one release", r)
	}
	for _, name := range names {
		if a, err := m.Get(ctx, "shop", name); err != nil || a.State != StateProvisioned {
			t.Errorf("%s after Provision: %+v, %v; want provisioned", name, a, err)
		}
	}
	if err := s.Attached(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if a, err := m.Get(ctx, "shop", name); err != nil || a.State != StateAttached {
			t.Errorf("%s after Attached: %+v, %v; want attached", name, a, err)
		}
	}
	// A second deploy provisions nothing.
	again := &SpecAttach{Manager: m, App: "shop", Want: s.Want}
	if vars, names, err := again.Provision(ctx, f.env()); err != nil || len(vars) != 0 || len(names) != 0 || len(c.provisioned) != 2 {
		t.Errorf("a second deploy's Provision = %v, %v, %v (asked %d times); want nothing asked", vars, names, err, len(c.provisioned))
	}
}

// TestSpecAttach_FailureKeepsWhatWasProvisioned: when an add-on cannot be provisioned
// the deploy gets an error saying no release was made; the add-on provisioned before
// it stays provisioned, and the next deploy gets the same resource for it.
func TestSpecAttach_FailureKeepsWhatWasProvisioned(t *testing.T) {
	t.Parallel()
	c := newCache(func(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
		if req.Name == "sessions" {
			return addon.Resource{}, errors.New("the cache cluster is full")
		}
		return goodAnswer(ctx, req)
	})
	m, f := newManager(t, appEnv, c, 0)
	ctx := context.Background()
	want := []appspec.Addon{{Service: "cache", Name: "cache"}, {Service: "cache", Name: "sessions"}}
	_, _, err := (&SpecAttach{Manager: m, App: "shop", Want: want}).Provision(ctx, appEnv)
	if err == nil || !strings.Contains(err.Error(), `add-on "cache": provision: rejected: the cache cluster is full`) || !strings.Contains(err.Error(), "no release was made (cache stay provisioned, unattached") {
		t.Fatalf("Provision = %v, want an error naming the failure, saying no release was made and cache stays", err)
	}
	if a, err := m.Get(ctx, "shop", "cache"); err != nil || a.State != StateProvisioned || len(f.released()) != 0 {
		t.Errorf("cache after the failure: %+v, %v, releases %q; want provisioned, no release", a, err, f.released())
	}
	vars, names, err := (&SpecAttach{Manager: m, App: "shop", Want: want[:1]}).Provision(ctx, appEnv)
	if err != nil || !equal(names, []string{"cache"}) || len(c.provisioned) != 3 || c.provisioned[0].RequestID != c.provisioned[2].RequestID || vars["CACHE_TOKEN"] != "t-"+c.provisioned[0].RequestID {
		t.Errorf("the next deploy: %v, %v, %v, asked %+v; want the same request and resource", vars, names, err, c.provisioned)
	}
}

// TestSpecAttach_RefusesBeforeProvisioningAny: an add-on of the spec that cannot be
// attached as asked (an unknown add-on or plan, or a name whose prefix makes a reserved
// variable name of one of its variables) is refused before any add-on is provisioned
// or recorded, the ones before it included.
func TestSpecAttach_RefusesBeforeProvisioningAny(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		want appspec.Addon
		err  string
	}{
		"a reserved prefix": {appspec.Addon{Service: "cache", Name: "ld"},
			`add-on cache cannot be attached as "ld": the prefix LD_ turns its variable CACHE_URL into LD_CACHE_URL, and variable name "LD_CACHE_URL" starts with the reserved prefix LD_; choose another name (--as NAME, or as = "NAME" in the spec); no release was made, and no add-on was provisioned`},
		"an unknown plan": {appspec.Addon{Service: "cache", Name: "sessions", Plan: "huge"},
			`add-on cache has no plan "huge" (its plans: small, large); no release was made`},
		"an unknown add-on": {appspec.Addon{Service: "redis", Name: "redis"},
			`add-on "redis": find: not found`},
	} {
		c := newCache(goodAnswer)
		m, f := newManager(t, appEnv, c, 0)
		want := []appspec.Addon{{Service: "cache", Name: "cache"}, tc.want}
		_, _, err := (&SpecAttach{Manager: m, App: "shop", Want: want}).Provision(context.Background(), appEnv)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: Provision = %v, want %q", name, err, tc.err)
		}
		if len(c.provisioned) != 0 || len(f.attachments()) != 0 || len(f.released()) != 0 {
			t.Errorf("%s: provisioned %+v, attachments %v, releases %q; want nothing done", name, c.provisioned, f.attachments(), f.released())
		}
	}
}

// TestSpecAttach_Clashes: variables that clash with the app's or with each other's are
// refused before any release.
func TestSpecAttach_Clashes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want []appspec.Addon
		err  string
	}{
		"a config var": {map[string]string{"CACHE_URL": "mine"}, []appspec.Addon{{Service: "cache", Name: "cache"}},
			"add-on cache would set CACHE_URL, which shop already has"},
		"a config limit": {fullEnv(appspec.MaxConfigVars - 1), []appspec.Addon{{Service: "cache", Name: "cache"}},
			"the add-ons' variables would break a config limit of shop"},
	} {
		m, f := newManager(t, appEnv, newCache(goodAnswer), 0)
		_, _, err := (&SpecAttach{Manager: m, App: "shop", Want: tc.want}).Provision(context.Background(), tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.err) || len(f.released()) != 0 {
			t.Errorf("%s: Provision = %v, releases %q; want %q and no release", name, err, f.released(), tc.err)
		}
	}
}

// fullEnv is an environment of n config vars.
func fullEnv(n int) map[string]string {
	env := map[string]string{}
	for i := range n {
		env[fmt.Sprintf("VAR_%d", i)] = "x"
	}
	return env
}

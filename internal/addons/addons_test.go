package addons

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
	nomadapi "github.com/hashicorp/nomad/api"
)

// cacheAddon is add-on "cache" (plans small and large; variables CACHE_URL and
// CACHE_TOKEN), run by the host in process. It records what it was asked; the host
// calls it from the caller's goroutine.
type cacheAddon struct {
	addontest.Mock
	provisioned   []addon.ProvisionRequest
	deprovisioned []addon.DeprovisionRequest
}

// newCache returns the add-on; answer answers each Provision.
func newCache(answer func(context.Context, addon.ProvisionRequest) (addon.Resource, error)) *cacheAddon {
	c := &cacheAddon{}
	c.DescribeFunc = func(context.Context) (addon.Description, error) {
		return addon.Description{Name: "cache", Plans: []addon.Plan{{Name: "small"}, {Name: "large"}},
			EnvVars: []string{"CACHE_URL", "CACHE_TOKEN"}}, nil
	}
	c.ProvisionFunc = func(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
		c.provisioned = append(c.provisioned, req)
		return answer(ctx, req)
	}
	c.DeprovisionFunc = func(_ context.Context, req addon.DeprovisionRequest) error {
		c.deprovisioned = append(c.deprovisioned, req)
		return nil
	}
	return c
}

// goodAnswer is a valid answer: the same resource for the same request ID.
func goodAnswer(_ context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
	return addon.Resource{ID: "cache-" + req.RequestID, Env: map[string]string{
		"CACHE_URL": "cache://" + req.App + "/" + req.Plan, "CACHE_TOKEN": "t-" + req.RequestID}}, nil
}

// requestIDs lists the request IDs the add-on was asked to provision.
func (c *cacheAddon) requestIDs() []string {
	var out []string
	for _, r := range c.provisioned {
		out = append(out, r.RequestID)
	}
	return out
}

// newManager returns a manager for app "shop", whose release v1 has env, on a fake
// Nomad, with add-on c run in process.
func newManager(t *testing.T, env map[string]string, c *cacheAddon, provisionTimeout time.Duration) (*Manager, *fakeNomad) {
	t.Helper()
	f, nomad := newFakeNomad(t, env)
	host, err := addonhost.New(addonhost.Options{
		InProcess:        map[string]addon.Addon{"cache": &c.Mock},
		ProvisionTimeout: provisionTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Manager{Deployer: &deploy.Deployer{Nomad: nomad}, Host: host}, f
}

var appEnv = map[string]string{"RACK_ENV": "production"}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAttach_ProvisionsThenReleases(t *testing.T) {
	t.Parallel()
	c := newCache(goodAnswer)
	m, f := newManager(t, appEnv, c, 0)
	ctx := context.Background()

	a, err := m.Attach(ctx, "shop", "cache", "", "")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if a.State != StateAttached || a.Service != "cache" || a.Name != "cache" || a.Plan != "small" || a.ResourceID != "cache-"+a.RequestID {
		t.Errorf("attachment = %+v, want cache attached as cache on plan small (the first) with resource cache-<request ID>", a)
	}
	if want := []addon.ProvisionRequest{{RequestID: a.RequestID, App: "shop", Plan: "small", Name: "cache"}}; !equal(c.provisioned, want) {
		t.Errorf("the add-on was asked %+v, want %+v", c.provisioned, want)
	}
	if got, want := f.released(), []string{"Attach cache as cache"}; !equal(got, want) {
		t.Errorf("releases = %q, want %q", got, want)
	}
	env := f.env()
	if env["RACK_ENV"] != "production" || env["CACHE_URL"] != "cache://shop/small" || env["CACHE_TOKEN"] != "t-"+a.RequestID || len(env) != 3 {
		t.Errorf("the release's environment = %v, want RACK_ENV and the add-on's two variables", env)
	}
	list, err := m.List(ctx, "shop")
	if err != nil || len(list) != 1 || list[0].Name != "cache" || !equal(list[0].EnvNames, []string{"CACHE_TOKEN", "CACHE_URL"}) {
		t.Errorf("List = %+v, %v; want the one attachment with its variables' names", list, err)
	}
}

func TestAttach_UnderAnotherNameOnAPlan(t *testing.T) {
	t.Parallel()
	c := newCache(goodAnswer)
	m, f := newManager(t, appEnv, c, 0)

	a, err := m.Attach(context.Background(), "shop", "cache", "sessions", "large")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if len(c.provisioned) != 1 || c.provisioned[0].Plan != "large" || c.provisioned[0].Name != "sessions" {
		t.Errorf("the add-on was asked %+v, want plan large for attachment sessions", c.provisioned)
	}
	if want := []string{"SESSIONS_CACHE_TOKEN", "SESSIONS_CACHE_URL"}; !equal(a.EnvNames, want) {
		t.Errorf("variables = %v, want %v", a.EnvNames, want)
	}
	if env := f.env(); env["SESSIONS_CACHE_URL"] != "cache://shop/large" || env["CACHE_URL"] != "" {
		t.Errorf("the release's environment = %v, want the add-on's variables prefixed with SESSIONS_", env)
	}
	if got, want := f.released(), []string{"Attach cache as sessions"}; !equal(got, want) {
		t.Errorf("releases = %q, want %q", got, want)
	}
}

// TestAttach_Refusals covers what is refused before the add-on is asked for anything:
// nothing is provisioned, recorded or released.
func TestAttach_Refusals(t *testing.T) {
	t.Parallel()
	declare := func(names ...string) func(*cacheAddon) {
		return func(c *cacheAddon) {
			c.DescribeFunc = func(context.Context) (addon.Description, error) {
				return addon.Description{Name: "cache", Plans: []addon.Plan{{Name: "small"}}, EnvVars: names}, nil
			}
		}
	}
	cases := []struct {
		name                   string
		app, service, as, plan string
		seed                   func(*fakeNomad)
		want                   string
		change                 func(*cacheAddon)
	}{
		{"bad name", "shop", "cache", "Bad_Name", "", nil, `--as "Bad_Name" is not an add-on name`, nil},
		{"a prefix making a reserved prefix", "shop", "cache", "nomad", "", nil,
			`add-on cache cannot be attached as "nomad": the prefix NOMAD_ turns its variable CACHE_URL into NOMAD_CACHE_URL, and variable name "NOMAD_CACHE_URL" starts with the reserved prefix NOMAD_; choose another name (--as NAME, or as = "NAME" in the spec)`, nil},
		{"a prefix making LD_PRELOAD", "shop", "cache", "ld", "", nil,
			`add-on cache cannot be attached as "ld": the prefix LD_ turns its variable PRELOAD into LD_PRELOAD, and variable name "LD_PRELOAD" starts with the reserved prefix LD_`, declare("PRELOAD")},
		{"a prefix making NOMAD_TOKEN", "shop", "cache", "nomad", "", nil,
			`the prefix NOMAD_ turns its variable TOKEN into NOMAD_TOKEN, and variable name "NOMAD_TOKEN" starts with the reserved prefix NOMAD_`, declare("TOKEN")},
		{"a prefix making a name too long", "shop", "cache", "sessions", "", nil,
			`the prefix SESSIONS_ turns its variable ` + strings.Repeat("A", 128) + ` into SESSIONS_` + strings.Repeat("A", 128) + `, and variable name "SESSIONS_` + strings.Repeat("A", 128) + `" is not of the form [A-Z_][A-Z0-9_]* (at most 128)`, declare(strings.Repeat("A", 128))},
		{"unknown plan", "shop", "cache", "", "huge", nil, `add-on cache has no plan "huge" (its plans: small, large)`, nil},
		{"no app", "gone", "cache", "", "", nil, "no such app: gone", nil},
		{"unknown add-on", "shop", "redis", "", "", nil, `add-on "redis": find: not found`, nil},
		{"taken name", "shop", "cache", "", "", func(f *fakeNomad) {
			f.vars[path("shop", "cache")] = nomadapi.VariableItems{"_service": "postgres", "_state": StateAttached}
		}, `shop already has an add-on named "cache" (a postgres); choose another name with --as`, nil},
		{"too many add-ons", "shop", "cache", "", "", func(f *fakeNomad) {
			for i := range appspec.MaxAddons {
				f.vars[path("shop", fmt.Sprintf("db%d", i))] = nomadapi.VariableItems{"_service": "postgres", "_state": StateAttached}
			}
		}, fmt.Sprintf("shop has %d add-ons, the limit; remove one with `dyno addons:destroy NAME` before attaching another", appspec.MaxAddons), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(goodAnswer)
			if tc.change != nil {
				tc.change(c)
			}
			m, f := newManager(t, appEnv, c, 0)
			if tc.seed != nil {
				tc.seed(f)
			}
			before := f.attachments()
			_, err := m.Attach(context.Background(), tc.app, tc.service, tc.as, tc.plan)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Attach = %v, want an error containing %q", err, tc.want)
			}
			if len(c.provisioned) != 0 || len(f.released()) != 0 || !equal(f.attachments(), before) {
				t.Errorf("after a refusal: provisioned %v, released %q, attachments %v (before: %v); want nothing done", c.provisioned, f.released(), f.attachments(), before)
			}
		})
	}
}

// TestAttach_RetryKeepsTheRequestID fails a first Provision, by the add-on's own error
// or by its deadline: the attachment is kept as provisioning, with its request ID, and
// running the same command again asks the add-on for the same request.
func TestAttach_RetryKeepsTheRequestID(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		fail func(ctx context.Context) error
		want string
		kind addonhost.Kind
	}{
		"the add-on's error": {
			fail: func(context.Context) error { return errors.New("the cache cluster is full") },
			want: `add-on "cache": provision: rejected: the cache cluster is full (run the same command again to retry: the add-on returns the same resource)`,
			kind: addonhost.KindRejected,
		},
		"no answer in time": {
			fail: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			want: `add-on "cache": provision: timed out: the plugin did not answer within`,
			kind: addonhost.KindTimeout,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			c := newCache(func(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
				if calls++; calls == 1 {
					return addon.Resource{}, tc.fail(ctx)
				}
				return goodAnswer(ctx, req)
			})
			m, f := newManager(t, appEnv, c, 50*time.Millisecond)
			ctx := context.Background()

			_, err := m.Attach(ctx, "shop", "cache", "", "")
			if err == nil || !strings.Contains(err.Error(), tc.want) || addonhost.KindOf(err) != tc.kind {
				t.Fatalf("first Attach = %v (kind %v), want %q (kind %v)", err, addonhost.KindOf(err), tc.want, tc.kind)
			}
			half, err := m.Get(ctx, "shop", "cache")
			if err != nil || half.State != StateProvisioning || half.RequestID == "" || len(half.EnvNames) != 0 {
				t.Fatalf("after the failure: %+v, %v; want the attachment kept as provisioning with its request ID", half, err)
			}
			if len(f.released()) != 0 {
				t.Errorf("released %q after a failed provision", f.released())
			}

			a, err := m.Attach(ctx, "shop", "cache", "", "")
			if err != nil {
				t.Fatalf("second Attach: %v", err)
			}
			if want := []string{half.RequestID, half.RequestID}; !equal(c.requestIDs(), want) {
				t.Errorf("request IDs asked = %v, want the same one twice: %v", c.requestIDs(), want)
			}
			if a.State != StateAttached || a.ResourceID != "cache-"+half.RequestID {
				t.Errorf("attachment = %+v, want attached to resource cache-%s", a, half.RequestID)
			}

			_, err = m.Attach(ctx, "shop", "cache", "", "")
			if want := `shop already has cache attached as "cache"`; err == nil || err.Error() != want {
				t.Errorf("third Attach = %v, want %q", err, want)
			}
			if len(c.provisioned) != 2 || !equal(f.released(), []string{"Attach cache as cache"}) {
				t.Errorf("after the third Attach: %d provisions, releases %q; want 2 and one release", len(c.provisioned), f.released())
			}
		})
	}
}

// TestAttach_BadAnswers gives the manager answers it must not attach: those the host
// refuses (the protocol's rules) and those the manager refuses (the app's environment).
// Nothing is released and the attachment stays provisioning, for a retry or a destroy.
func TestAttach_BadAnswers(t *testing.T) {
	t.Parallel()
	answer := func(env map[string]string) func(context.Context, addon.ProvisionRequest) (addon.Resource, error) {
		return func(context.Context, addon.ProvisionRequest) (addon.Resource, error) {
			return addon.Resource{ID: "r1", Env: env}, nil
		}
	}
	url := "cache://h:1"
	big := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name   string
		appEnv map[string]string
		env    map[string]string
		want   string
	}{
		{"missing variable", appEnv, map[string]string{"CACHE_URL": url},
			`add-on "cache": provision: invalid answer: declared variable CACHE_TOKEN is missing from the answer`},
		{"bad variable name", appEnv, map[string]string{"CACHE_URL": url, "CACHE_TOKEN": "t", "cache_url": url},
			`add-on "cache": provision: invalid answer: variable name "cache_url" is not of the form`},
		{"undeclared variable", appEnv, map[string]string{"CACHE_URL": url, "CACHE_TOKEN": "t", "OTHER": "x"},
			"invalid answer: variable OTHER was not declared by Describe (declared: CACHE_URL, CACHE_TOKEN)"},
		{"value with a line break", appEnv, map[string]string{"CACHE_URL": url, "CACHE_TOKEN": "t\nEVIL=1"},
			"invalid answer: variable CACHE_TOKEN: value contains a line break"},
		{"oversized value", appEnv, map[string]string{"CACHE_URL": url, "CACHE_TOKEN": big(addon.MaxEnvValueBytes + 1)},
			fmt.Sprintf("invalid answer: variable CACHE_TOKEN: value is %d bytes long, at most %d allowed", addon.MaxEnvValueBytes+1, addon.MaxEnvValueBytes)},
		{"a variable the app has", map[string]string{"CACHE_URL": "mine"}, map[string]string{"CACHE_URL": url, "CACHE_TOKEN": "t"},
			"add-on cache would set CACHE_URL, which shop already has; attach it under another name with --as"},
		{"over the app's config size", map[string]string{"BLOB1": big(appspec.MaxConfigValueBytes), "BLOB2": big(appspec.MaxConfigValueBytes - 2000)},
			map[string]string{"CACHE_URL": url, "CACHE_TOKEN": big(addon.MaxEnvValueBytes)},
			"add-on cache was not attached to shop: its variables would break a config limit (Config vars too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, f := newManager(t, tc.appEnv, newCache(answer(tc.env)), 0)
			_, err := m.Attach(context.Background(), "shop", "cache", "", "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Attach = %v, want an error containing %q", err, tc.want)
			}
			if len(f.released()) != 0 {
				t.Errorf("released %q", f.released())
			}
			if a, err := m.Get(context.Background(), "shop", "cache"); err != nil || a.State != StateProvisioning || len(a.EnvNames) != 0 {
				t.Errorf("attachment = %+v, %v; want it provisioning, with no variables", a, err)
			}
		})
	}
}

func TestDetach_ReleasesThenDeprovisions(t *testing.T) {
	t.Parallel()
	c := newCache(goodAnswer)
	m, f := newManager(t, appEnv, c, 0)
	ctx := context.Background()
	a, err := m.Attach(ctx, "shop", "cache", "", "")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	var releasedBefore []string
	deprovision := c.DeprovisionFunc
	c.DeprovisionFunc = func(ctx context.Context, req addon.DeprovisionRequest) error {
		releasedBefore = f.released()
		return deprovision(ctx, req)
	}

	if err := m.Detach(ctx, "shop", "cache"); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if want := []addon.DeprovisionRequest{{RequestID: a.RequestID, ResourceID: a.ResourceID, App: "shop"}}; !equal(c.deprovisioned, want) {
		t.Errorf("the add-on was asked to deprovision %+v, want %+v", c.deprovisioned, want)
	}
	if want := []string{"Attach cache as cache", "Detach cache"}; !equal(releasedBefore, want) {
		t.Errorf("releases before the deprovision = %q, want %q", releasedBefore, want)
	}
	if env := f.env(); len(env) != 1 || env["RACK_ENV"] != "production" {
		t.Errorf("the release's environment = %v, want only RACK_ENV", env)
	}
	if got := f.attachments(); len(got) != 0 {
		t.Errorf("attachments left: %v", got)
	}
	if err := m.Detach(ctx, "shop", "cache"); err == nil || !strings.Contains(err.Error(), `shop has no add-on named "cache"`) {
		t.Errorf("second Detach = %v, want an error saying there is no such add-on", err)
	}
}

// TestDetach_RetryAfterTheAddonFailed fails the first Deprovision: the app's release is
// already made, the attachment is kept, and the same command finishes the job.
func TestDetach_RetryAfterTheAddonFailed(t *testing.T) {
	t.Parallel()
	c := newCache(goodAnswer)
	m, f := newManager(t, appEnv, c, 0)
	ctx := context.Background()
	a, err := m.Attach(ctx, "shop", "cache", "", "")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	deprovision := c.DeprovisionFunc
	c.DeprovisionFunc = func(ctx context.Context, req addon.DeprovisionRequest) error {
		if err := deprovision(ctx, req); err != nil {
			return err
		}
		if len(c.deprovisioned) == 1 {
			return errors.New("the cache cluster is unreachable")
		}
		return nil
	}

	err = m.Detach(ctx, "shop", "cache")
	if want := `add-on "cache": deprovision: rejected: the cache cluster is unreachable (the variables are already removed; run the same command again to retry)`; err == nil || err.Error() != want {
		t.Fatalf("first Detach = %v, want %q", err, want)
	}
	if got := f.attachments(); len(got) != 1 {
		t.Errorf("attachments = %v, want the one kept", got)
	}
	if err := m.Detach(ctx, "shop", "cache"); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	if len(c.deprovisioned) != 2 || c.deprovisioned[1] != c.deprovisioned[0] || c.deprovisioned[1].ResourceID != a.ResourceID {
		t.Errorf("deprovisions = %+v, want the same request twice", c.deprovisioned)
	}
	if want := []string{"Attach cache as cache", "Detach cache"}; !equal(f.released(), want) {
		t.Errorf("releases = %q, want %q: the retry has no variables left to remove", f.released(), want)
	}
	if got := f.attachments(); len(got) != 0 {
		t.Errorf("attachments left: %v", got)
	}
}

// TestDetach_HalfMadeAttachment destroys an attachment whose Provision failed: the
// add-on may have made the resource before it failed, so the manager asks for the
// request's resource again (the same request ID answers the same resource) and removes
// it.
func TestDetach_HalfMadeAttachment(t *testing.T) {
	t.Parallel()
	calls := 0
	c := newCache(func(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
		if calls++; calls == 1 {
			return addon.Resource{}, errors.New("the connection to the cache cluster broke")
		}
		return goodAnswer(ctx, req)
	})
	m, f := newManager(t, appEnv, c, 0)
	ctx := context.Background()
	if _, err := m.Attach(ctx, "shop", "cache", "", ""); err == nil {
		t.Fatal("the first Attach succeeded")
	}
	half, err := m.Get(ctx, "shop", "cache")
	if err != nil || half.State != StateProvisioning {
		t.Fatalf("attachment = %+v, %v; want it provisioning", half, err)
	}

	if err := m.Detach(ctx, "shop", "cache"); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if want := []string{half.RequestID, half.RequestID}; !equal(c.requestIDs(), want) {
		t.Errorf("request IDs asked = %v, want %v", c.requestIDs(), want)
	}
	if want := []addon.DeprovisionRequest{{RequestID: half.RequestID, ResourceID: "cache-" + half.RequestID, App: "shop"}}; !equal(c.deprovisioned, want) {
		t.Errorf("the add-on was asked to deprovision %+v, want %+v", c.deprovisioned, want)
	}
	if got := f.attachments(); len(got) != 0 {
		t.Errorf("attachments left: %v", got)
	}
	if len(f.released()) != 0 {
		t.Errorf("released %q: the app never had the add-on's variables", f.released())
	}
}

// TestDetach_HalfMadeAttachmentRetries fails the steps of destroying a half-made
// attachment one after the other: each failure keeps the attachment and says to run
// the same command again, and a resource found once is not asked for again.
func TestDetach_HalfMadeAttachmentRetries(t *testing.T) {
	t.Parallel()
	calls := 0
	c := newCache(func(ctx context.Context, req addon.ProvisionRequest) (addon.Resource, error) {
		switch calls++; calls {
		case 1:
			return addon.Resource{}, errors.New("the connection to the cache cluster broke")
		case 2:
			return addon.Resource{ID: "cache-" + req.RequestID, Env: map[string]string{"CACHE_URL": "x"}}, nil
		}
		return goodAnswer(ctx, req)
	})
	deprovision := c.DeprovisionFunc
	c.DeprovisionFunc = func(ctx context.Context, req addon.DeprovisionRequest) error {
		if err := deprovision(ctx, req); err != nil {
			return err
		}
		if len(c.deprovisioned) == 1 {
			return errors.New("the cache cluster is unreachable")
		}
		return nil
	}
	m, f := newManager(t, appEnv, c, 0)
	ctx := context.Background()
	if _, err := m.Attach(ctx, "shop", "cache", "", ""); err == nil {
		t.Fatal("the first Attach succeeded")
	}

	err := m.Detach(ctx, "shop", "cache")
	if want := `failed to find the resource of add-on cache, whose provisioning did not finish, to remove it: add-on "cache": provision: invalid answer: declared variable CACHE_TOKEN is missing from the answer (run the same command again to retry)`; err == nil || err.Error() != want {
		t.Fatalf("first Detach = %v, want %q", err, want)
	}
	err = m.Detach(ctx, "shop", "cache")
	if want := `add-on "cache": deprovision: rejected: the cache cluster is unreachable (the variables are already removed; run the same command again to retry)`; err == nil || err.Error() != want {
		t.Fatalf("second Detach = %v, want %q", err, want)
	}
	a, err := m.Get(ctx, "shop", "cache")
	if err != nil || a.State != StateProvisioning || a.ResourceID != "cache-"+a.RequestID {
		t.Fatalf("attachment = %+v, %v; want it kept, provisioning, with the resource found", a, err)
	}
	if err := m.Detach(ctx, "shop", "cache"); err != nil {
		t.Fatalf("third Detach: %v", err)
	}
	if len(c.provisioned) != 3 {
		t.Errorf("provisions = %d, want 3: the failed one and the two asking for its resource", len(c.provisioned))
	}
	if len(c.deprovisioned) != 2 || c.deprovisioned[1].ResourceID != a.ResourceID {
		t.Errorf("deprovisions = %+v, want two of %s", c.deprovisioned, a.ResourceID)
	}
	if got := f.attachments(); len(got) != 0 {
		t.Errorf("attachments left: %v", got)
	}
}

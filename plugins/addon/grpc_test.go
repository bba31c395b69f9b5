package addon_test

import (
	"context"
	"testing"

	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
)

// fake is an add-on built from function fields.
type fake struct {
	provision func(addon.ProvisionRequest) (addon.Resource, error)
	got       addon.ProvisionRequest
}

func (f *fake) Configure(context.Context, addon.Config) error { return nil }
func (f *fake) Describe(context.Context) (addon.Description, error) {
	return addon.Description{Name: "fake", Plans: []addon.Plan{{Name: "a"}, {Name: "b"}}, DefaultPlan: "b", EnvVars: []string{"FAKE_URL"}}, nil
}
func (f *fake) Provision(_ context.Context, r addon.ProvisionRequest) (addon.Resource, error) {
	f.got = r
	return f.provision(r)
}
func (f *fake) Deprovision(context.Context, addon.DeprovisionRequest) error { return nil }

func TestServer_ChecksBothWays(t *testing.T) {
	t.Parallel()
	f := &fake{}
	c := addontest.InProcess(t, f, addon.Config{})
	ctx := context.Background()

	f.provision = func(addon.ProvisionRequest) (addon.Resource, error) {
		return addon.Resource{ID: "r", Env: map[string]string{"FAKE_URL": "x"}}, nil
	}
	r, err := c.Provision(ctx, addon.ProvisionRequest{RequestID: "r1", App: "app"})
	must.NoError(t, err)
	must.Eq(t, "x", r.Env["FAKE_URL"])
	must.Eq(t, "b", f.got.Plan, must.Sprint("the author sees the default plan resolved"))

	_, err = c.Provision(ctx, addon.ProvisionRequest{RequestID: "", App: "app"})
	must.ErrorContains(t, err, "request ID", must.Sprint("a bad request never reaches the author"))

	f.provision = func(addon.ProvisionRequest) (addon.Resource, error) {
		return addon.Resource{ID: "r", Env: map[string]string{"FAKE_URL": "x\ny"}}, nil
	}
	_, err = c.Provision(ctx, addon.ProvisionRequest{RequestID: "r1", App: "app"})
	must.ErrorContains(t, err, "the add-on's answer is invalid: variable FAKE_URL: value contains a line break")

	f.provision = func(addon.ProvisionRequest) (addon.Resource, error) { panic("oops") }
	_, err = c.Provision(ctx, addon.ProvisionRequest{RequestID: "r1", App: "app"})
	must.ErrorContains(t, err, "the add-on panicked in Provision: oops")
}

package addontest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

func TestMock_NilFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var m Mock
	must.NoError(t, m.Configure(ctx, addon.Config{Settings: map[string]string{"any": "thing"}}),
		must.Sprint("without ConfigureFunc, any configuration is accepted"))
	_, err := m.Describe(ctx)
	must.EqError(t, err, "addontest.Mock: Describe was called but the mock has no DescribeFunc")
	_, err = m.Provision(ctx, addon.ProvisionRequest{RequestID: "r"})
	must.EqError(t, err, "addontest.Mock: Provision was called but the mock has no ProvisionFunc")
	err = m.Deprovision(ctx, addon.DeprovisionRequest{RequestID: "r"})
	must.EqError(t, err, "addontest.Mock: Deprovision was called but the mock has no DeprovisionFunc")
}

// TestMock_OverTheProtocol serves a Mock over the real protocol: each call reaches its
// function with what the caller sent, and its answer or error comes back.
func TestMock_OverTheProtocol(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	record := func(call string) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call)
	}
	m := &Mock{
		ConfigureFunc: func(_ context.Context, cfg addon.Config) error {
			record("configure " + cfg.Settings["size"])
			return nil
		},
		DescribeFunc: func(context.Context) (addon.Description, error) {
			record("describe")
			return addon.Description{Name: "cache", Plans: []addon.Plan{{Name: "small"}}, EnvVars: []string{"CACHE_URL"}}, nil
		},
		ProvisionFunc: func(_ context.Context, r addon.ProvisionRequest) (addon.Resource, error) {
			record("provision " + r.RequestID + " " + r.App + " " + r.Plan)
			return addon.Resource{ID: "c-" + r.RequestID, Env: map[string]string{"CACHE_URL": "cache://" + r.App}}, nil
		},
		DeprovisionFunc: func(_ context.Context, r addon.DeprovisionRequest) error {
			record("deprovision " + r.ResourceID)
			return errors.New("the cache is locked")
		},
	}
	c := InProcess(t, m, addon.Config{Settings: map[string]string{"size": "64"}})
	ctx := context.Background()
	res, err := c.Provision(ctx, addon.ProvisionRequest{RequestID: "r1", App: "shop"})
	must.NoError(t, err)
	must.Eq(t, addon.Resource{ID: "c-r1", Env: map[string]string{"CACHE_URL": "cache://shop"}}, res)
	err = c.Deprovision(ctx, addon.DeprovisionRequest{RequestID: "d1", ResourceID: "c-r1", App: "shop"})
	must.ErrorContains(t, err, "the cache is locked")
	// The SDK's server describes the add-on to check each Provision against it.
	mu.Lock()
	defer mu.Unlock()
	must.Eq(t, []string{"configure 64", "describe", "provision r1 shop small", "deprovision c-r1"}, calls)
}

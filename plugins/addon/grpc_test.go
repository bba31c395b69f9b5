package addon_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/plugins/addon"
	"github.com/dynogrid/dynogrid/plugins/addon/addontest"
)

func TestServer_ChecksBothWays(t *testing.T) {
	t.Parallel()
	got := make(chan addon.ProvisionRequest, 10)
	m := &addontest.Mock{
		DescribeFunc: func(context.Context) (addon.Description, error) {
			return addon.Description{Name: "fake", Plans: []addon.Plan{{Name: "a"}, {Name: "b"}}, DefaultPlan: "b", EnvVars: []string{"FAKE_URL"}}, nil
		},
		// The answer depends on the request ID.
		ProvisionFunc: func(_ context.Context, r addon.ProvisionRequest) (addon.Resource, error) {
			got <- r
			switch r.RequestID {
			case "newline":
				return addon.Resource{ID: "r", Env: map[string]string{"FAKE_URL": "x\ny"}}, nil
			case "panic":
				panic("oops")
			case "refuse":
				return addon.Resource{}, errors.New("the backing service is full")
			}
			return addon.Resource{ID: "r", Env: map[string]string{"FAKE_URL": "x"}}, nil
		},
	}
	c := addontest.InProcess(t, m, addon.Config{})
	ctx := context.Background()

	r, err := c.Provision(ctx, addon.ProvisionRequest{RequestID: "ok", App: "app"})
	must.NoError(t, err)
	must.Eq(t, "x", r.Env["FAKE_URL"])
	must.Eq(t, "b", (<-got).Plan, must.Sprint("the author sees the default plan resolved"))

	_, err = c.Provision(ctx, addon.ProvisionRequest{RequestID: "", App: "app"})
	must.ErrorContains(t, err, "request ID", must.Sprint("a bad request never reaches the author"))
	must.Eq(t, 0, len(got))

	_, err = c.Provision(ctx, addon.ProvisionRequest{RequestID: "newline", App: "app"})
	must.ErrorContains(t, err, "the add-on's answer is invalid: variable FAKE_URL: value contains a line break")

	_, err = c.Provision(ctx, addon.ProvisionRequest{RequestID: "panic", App: "app"})
	must.EqError(t, err, "rpc error: code = Internal desc = the add-on panicked in Provision: oops", must.Sprint("the stack is logged, not sent"))

	_, err = c.Provision(ctx, addon.ProvisionRequest{RequestID: "refuse", App: "app"})
	must.ErrorContains(t, err, "the backing service is full")
	close(got)
	var ids []string
	for r := range got {
		ids = append(ids, r.RequestID)
	}
	must.Eq(t, []string{"newline", "panic", "refuse"}, ids, must.Sprint("every valid request reached the author, in order"))
}

package addontest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// Options tune Conformance; the zero value works.
type Options struct {
	// App is the app the resources are made for (default "conformance").
	App string
	// Plan to provision ("" = the default plan).
	Plan string
	// Timeout bounds each call (default one minute).
	Timeout time.Duration
	// CheckMade, when set, checks a resource after Provision (e.g. connects to it).
	CheckMade func(t *testing.T, r addon.Resource)
	// CheckGone, when set, checks that a resource is gone after Deprovision.
	CheckGone func(t *testing.T, r addon.Resource)
}

// Conformance checks the rules every add-on must follow, as subtests:
//   - its description is valid;
//   - Provision answers every declared variable, and valid values;
//   - a retry with the same request ID answers the same resource;
//   - another request ID answers another resource;
//   - Deprovision removes it, and a second Deprovision is success.
func Conformance(t *testing.T, target Target, opts Options) {
	t.Helper()
	if opts.App == "" {
		opts.App = "conformance"
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), opts.Timeout)
	}
	ctx, cancel := call()
	d, err := target.Describe(ctx)
	cancel()
	if err != nil {
		t.Fatalf("Describe failed: %v", err)
	}
	t.Run("description is valid", func(t *testing.T) {
		if err := addon.ValidateDescription(d); err != nil {
			t.Fatalf("invalid description: %v", err)
		}
	})

	first := addon.ProvisionRequest{RequestID: uniqueID("conformance-a"), App: opts.App, Plan: opts.Plan}
	if first.Plan == "" {
		first.Plan, _ = d.ResolvePlan("")
	}
	second := first
	second.RequestID = uniqueID("conformance-b")
	var r1, r2 addon.Resource

	t.Run("provision answers valid variables", func(t *testing.T) {
		ctx, cancel := call()
		defer cancel()
		if r1, err = target.Provision(ctx, first); err != nil {
			t.Fatalf("Provision failed: %v", err)
		}
		if err := addon.ValidateResource(d, r1); err != nil {
			t.Fatalf("invalid answer: %v", err)
		}
		if opts.CheckMade != nil {
			opts.CheckMade(t, r1)
		}
	})
	if r1.ID == "" {
		t.FailNow()
	}
	t.Run("retry answers the same resource", func(t *testing.T) {
		ctx, cancel := call()
		defer cancel()
		again, err := target.Provision(ctx, first)
		if err != nil {
			t.Fatalf("Provision retry failed: %v", err)
		}
		if again.ID != r1.ID || !reflect.DeepEqual(again.Env, r1.Env) {
			t.Fatalf("a retry with request ID %s answered resource %q %v, the first call %q %v", first.RequestID, again.ID, keys(again.Env), r1.ID, keys(r1.Env))
		}
	})
	t.Run("another request answers another resource", func(t *testing.T) {
		ctx, cancel := call()
		defer cancel()
		if r2, err = target.Provision(ctx, second); err != nil {
			t.Fatalf("Provision failed: %v", err)
		}
		if r2.ID == r1.ID {
			t.Fatalf("request IDs %s and %s answered the same resource %q", first.RequestID, second.RequestID, r1.ID)
		}
	})
	t.Run("deprovision removes, twice", func(t *testing.T) {
		for _, r := range []addon.Resource{r1, r2} {
			if r.ID == "" {
				continue
			}
			req := addon.DeprovisionRequest{RequestID: uniqueID("conformance-del"), ResourceID: r.ID, App: opts.App}
			for i := 0; i < 2; i++ {
				ctx, cancel := call()
				err := target.Deprovision(ctx, req)
				cancel()
				if err != nil {
					t.Fatalf("Deprovision #%d of %s failed: %v", i+1, r.ID, err)
				}
			}
			if opts.CheckGone != nil {
				opts.CheckGone(t, r)
			}
		}
	})
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

package autoscale

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// TestFromNomadChecksTheSpecsLimits: a policy written straight to Nomad, outside what
// a spec can say, is refused; one the deployer writes is read back.
func TestFromNomadChecksTheSpecsLimits(t *testing.T) {
	t.Parallel()
	i := func(v int64) *int64 { return &v }
	good := appspec.Autoscale{P95QueueWait: 50 * time.Millisecond, MaxCostMicroUSD: 500_000}.Policy()
	p, err := fromNomad("shop", &nomadapi.ScalingPolicy{Min: i(1), Max: i(20), Policy: good})
	want := Policy{App: "shop", Group: "web", Min: 1, Max: 20, Target: 50 * time.Millisecond, MaxCostMicroUSD: 500_000}
	if err != nil || p != want {
		t.Errorf("fromNomad = %+v, %v; want %+v", p, err, want)
	}
	for name, np := range map[string]*nomadapi.ScalingPolicy{
		"no min":         {Max: i(20), Policy: good},
		"min 0":          {Min: i(0), Max: i(20), Policy: good},
		"max above 100":  {Min: i(1), Max: i(1000), Policy: good},
		"max below min":  {Min: i(5), Max: i(2), Policy: good},
		"no policy":      {Min: i(1), Max: i(20)},
		"forged policy":  {Min: i(1), Max: i(20), Policy: map[string]any{appspec.PolicyP95QueueWait: "50ms", appspec.PolicyMaxCost: 1e15}},
		"another format": {Min: i(1), Max: i(20), Policy: map[string]any{"check": map[string]any{"query": "x"}}},
	} {
		if p, err := fromNomad("shop", np); err == nil {
			t.Errorf("%s: fromNomad = %+v, want an error", name, p)
		}
	}
}

package appspec

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// TestAutoscalePolicyRoundTrip writes a policy the way the deployer does, passes it
// through JSON as Nomad's API does, and reads it back the way the autoscaler does.
func TestAutoscalePolicyRoundTrip(t *testing.T) {
	t.Parallel()
	want := Autoscale{P95QueueWait: 50 * time.Millisecond, MaxCostMicroUSD: 500_000}
	b, err := json.Marshal(want.Policy())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	got, err := AutoscaleFromPolicy(m)
	if err != nil || got != want {
		t.Fatalf("AutoscaleFromPolicy(%s) = %+v, %v; want %+v", b, got, err, want)
	}
}

// TestForgedAutoscalePolicies gives the autoscaler's reader policies no spec could
// produce, as a tenant writing its job straight to Nomad could: each is refused.
func TestForgedAutoscalePolicies(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]map[string]any{
		"empty":            {},
		"wait not string":  {PolicyP95QueueWait: 5.0, PolicyMaxCost: 1.0},
		"wait too long":    {PolicyP95QueueWait: "1h", PolicyMaxCost: 1.0},
		"wait zero":        {PolicyP95QueueWait: "0s", PolicyMaxCost: 1.0},
		"wait huge string": {PolicyP95QueueWait: string(make([]byte, 1<<16)), PolicyMaxCost: 1.0},
		"cost negative":    {PolicyP95QueueWait: "50ms", PolicyMaxCost: -1.0},
		"cost NaN":         {PolicyP95QueueWait: "50ms", PolicyMaxCost: math.NaN()},
		"cost infinite":    {PolicyP95QueueWait: "50ms", PolicyMaxCost: math.Inf(1)},
		"cost fraction":    {PolicyP95QueueWait: "50ms", PolicyMaxCost: 0.5},
		"cost string":      {PolicyP95QueueWait: "50ms", PolicyMaxCost: "500000"},
		"cost above limit": {PolicyP95QueueWait: "50ms", PolicyMaxCost: 1e12},
	} {
		if a, err := AutoscaleFromPolicy(m); err == nil {
			t.Errorf("%s: AutoscaleFromPolicy(%v) = %+v, want an error", name, m, a)
		}
	}
}

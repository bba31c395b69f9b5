package appspec

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
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
		"cost zero":        {PolicyP95QueueWait: "50ms", PolicyMaxCost: 0.0},
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

// TestHostileCostCaps writes max_cost_per_hour as a tenant trying to lift the cost cap
// would: huge, infinite, negative, not a number. Each is refused at its place in the
// file, in a message of bounded size; none reaches a policy.
func TestHostileCostCaps(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		`0.5e308`:                   "app.hcl:8,27-34: max_cost_per_hour out of range",
		`"0.5e308"`:                 "app.hcl:8,27-36: max_cost_per_hour out of range",
		`1e400`:                     "1e+400 is not",
		`-1e400`:                    "-1e+400 is not",
		`1/0`:                       "+Inf is not",
		`0/0`:                       "app.hcl:8,27-30:",
		`-0.000001`:                 "from 0.000001 to 10000; -1e-06 is not",
		`0`:                         "app.hcl:8,27-28: max_cost_per_hour too small; The cost cap counts micro-dollars: 0 dollars per hour rounds to a cap of $0; the smallest accepted is 0.000001.",
		`0.0000004`:                 "app.hcl:8,27-36: max_cost_per_hour too small; The cost cap counts micro-dollars: 4e-07 dollars per hour",
		`0.00000099999999999999999`: "the smallest accepted is 0.000001",
		`"0.0000001"`:               "app.hcl:8,27-38: max_cost_per_hour too small",
		`10000.0000004`:             "10000.0000004 is not",
		`9999999999999999999999999`: "1e+25 is not",
		`"NaN"`:                     "app.hcl:8,27-32: Invalid max_cost_per_hour",
		`true`:                      "Invalid max_cost_per_hour",
		`[1]`:                       "Invalid max_cost_per_hour",
		`null`:                      "Missing max_cost_per_hour",
	} {
		src := fmt.Sprintf("app \"shop\" {\n  process \"web\" {\n    command = \"x\"\n    autoscale {\n      min = 1\n      max = 20\n      p95_queue_wait = \"50ms\"\n      max_cost_per_hour = %s\n    }\n  }\n}\n", v)
		_, diags := Parse("app.hcl", []byte(src))
		if !diags.HasErrors() || !strings.Contains(diags.Error(), want) || len(diags.Error()) > 300 {
			t.Errorf("max_cost_per_hour = %s: %q, want an error of at most 300 bytes with %q", v, diags.Error(), want)
		}
	}
}

// TestSmallestCostCap: max_cost_per_hour = 0.000001 is the smallest cap, one micro-dollar.
func TestSmallestCostCap(t *testing.T) {
	t.Parallel()
	src := "app \"shop\" {\n  process \"web\" {\n    command = \"x\"\n    autoscale {\n      min = 1\n      max = 20\n      p95_queue_wait = \"50ms\"\n      max_cost_per_hour = 0.000001\n    }\n  }\n}\n"
	spec, diags := Parse("app.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("max_cost_per_hour = 0.000001: %s", diags.Error())
	}
	if a := spec.Processes[0].Autoscale; a == nil || a.MaxCostMicroUSD != 1 {
		t.Fatalf("max_cost_per_hour = 0.000001: %+v, want a cap of 1 micro-dollar", a)
	}
	if _, err := AutoscaleFromPolicy(Autoscale{P95QueueWait: 50 * time.Millisecond, MaxCostMicroUSD: 1}.Policy()); err != nil {
		t.Fatalf("a policy of 1 micro-dollar: %v", err)
	}
}

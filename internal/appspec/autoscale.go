package appspec

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Autoscale is a web process type's autoscaling policy: the autoscaler keeps the
// dynos' p95 queue wait under P95QueueWait, between the process type's min and max,
// and never lets the app's dynos cost more than MaxCostMicroUSD per hour (the first
// dyno of an app being free).
type Autoscale struct {
	P95QueueWait    time.Duration `json:"p95_queue_wait"`
	MaxCostMicroUSD int64         `json:"max_cost_micro_usd_per_hour"`
}

// Limits of an autoscale block.
const (
	MinQueueWaitTarget = time.Millisecond
	MaxQueueWaitTarget = 10 * time.Second
	// MaxCostPerHour bounds max_cost_per_hour, in dollars.
	MaxCostPerHour = 10_000
	// MinCostPerHour is the smallest max_cost_per_hour, in dollars: one micro-dollar,
	// the unit of the policy's cap. Less would round to a cap of $0.
	MinCostPerHour = "0.000001"
)

// minCost is MinCostPerHour as HCL reads a number (cty's precision and rounding).
var minCost, _, _ = big.ParseFloat(MinCostPerHour, 10, 512, big.ToNearestEven)

type autoscaleBlock struct {
	DefRange       hcl.Range `hcl:",def_range"`
	Min            *int      `hcl:"min,optional"`
	Max            *int      `hcl:"max,optional"`
	P95QueueWait   *string   `hcl:"p95_queue_wait,optional"`
	MaxCostPerHour cty.Value `hcl:"max_cost_per_hour,optional"` // checked here: a huge number's own error is hundreds of digits

	MinRange            hcl.Range `hcl:"min,attr_value_range"`
	MaxRange            hcl.Range `hcl:"max,attr_value_range"`
	P95QueueWaitRange   hcl.Range `hcl:"p95_queue_wait,attr_value_range"`
	MaxCostPerHourRange hcl.Range `hcl:"max_cost_per_hour,attr_value_range"`
}

// resolveAutoscale reads a process block's autoscale block. Its min and max are the
// process type's (pb's, read next by resolveCounts), so they are given in one place.
func resolveAutoscale(pb *processBlock, add func(hcl.Range, string, string, ...any)) *Autoscale {
	if len(pb.Autoscale) == 0 {
		return nil
	}
	for _, b := range pb.Autoscale[1:] {
		add(b.DefRange, "More than one autoscale block", "Process type %s is already autoscaled by the block on line %d; keep one.", short(pb.Name), pb.Autoscale[0].DefRange.Start.Line)
	}
	b := pb.Autoscale[0]
	if pb.Name != "web" {
		add(b.DefRange, "Autoscale on a non-web process", "The autoscaler follows the router's queue wait, which only web dynos have; move the autoscale block into process \"web\".")
		return nil
	}
	both := func(inAuto *int, autoRange hcl.Range, inProc *int, attr string) {
		if inAuto != nil && inProc != nil {
			add(autoRange, "Duplicate "+attr, "%s is also given in process \"web\"; give it once, in the autoscale block.", attr)
		}
	}
	both(b.Min, b.MinRange, pb.Min, "min")
	both(b.Max, b.MaxRange, pb.Max, "max")
	if b.Min != nil {
		pb.Min, pb.MinRange = b.Min, b.MinRange
	}
	if b.Max != nil {
		pb.Max, pb.MaxRange = b.Max, b.MaxRange
	}
	if pb.Min == nil || *pb.Min < 1 {
		rng := b.DefRange
		if pb.Min != nil {
			rng = pb.MinRange
		}
		add(rng, "Autoscale needs min 1 or more", "An app with no web dyno has no queue to measure; give the autoscale block min = 1 or more.")
	}
	a := &Autoscale{}
	switch {
	case b.P95QueueWait == nil:
		add(b.DefRange, "Missing p95_queue_wait", "The autoscaler keeps the 95th percentile of the router's queue wait under a target; add p95_queue_wait = \"50ms\".")
	default:
		d, err := time.ParseDuration(*b.P95QueueWait)
		switch {
		case err != nil:
			add(b.P95QueueWaitRange, "Invalid p95_queue_wait", "%s is not a duration; write it like \"50ms\" or \"1s\".", short(*b.P95QueueWait))
		case d < MinQueueWaitTarget || d > MaxQueueWaitTarget:
			add(b.P95QueueWaitRange, "p95_queue_wait out of range", "p95_queue_wait must be from %s to %s; %s is not.", MinQueueWaitTarget, MaxQueueWaitTarget, d)
		default:
			a.P95QueueWait = d
		}
	}
	cost, err := cty.NilVal, error(nil)
	if b.MaxCostPerHour != cty.NilVal && !b.MaxCostPerHour.IsNull() {
		cost, err = convert.Convert(b.MaxCostPerHour, cty.Number)
	}
	switch {
	case cost == cty.NilVal && err == nil:
		add(b.DefRange, "Missing max_cost_per_hour", "Autoscaling is capped by cost: add max_cost_per_hour, in dollars per hour for all the app's dynos (the first dyno is free), such as 0.50.")
	case err != nil || !cost.IsKnown() || cost.IsNull():
		add(b.MaxCostPerHourRange, "Invalid max_cost_per_hour", "max_cost_per_hour is a number of dollars per hour, such as 0.50.")
	case cost.AsBigFloat().Sign() >= 0 && cost.AsBigFloat().Cmp(minCost) < 0:
		add(b.MaxCostPerHourRange, "max_cost_per_hour too small", "The cost cap counts micro-dollars: %s dollars per hour rounds to a cap of $0; the smallest accepted is %s.", cost.AsBigFloat().Text('g', 15), MinCostPerHour)
	case cost.AsBigFloat().Sign() < 0 || cost.AsBigFloat().Cmp(big.NewFloat(MaxCostPerHour)) > 0:
		add(b.MaxCostPerHourRange, "max_cost_per_hour out of range", "max_cost_per_hour is in dollars per hour, from %s to %d; %s is not.", MinCostPerHour, MaxCostPerHour, cost.AsBigFloat().Text('g', 15))
	default:
		f, _ := cost.AsBigFloat().Float64()
		a.MaxCostMicroUSD = int64(math.Round(f * 1e6))
	}
	return a
}

// Keys of an autoscale policy in a task group's Nomad scaling policy.
const (
	PolicyP95QueueWait = "p95_queue_wait"
	PolicyMaxCost      = "max_cost_micro_usd_per_hour"
)

// Policy is the autoscale policy as a Nomad scaling policy's policy map.
func (a Autoscale) Policy() map[string]any {
	return map[string]any{PolicyP95QueueWait: a.P95QueueWait.String(), PolicyMaxCost: a.MaxCostMicroUSD}
}

// AutoscaleFromPolicy reads an autoscale policy from a Nomad scaling policy's policy
// map and checks it against the same limits as the spec: whoever wrote the job, the
// autoscaler acts on a valid policy only.
func AutoscaleFromPolicy(m map[string]any) (Autoscale, error) {
	var a Autoscale
	s, ok := m[PolicyP95QueueWait].(string)
	if !ok || len(s) > 32 {
		return a, fmt.Errorf("policy has no %s string", PolicyP95QueueWait)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinQueueWaitTarget || d > MaxQueueWaitTarget {
		return a, fmt.Errorf("policy %s %q is not a duration from %s to %s", PolicyP95QueueWait, s, MinQueueWaitTarget, MaxQueueWaitTarget)
	}
	var c float64
	switch v := m[PolicyMaxCost].(type) {
	case float64:
		c = v
	case int64:
		c = float64(v)
	case int:
		c = float64(v)
	case uint64:
		c = float64(v)
	default:
		return a, fmt.Errorf("policy has no %s number", PolicyMaxCost)
	}
	if math.IsNaN(c) || c < 1 || c > MaxCostPerHour*1e6 || c != math.Trunc(c) {
		return a, fmt.Errorf("policy %s %v is not a whole number of micro-dollars from 1 to %d", PolicyMaxCost, c, int64(MaxCostPerHour*1e6))
	}
	return Autoscale{P95QueueWait: d, MaxCostMicroUSD: int64(c)}, nil
}

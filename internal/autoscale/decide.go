// Package autoscale is dyno-autoscaler: it sets the dyno count of each web process
// type whose Nomad scaling policy is an enabled autoscale policy (appspec.Autoscale),
// from the p95 queue wait the routers measure, within the policy's min and max and its
// cost cap. See docs/apps.md (Autoscaling) and docs/design.md.
package autoscale

import (
	"fmt"
	"math"
	"time"
)

// Policy is one autoscaled process type as the autoscaler acts on it.
type Policy struct {
	App   string `json:"app"`
	Group string `json:"process"`
	Min   int    `json:"min"`
	Max   int    `json:"max"`
	// Target is the p95 queue wait to stay under.
	Target time.Duration `json:"p95_queue_wait"`
	// MaxCostMicroUSD caps what the app's dynos cost per hour, in micro-dollars.
	MaxCostMicroUSD int64 `json:"max_cost_micro_usd_per_hour"`
}

// Tuning is how fast the autoscaler moves; the same for every app.
type Tuning struct {
	// UpCooldown is the least time between two scale-ups: the new dynos boot and take
	// their share of the queue before the wait is judged again.
	UpCooldown time.Duration
	// DownAfter is how long the wait must stay under DownBelow times the target before
	// a scale-down, and again between two scale-downs.
	DownAfter time.Duration
	// DownCooldown is the least time from any scale to a scale-down.
	DownCooldown time.Duration
	// DownBelow is the low edge of the hysteresis band, as a fraction of the target.
	DownBelow float64
	// MaxUpFactor bounds one scale-up: at most this many times the dynos.
	MaxUpFactor float64
	// DownStep is the fraction of the dynos one scale-down removes (at least one).
	DownStep float64
	// PriceMicroUSD is the price of a dyno-hour, the first dyno of an app being free.
	PriceMicroUSD int64
}

// DefaultTuning scales up within seconds and down over minutes.
var DefaultTuning = Tuning{
	UpCooldown: 20 * time.Second, DownAfter: time.Minute, DownCooldown: time.Minute,
	DownBelow: 0.5, MaxUpFactor: 4, DownStep: 0.25, PriceMicroUSD: 50_000,
}

// Observation is what the routers measured of an app's web dynos over the window.
type Observation struct {
	// OK is false when no figure could be had; Missing says why.
	OK      bool
	Missing string
	// Requests is how many requests were dispatched to a dyno in the window.
	Requests float64
	// P95 is their 95th percentile queue wait (0 without requests).
	P95 time.Duration
	// Busy is the most dynos seen holding a request at once.
	Busy float64
}

// Decision kinds.
const (
	Up   = "up"
	Down = "down"
	Hold = "hold"
	// Capped: the wait is over target but min, max or the cost cap keep the count.
	Capped = "capped"
)

// Decision is what the autoscaler does for one policy at one tick, and why.
type Decision struct {
	Kind     string
	From, To int
	Reason   string
}

// Formation is what the app runs when the autoscaler decides: every dyno of it counts
// towards the cost cap, as the meter bills them all.
type Formation struct {
	// Current is the autoscaled process type's dyno count.
	Current int
	// Others is the count of the app's other process types, summed.
	Others int
	// OneOffs is how many of the app's one-off dynos run or are starting: `dyno run`,
	// `dyno run:detached`, scheduled runs and release phases.
	OneOffs int
}

// State is what the autoscaler remembers of one policy between ticks.
type State struct {
	lastUp, lastScale, lowSince time.Time
}

// Decide chooses the count for p's process type, the app running f, after
// observation o.
func (s *State) Decide(now time.Time, p Policy, t Tuning, f Formation, o Observation) Decision {
	d := s.decide(now, p, t, f, o)
	if d.To != d.From {
		s.lastScale = now
		if d.To > d.From {
			s.lastUp = now
		}
		s.lowSince = time.Time{}
	}
	return d
}

func (s *State) decide(now time.Time, p Policy, t Tuning, f Formation, o Observation) Decision {
	current := f.Current
	hold := func(kind, format string, args ...any) Decision {
		return Decision{Kind: kind, From: current, To: current, Reason: fmt.Sprintf(format, args...)}
	}
	move := func(to int, format string, args ...any) Decision {
		kind := Up
		if to < current {
			kind = Down
		}
		return Decision{Kind: kind, From: current, To: to, Reason: fmt.Sprintf(format, args...)}
	}
	hi, bound := ceiling(p, t, f)
	switch {
	case current < p.Min:
		return move(p.Min, "below min %d", p.Min)
	case current > hi:
		return move(hi, "%d dynos is above %s", current, bound)
	case !o.OK:
		s.lowSince = time.Time{}
		return hold(Hold, "no queue wait figures (%s): keeping %d dynos", o.Missing, current)
	}
	target := p.Target
	switch {
	case o.Requests > 0 && o.P95 > target:
		s.lowSince = time.Time{}
		over := fmt.Sprintf("p95 queue wait %s over the %s target", round(o.P95), target)
		if current >= hi {
			return hold(Capped, "%s, but %d dynos is %s", over, current, bound)
		}
		if wait := t.UpCooldown - now.Sub(s.lastUp); wait > 0 {
			return hold(Hold, "%s; next scale-up in %s (cooldown)", over, round(wait))
		}
		ratio := math.Min(float64(o.P95)/float64(target), t.MaxUpFactor)
		to := max(current+1, int(math.Ceil(float64(current)*ratio)))
		if to >= hi {
			return move(hi, "%s; %s", over, bound)
		}
		return move(to, "%s", over)
	case o.Requests > 0 && float64(o.P95) >= t.DownBelow*float64(target):
		s.lowSince = time.Time{}
		return hold(Hold, "p95 queue wait %s within the %s target", round(o.P95), target)
	}
	under := fmt.Sprintf("p95 queue wait %s under %s", round(o.P95), time.Duration(t.DownBelow*float64(target)))
	if o.Requests == 0 {
		under = "no requests"
	}
	if current <= p.Min {
		return hold(Hold, "%s; at min %d", under, p.Min)
	}
	if s.lowSince.IsZero() {
		s.lowSince = now
	}
	if wait := t.DownAfter - now.Sub(s.lowSince); wait > 0 {
		return hold(Hold, "%s for %s; scale-down after %s", under, round(now.Sub(s.lowSince)), t.DownAfter)
	}
	if wait := t.DownCooldown - now.Sub(s.lastScale); wait > 0 {
		return hold(Hold, "%s; next scale-down in %s (cooldown)", under, round(wait))
	}
	to := max(current-max(1, int(float64(current)*t.DownStep)), p.Min, int(math.Ceil(o.Busy)))
	if to >= current {
		return hold(Hold, "%s, but up to %.0f dynos were busy at once", under, o.Busy)
	}
	return move(to, "%s for %s", under, round(now.Sub(s.lowSince)))
}

// ceiling is the most dynos p's process type may run: its max, or fewer when more
// would cost the app more than its cap per hour beside its other dynos, one-off dynos
// included (the app's first dyno being free); never below min. bound says which limit
// it is.
func ceiling(p Policy, t Tuning, f Formation) (int, string) {
	hi, bound := p.Max, fmt.Sprintf("its max %d", p.Max)
	if t.PriceMicroUSD > 0 {
		billed := p.MaxCostMicroUSD / t.PriceMicroUSD
		others := int64(f.Others) + int64(f.OneOffs)
		byCost := int(min(billed+1-others, int64(p.Max)+1))
		if byCost < hi {
			hi = byCost
			bound = fmt.Sprintf("the most the %s/hour cost cap pays for", dollars(p.MaxCostMicroUSD))
			switch {
			case f.OneOffs > 0 && f.Others > 0:
				bound += fmt.Sprintf(" beside %d other dynos and %d one-off dynos", f.Others, f.OneOffs)
			case f.OneOffs > 0:
				bound += fmt.Sprintf(" beside %d one-off dynos", f.OneOffs)
			case f.Others > 0:
				bound += fmt.Sprintf(" beside %d other dynos", f.Others)
			}
		}
	}
	if hi < p.Min {
		hi, bound = p.Min, fmt.Sprintf("its min %d (the cost cap pays for fewer)", p.Min)
	}
	return hi, bound
}

// CostMicroUSD is what n dynos of an app cost per hour, the first being free.
func CostMicroUSD(n int, price int64) int64 { return int64(max(n-1, 0)) * price }

func dollars(micro int64) string { return fmt.Sprintf("$%.2f", float64(micro)/1e6) }

// round keeps two or three significant digits of a duration for a reason.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}

package autoscale

import (
	"strings"
	"testing"
	"time"
)

// clock is an injected clock: each tick advances it.
type clock struct{ now time.Time }

func (c *clock) after(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0)} }

var shop = Policy{App: "shop", Group: "web", Min: 1, Max: 20, Target: 50 * time.Millisecond, MaxCostMicroUSD: 500_000}

func waited(p95 time.Duration) Observation { return Observation{OK: true, Requests: 100, P95: p95} }

var idle = Observation{OK: true}

func TestScalesUpAtOnceAndByTheWaitRatio(t *testing.T) {
	t.Parallel()
	var s State
	c := newClock()
	d := s.Decide(c.now, shop, DefaultTuning, Formation{Current: 2}, waited(150*time.Millisecond))
	if d.Kind != Up || d.From != 2 || d.To != 6 || !strings.Contains(d.Reason, "150ms over the 50ms target") {
		t.Errorf("decision %+v, want up from 2 to 6 (3x the target) saying so", d)
	}
	// Just over the target: at least one more dyno, once the cooldown is over.
	d = s.Decide(c.after(DefaultTuning.UpCooldown-time.Second), shop, DefaultTuning, Formation{Current: 6}, waited(51*time.Millisecond))
	if d.Kind != Hold || d.To != 6 || !strings.Contains(d.Reason, "cooldown") {
		t.Errorf("decision within the up cooldown %+v, want hold for the cooldown", d)
	}
	d = s.Decide(c.after(time.Second), shop, DefaultTuning, Formation{Current: 6}, waited(51*time.Millisecond))
	if d.Kind != Up || d.To != 7 {
		t.Errorf("decision after the up cooldown %+v, want up from 6 to 7", d)
	}
}

func TestScaleUpIsBoundedByMaxUpFactor(t *testing.T) {
	t.Parallel()
	var s State
	d := s.Decide(newClock().now, shop, DefaultTuning, Formation{Current: 1}, waited(10*time.Second))
	if d.Kind != Up || d.To != 4 {
		t.Errorf("decision %+v, want up from 1 to 4 (MaxUpFactor)", d)
	}
}

// TestCostCap: at $0.05 a dyno-hour and a $0.50 cap, the app runs at most 11 dynos
// (the first is free), fewer when other process types run dynos too.
func TestCostCap(t *testing.T) {
	t.Parallel()
	c := newClock()
	var s State
	d := s.Decide(c.now, shop, DefaultTuning, Formation{Current: 8}, waited(time.Second))
	if d.Kind != Up || d.To != 11 || !strings.Contains(d.Reason, "$0.50/hour cost cap") {
		t.Errorf("decision %+v, want up to 11 saying the cost cap stopped it", d)
	}
	if cost := CostMicroUSD(d.To, DefaultTuning.PriceMicroUSD); cost > shop.MaxCostMicroUSD {
		t.Errorf("%d dynos cost %d µ$/hour, over the cap %d", d.To, cost, shop.MaxCostMicroUSD)
	}
	d = s.Decide(c.after(time.Hour), shop, DefaultTuning, Formation{Current: 11}, waited(time.Second))
	if d.Kind != Capped || d.To != 11 {
		t.Errorf("decision at the cap %+v, want capped at 11", d)
	}
	// Three worker dynos take three of the dynos the cap pays for: web goes down to 8
	// at once, whatever the wait.
	d = s.Decide(c.after(time.Second), shop, DefaultTuning, Formation{Current: 11, Others: 3}, waited(time.Second))
	if d.Kind != Down || d.To != 8 || !strings.Contains(d.Reason, "beside 3 other dynos") {
		t.Errorf("decision with 3 other dynos %+v, want down to 8 for the cap", d)
	}
	// A cap of $0 leaves one free dyno; min still wins over it.
	free := shop
	free.MaxCostMicroUSD, free.Min = 0, 2
	d = (&State{}).Decide(c.now, free, DefaultTuning, Formation{Current: 2}, waited(time.Second))
	if d.Kind != Capped || d.To != 2 || !strings.Contains(d.Reason, "its min 2") {
		t.Errorf("decision with a $0 cap and min 2 %+v, want capped at min 2", d)
	}
}

func TestMinAndMax(t *testing.T) {
	t.Parallel()
	p := shop
	p.Min, p.Max, p.MaxCostMicroUSD = 2, 5, 10_000_000
	c := newClock()
	var s State
	if d := s.Decide(c.now, p, DefaultTuning, Formation{Current: 4}, waited(time.Second)); d.To != 5 || d.Kind != Up {
		t.Errorf("decision %+v, want up to max 5", d)
	}
	if d := s.Decide(c.after(time.Hour), p, DefaultTuning, Formation{Current: 7}, waited(time.Second)); d.To != 5 || d.Kind != Down {
		t.Errorf("decision over max %+v, want down to max 5", d)
	}
	if d := s.Decide(c.after(time.Hour), p, DefaultTuning, Formation{Current: 1}, idle); d.To != 2 || d.Kind != Up {
		t.Errorf("decision under min %+v, want up to min 2", d)
	}
	for i := 0; i < 10; i++ {
		if d := s.Decide(c.after(time.Hour), p, DefaultTuning, Formation{Current: 2}, idle); d.To != 2 {
			t.Fatalf("idle at min: decision %+v, want to stay at 2", d)
		}
	}
}

// TestScalesDownSlowly: the wait must stay under half the target for DownAfter, each
// step removes a quarter, and a wait within the band restarts the count.
func TestScalesDownSlowly(t *testing.T) {
	t.Parallel()
	tn := DefaultTuning
	c := newClock()
	var s State
	if d := s.Decide(c.now, shop, tn, Formation{Current: 8}, waited(time.Second)); d.To != 11 {
		t.Fatalf("decision %+v, want up to 11", d)
	}
	n := 11
	low := waited(10 * time.Millisecond)
	steps := []int{}
	for i := 0; i < 200 && n > 1; i++ {
		d := s.Decide(c.after(5*time.Second), shop, tn, Formation{Current: n}, low)
		if d.To > n || n-d.To > max(1, n/4) {
			t.Fatalf("decision %+v, want at most a quarter fewer dynos", d)
		}
		if d.To < n {
			steps = append(steps, d.To)
			n = d.To
		}
	}
	want := []int{9, 7, 6, 5, 4, 3, 2, 1}
	if len(steps) != len(want) {
		t.Fatalf("scale-downs %v, want %v", steps, want)
	}
	for i := range want {
		if steps[i] != want[i] {
			t.Fatalf("scale-downs %v, want %v", steps, want)
		}
	}
}

func TestHysteresisBandRestartsTheScaleDown(t *testing.T) {
	t.Parallel()
	tn := DefaultTuning
	c := newClock()
	var s State
	low, band := waited(10*time.Millisecond), waited(30*time.Millisecond)
	s.Decide(c.now, shop, tn, Formation{Current: 4}, low)
	if d := s.Decide(c.after(tn.DownAfter-time.Second), shop, tn, Formation{Current: 4}, low); d.To != 4 {
		t.Fatalf("decision before DownAfter %+v, want hold", d)
	}
	if d := s.Decide(c.after(time.Second), shop, tn, Formation{Current: 4}, band); d.To != 4 || !strings.Contains(d.Reason, "within") {
		t.Fatalf("decision in the band %+v, want hold within target", d)
	}
	if d := s.Decide(c.after(time.Second), shop, tn, Formation{Current: 4}, low); d.To != 4 {
		t.Fatalf("decision after the band %+v, want hold: the wait is low again only since now", d)
	}
	if d := s.Decide(c.after(tn.DownAfter), shop, tn, Formation{Current: 4}, low); d.Kind != Down || d.To != 3 {
		t.Fatalf("decision after DownAfter low %+v, want down to 3", d)
	}
}

func TestDownCooldownAfterAScaleUp(t *testing.T) {
	t.Parallel()
	tn := DefaultTuning
	tn.DownAfter, tn.DownCooldown = 10*time.Second, 2*time.Minute
	c := newClock()
	var s State
	s.Decide(c.now, shop, tn, Formation{Current: 2}, waited(time.Second))
	for i := 0; i < 20; i++ {
		if d := s.Decide(c.after(5*time.Second), shop, tn, Formation{Current: 8}, idle); d.To != 8 {
			t.Fatalf("decision %s after a scale-up %+v, want hold for the down cooldown", c.now.Sub(time.Unix(1_800_000_000, 0)), d)
		}
	}
	if d := s.Decide(c.after(30*time.Second), shop, tn, Formation{Current: 8}, idle); d.Kind != Down || d.To != 6 {
		t.Fatalf("decision after the down cooldown %+v, want down to 6", d)
	}
}

func TestBusyDynosHoldTheScaleDown(t *testing.T) {
	t.Parallel()
	tn := DefaultTuning
	c := newClock()
	var s State
	o := Observation{OK: true, Requests: 1000, P95: time.Millisecond, Busy: 8}
	s.Decide(c.now, shop, tn, Formation{Current: 8}, o)
	d := s.Decide(c.after(2*tn.DownAfter), shop, tn, Formation{Current: 8}, o)
	if d.To != 8 || !strings.Contains(d.Reason, "8 dynos were busy") {
		t.Errorf("decision with all dynos busy %+v, want hold", d)
	}
}

// TestMissingMetricsHold: without figures the autoscaler neither scales nor counts the
// time toward a scale-down; the cost cap still applies.
func TestMissingMetricsHold(t *testing.T) {
	t.Parallel()
	tn := DefaultTuning
	c := newClock()
	var s State
	missing := Observation{Missing: "no router answered"}
	s.Decide(c.now, shop, tn, Formation{Current: 6}, idle)
	for i := 0; i < 50; i++ {
		d := s.Decide(c.after(5*time.Second), shop, tn, Formation{Current: 6}, missing)
		if d.To != 6 || !strings.Contains(d.Reason, "no router answered") {
			t.Fatalf("decision without metrics %+v, want hold saying why", d)
		}
	}
	if d := s.Decide(c.after(5*time.Second), shop, tn, Formation{Current: 6}, idle); d.To != 6 {
		t.Errorf("first figures after missing ones %+v, want hold: the low wait is new", d)
	}
	if d := s.Decide(c.now, shop, tn, Formation{Current: 15}, missing); d.To != 11 {
		t.Errorf("decision over the cap without metrics %+v, want down to 11", d)
	}
}

// TestForgedFigures: whatever a router reports, the count stays within max and cap.
func TestForgedFigures(t *testing.T) {
	t.Parallel()
	c := newClock()
	var s State
	n := 1
	for _, o := range []Observation{waited(1 << 62), {OK: true, Requests: 1e300, P95: 1 << 62, Busy: 1e300}, waited(-time.Second)} {
		d := s.Decide(c.after(time.Hour), shop, DefaultTuning, Formation{Current: n}, o)
		if d.To < shop.Min || d.To > 11 {
			t.Fatalf("decision %+v on %+v, want 1 to 11 dynos", d, o)
		}
		n = d.To
	}
}

// One-off dynos count towards the cost cap as the meter bills them: while one runs, a
// web formation at the cap goes down by one and does not go back up under load; once
// it has ended, web may scale up to the cap again.
func TestOneOffDynosCountTowardsTheCostCap(t *testing.T) {
	t.Parallel()
	c := newClock()
	var s State
	load := waited(time.Second)
	if d := s.Decide(c.now, shop, DefaultTuning, Formation{Current: 11}, load); d.Kind != Capped || d.To != 11 {
		t.Fatalf("decision at the cap %+v, want capped at 11", d)
	}
	d := s.Decide(c.after(time.Second), shop, DefaultTuning, Formation{Current: 11, OneOffs: 1}, load)
	if d.Kind != Down || d.To != 10 || !strings.Contains(d.Reason, "$0.50/hour cost cap pays for beside 1 one-off dynos") {
		t.Errorf("decision with a one-off dyno running %+v, want down to 10 for the cap, saying why", d)
	}
	for i := 0; i < 5; i++ {
		d = s.Decide(c.after(DefaultTuning.UpCooldown), shop, DefaultTuning, Formation{Current: 10, OneOffs: 1}, load)
		if d.Kind != Capped || d.To != 10 {
			t.Fatalf("decision under load beside a one-off dyno %+v, want capped at 10", d)
		}
	}
	// Workers and one-off dynos together.
	d = s.Decide(c.after(time.Second), shop, DefaultTuning, Formation{Current: 10, Others: 2, OneOffs: 3}, load)
	if d.Kind != Down || d.To != 6 || !strings.Contains(d.Reason, "beside 2 other dynos and 3 one-off dynos") {
		t.Errorf("decision beside 2 workers and 3 one-off dynos %+v, want down to 6", d)
	}
	if cost := CostMicroUSD(d.To+2+3, DefaultTuning.PriceMicroUSD); cost > shop.MaxCostMicroUSD {
		t.Errorf("%d web dynos beside 5 others cost %d µ$/hour, over the cap %d", d.To, cost, shop.MaxCostMicroUSD)
	}
	// The one-off dynos ended: web goes back up to the cap.
	d = s.Decide(c.after(DefaultTuning.UpCooldown), shop, DefaultTuning, Formation{Current: 6}, load)
	if d.Kind != Up || d.To != 11 {
		t.Errorf("decision once the one-off dynos ended %+v, want up to 11", d)
	}
	// min wins over one-off dynos too.
	small := shop
	small.Min, small.MaxCostMicroUSD = 2, 50_000
	d = (&State{}).Decide(c.now, small, DefaultTuning, Formation{Current: 2, OneOffs: 4}, load)
	if d.Kind != Capped || d.To != 2 || !strings.Contains(d.Reason, "its min 2") {
		t.Errorf("decision at min beside 4 one-off dynos %+v, want held at min 2", d)
	}
}

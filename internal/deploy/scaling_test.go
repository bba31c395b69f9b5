package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// TestEveryGroupHasAScalingPolicy checks that each task group carries its process
// type's min and max in a disabled scaling policy: the Nomad UI shows its count stepper
// for such a group only, and Nomad keeps every scale within them.
func TestEveryGroupHasAScalingPolicy(t *testing.T) {
	t.Parallel()
	r := testRelease()
	r.Spec.Processes[0].Min, r.Spec.Processes[0].Max = 1, 5
	r.Spec.Processes[1].Min, r.Spec.Processes[1].Max = 0, appspec.MaxCount
	job := Job(r)
	for name, want := range map[string][2]int64{"web": {1, 5}, "worker": {0, appspec.MaxCount}} {
		s := job.LookupTaskGroup(name).Scaling
		if s == nil || s.Min == nil || s.Max == nil || s.Enabled == nil {
			t.Fatalf("group %s scaling = %+v, want min, max and enabled set", name, s)
		}
		if *s.Min != want[0] || *s.Max != want[1] || *s.Enabled || s.Policy != nil {
			t.Errorf("group %s scaling: min %d, max %d, enabled %t, policy %v; want min %d, max %d, disabled, no policy",
				name, *s.Min, *s.Max, *s.Enabled, s.Policy, want[0], want[1])
		}
	}
}

// TestKeptCountsStayWithinMinAndMax deploys over a formation that the spec's new min
// and max no longer allow: the kept counts are brought within them.
func TestKeptCountsStayWithinMinAndMax(t *testing.T) {
	t.Parallel()
	r := testRelease()
	r.Spec.Processes[0].Min, r.Spec.Processes[0].Max = 1, 5
	r.Spec.Processes[1].Min, r.Spec.Processes[1].Max = 2, 4
	r.Counts = map[string]int{"web": 9, "worker": 0}
	if c := Counts(Job(r)); c["web"] != 5 || c["worker"] != 2 {
		t.Errorf("counts = %v, want web 5 (its max) and worker 2 (its min)", c)
	}
}

// TestScaleChecksMinAndMax scales an app whose web dynos keep from 1 to 5 and whose
// worker has no scaling policy: a count outside the range is refused with the range and
// where to change it, before anything is written to Nomad.
func TestScaleChecksMinAndMax(t *testing.T) {
	t.Parallel()
	web := nomadapi.NewTaskGroup("web", 2)
	web.Scaling = &nomadapi.ScalingPolicy{Min: ptr(int64(1)), Max: ptr(int64(5)), Enabled: ptr(false)}
	worker := nomadapi.NewTaskGroup("worker", 1)
	cases := map[string]struct {
		counts map[string]int
		want   string
	}{
		"above max":       {map[string]int{"web": 6}, "web=6: process type web of shop runs from 1 to 5 dynos (its min and max in the app spec); change them there and deploy to go beyond"},
		"below min":       {map[string]int{"web": 0}, "web=0: process type web of shop runs from 1 to 5 dynos"},
		"one of two":      {map[string]int{"worker": 3, "web": 8}, "web=8: process type web of shop runs from 1 to 5 dynos"},
		"no policy":       {map[string]int{"worker": 101}, "worker=101: a process type runs from 0 to 100 dynos"},
		"no process type": {map[string]int{"clock": 1}, `shop has no process type "clock" (it has: web, worker)`},
	}
	for name, c := range cases {
		nomad, writes := fakeNomadWith(t, nil, []*nomadapi.TaskGroup{web, worker})
		err := (&Deployer{Nomad: nomad}).Scale(context.Background(), "shop", c.counts)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: Scale(%v) = %v; want an error that starts with %q", name, c.counts, err, c.want)
		}
		if w := writes(); len(w) > 0 {
			t.Errorf("%s: Nomad got writes %v; want none", name, w)
		}
	}
}

// TestAutoscaledGroupHasAnEnabledPolicy checks that a process type with an autoscale
// block gets an enabled scaling policy carrying the autoscale policy, which the
// autoscaler reads back as the spec gave it.
func TestAutoscaledGroupHasAnEnabledPolicy(t *testing.T) {
	t.Parallel()
	r := testRelease()
	want := appspec.Autoscale{P95QueueWait: 50 * time.Millisecond, MaxCostMicroUSD: 500_000}
	r.Spec.Processes[0].Min, r.Spec.Processes[0].Max, r.Spec.Processes[0].Autoscale = 1, 20, &want
	s := Job(r).LookupTaskGroup("web").Scaling
	if s == nil || s.Enabled == nil || !*s.Enabled || *s.Min != 1 || *s.Max != 20 {
		t.Fatalf("web scaling = %+v, want enabled, min 1, max 20", s)
	}
	got, err := appspec.AutoscaleFromPolicy(s.Policy)
	if err != nil || got != want {
		t.Errorf("policy %v reads as %+v, %v; want %+v", s.Policy, got, err, want)
	}
	if w := Job(r).LookupTaskGroup("worker").Scaling; *w.Enabled || w.Policy != nil {
		t.Errorf("worker scaling = %+v, want disabled without policy", w)
	}
}

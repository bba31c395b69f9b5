package deploy

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestLastScales picks each process type's latest successful scale and names where it
// came from.
func TestLastScales(t *testing.T) {
	t.Parallel()
	at := func(s int) uint64 { return uint64(time.Unix(1_800_000_000+int64(s), 0).UnixNano()) }
	count := func(n int64) *int64 { return &n }
	st := &nomadapi.JobScaleStatusResponse{TaskGroups: map[string]nomadapi.TaskGroupScaleStatus{
		"web": {Events: []nomadapi.ScalingEvent{
			{Count: count(3), PreviousCount: 2, Time: at(20), Message: "Manually scaled to 3 from the Nomad UI", Meta: map[string]any{"Source": "nomad-ui"}},
			{Count: count(2), PreviousCount: 1, Time: at(10), Message: "dyno ps:scale web=2"},
			{Count: count(9), PreviousCount: 3, Time: at(30), Error: true, Message: "refused"},
			{Time: at(40), Message: "an event without a count"},
		}},
		"worker": {Events: []nomadapi.ScalingEvent{{Count: count(0), PreviousCount: 1, Time: at(5), Message: "dyno ps:scale worker=0"}}},
		"clock":  {Events: []nomadapi.ScalingEvent{{Count: count(1), Time: at(7), Message: "nightly"}}},
		"mailer": {Events: []nomadapi.ScalingEvent{{Count: count(1), Time: at(8)}}},
		"api": {Events: []nomadapi.ScalingEvent{{Count: count(4), PreviousCount: 2, Time: at(9),
			Message: "p95 queue wait 180ms over the 50ms target", Meta: map[string]any{"Source": AutoscalerSource}}}},
		"idle": {},
	}}
	got := lastScales(st)
	want := map[string]Scale{
		"web":    {From: 2, To: 3, Time: time.Unix(0, int64(at(20))), By: "from the Nomad UI"},
		"worker": {From: 1, To: 0, Time: time.Unix(0, int64(at(5))), By: "with dyno ps:scale"},
		"clock":  {From: 0, To: 1, Time: time.Unix(0, int64(at(7))), By: `through Nomad's API ("nightly")`},
		"mailer": {From: 0, To: 1, Time: time.Unix(0, int64(at(8))), By: "through Nomad's API"},
		"api":    {From: 2, To: 4, Time: time.Unix(0, int64(at(9))), By: "by the autoscaler (p95 queue wait 180ms over the 50ms target)"},
	}
	if len(got) != len(want) {
		t.Errorf("scales of %d process types, want %d: %+v", len(got), len(want), got)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g.From != w.From || g.To != w.To || !g.Time.Equal(w.Time) || g.By != w.By {
			t.Errorf("%s: last scale %+v, want %+v", name, g, w)
		}
	}
}

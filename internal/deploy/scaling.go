package deploy

import (
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// scaling is a process type's scaling policy in its task group. Its min and max bound
// the group's count wherever it is changed: Nomad refuses a count outside them, from
// `dyno ps:scale`, the Nomad UI's count stepper (which the UI shows only for a group
// with a policy) or its job scale API.
//
// A process type with an autoscale block gets an enabled policy whose policy map is
// its autoscale policy (appspec.Autoscale.Policy): dyno-autoscaler finds it through
// Nomad's scaling API and sets the count within min and max.
func scaling(p appspec.Process) *nomadapi.ScalingPolicy {
	s := &nomadapi.ScalingPolicy{
		Min:     ptr(int64(p.Min)),
		Max:     ptr(int64(p.Max)),
		Enabled: ptr(autoscales(p)),
	}
	if autoscales(p) {
		s.Policy = p.Autoscale.Policy()
	}
	return s
}

// autoscales says whether the autoscaler sets p's dyno count within min and max: when
// the spec gives p an autoscale block. A disabled policy leaves the count to whoever
// scales the process type.
func autoscales(p appspec.Process) bool { return p.Autoscale != nil }

// withinRange brings a dyno count kept from the running formation within p's min and
// max.
func withinRange(count int, p appspec.Process) int {
	return min(max(count, p.Min), p.Max)
}

// scaleRange is the min and max of a task group's policy; ok is false when the group
// has none (a release made before process types had one).
func scaleRange(tg *nomadapi.TaskGroup) (lo, hi int, ok bool) {
	if tg == nil || tg.Scaling == nil || tg.Scaling.Min == nil || tg.Scaling.Max == nil {
		return 0, 0, false
	}
	return int(*tg.Scaling.Min), int(*tg.Scaling.Max), true
}

// checkScale says why count is not a count the process type name of app may be
// scaled to, or nil. Nomad refuses it as well; this says how to go further.
func checkScale(app, name string, count int, tg *nomadapi.TaskGroup) error {
	if count < 0 || count > appspec.MaxCount {
		return fmt.Errorf("%s=%d: a process type runs from 0 to %d dynos", name, count, appspec.MaxCount)
	}
	lo, hi, ok := scaleRange(tg)
	if ok && (count < lo || count > hi) {
		return fmt.Errorf("%s=%d: process type %s of %s runs from %d to %d dynos (its min and max in the app spec); change them there and deploy to go beyond", name, count, name, app, lo, hi)
	}
	return nil
}

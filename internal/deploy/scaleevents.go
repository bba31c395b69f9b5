package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// Scale is the latest change of a process type's dyno count that Nomad recorded: by
// `dyno ps:scale`, the Nomad UI's count stepper, or any other caller of Nomad's job
// scale API. Releases keep the count and are not scales.
type Scale struct {
	From, To int
	Time     time.Time
	// By says where the scale came from, as a phrase: "with dyno ps:scale".
	By string
}

// LastScales returns the latest scale of each of the app's process types that has one.
func LastScales(ctx context.Context, nomad *nomadapi.Client, app string) (map[string]Scale, error) {
	st, _, err := nomad.Jobs().ScaleStatus(app, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to read how %s was scaled: %w", app, err)
	}
	return lastScales(st), nil
}

func lastScales(st *nomadapi.JobScaleStatusResponse) map[string]Scale {
	out := map[string]Scale{}
	for group, tg := range st.TaskGroups {
		var last *nomadapi.ScalingEvent
		for i, e := range tg.Events {
			if e.Count == nil || e.Error || (last != nil && e.Time <= last.Time) {
				continue
			}
			last = &tg.Events[i]
		}
		if last != nil {
			out[group] = Scale{From: int(last.PreviousCount), To: int(*last.Count),
				Time: time.Unix(0, int64(last.Time)), By: scaledBy(*last)}
		}
	}
	return out
}

// AutoscalerSource is the meta Source of the scaling events dyno-autoscaler posts;
// their message says why.
const AutoscalerSource = "dyno-autoscaler"

// scaledBy tells the Nomad UI (which marks its scales with meta Source = nomad-ui),
// the autoscaler and `dyno ps:scale` (whose messages start with its name) from other
// callers, which are named by their message.
func scaledBy(e nomadapi.ScalingEvent) string {
	switch {
	case e.Meta["Source"] == "nomad-ui":
		return "from the Nomad UI"
	case e.Meta["Source"] == AutoscalerSource:
		return fmt.Sprintf("by the autoscaler (%s)", e.Message)
	case strings.HasPrefix(e.Message, "dyno ps:scale"):
		return "with dyno ps:scale"
	case e.Message != "":
		return fmt.Sprintf("through Nomad's API (%q)", e.Message)
	default:
		return "through Nomad's API"
	}
}

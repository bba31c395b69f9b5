package deploy

import (
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

// TestFailureOfNamesTheCause: a failed dyno's message names what failed (the driver's
// error, an exit), not only Nomad's giving up that follows it.
func TestFailureOfNamesTheCause(t *testing.T) {
	t.Parallel()
	ev := func(typ, msg string, fails bool) *nomadapi.TaskEvent {
		return &nomadapi.TaskEvent{Type: typ, DisplayMessage: msg, FailsTask: fails}
	}
	for _, tc := range []struct {
		events []*nomadapi.TaskEvent
		want   string
	}{
		{[]*nomadapi.TaskEvent{ev("Received", "Task received by client", false), ev("Driver Failure", "slug: not in the store", true), ev("Not Restarting", "Error was unrecoverable", true)},
			"Driver Failure: slug: not in the store; Not Restarting: Error was unrecoverable"},
		{[]*nomadapi.TaskEvent{ev("Started", "Task started by client", false), ev("Terminated", "Exit Code: 1", false)}, "Terminated: Exit Code: 1"},
		{[]*nomadapi.TaskEvent{ev("Not Restarting", "Exceeded allowed attempts 2 in interval 30m0s", true)}, "Not Restarting: Exceeded allowed attempts 2 in interval 30m0s"},
		{[]*nomadapi.TaskEvent{ev("Started", "Task started by client", false)}, ""},
	} {
		if got := failureOf(&nomadapi.TaskState{Events: tc.events}); got != tc.want {
			t.Errorf("failureOf(%d events) = %q, want %q", len(tc.events), got, tc.want)
		}
	}
}

package autoscale

import (
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

func summary(group string, s nomadapi.TaskGroupSummary) *nomadapi.JobSummary {
	return &nomadapi.JobSummary{Summary: map[string]nomadapi.TaskGroupSummary{group: s}}
}

// formationOf counts the app's running and starting one-off dynos from its jobs, as the
// meter bills them, and nothing else.
func TestFormationCountsRunningOneOffDynos(t *testing.T) {
	t.Parallel()
	st := &nomadapi.JobScaleStatusResponse{TaskGroups: map[string]nomadapi.TaskGroupScaleStatus{
		"web": {Desired: 4}, "worker": {Desired: 2}, "clock": {Desired: 1}}}
	oneOff := map[string]string{"dyno.app": "shop", "dyno.process": "run"}
	jobs := []*nomadapi.JobListStub{
		// The app's own job: its dynos are in the scale status.
		{ID: "shop", Meta: map[string]string{"dyno.app": "shop"}, JobSummary: summary("web", nomadapi.TaskGroupSummary{Running: 4})},
		{ID: "shop-run-1234", Meta: oneOff, JobSummary: summary("run", nomadapi.TaskGroupSummary{Running: 1})},
		{ID: "shop-run-5678", Meta: oneOff, JobSummary: summary("run", nomadapi.TaskGroupSummary{Complete: 1})},
		{ID: "shop-run-0a1b2c3d", Meta: oneOff, JobSummary: summary("run", nomadapi.TaskGroupSummary{Starting: 1})},
		// A schedule runs nothing itself; its running run does.
		{ID: "shop-scheduler-nightly", Periodic: true, Meta: oneOff, JobSummary: summary("scheduler", nomadapi.TaskGroupSummary{})},
		{ID: "shop-scheduler-nightly/periodic-1765000000", ParentID: "shop-scheduler-nightly", Meta: oneOff,
			JobSummary: summary("scheduler", nomadapi.TaskGroupSummary{Running: 1})},
		{ID: "shop-scheduler-nightly/periodic-1764900000", ParentID: "shop-scheduler-nightly", Meta: oneOff,
			JobSummary: summary("scheduler", nomadapi.TaskGroupSummary{Failed: 1})},
		// Not one-off dynos of shop: a build, a job naming another app, one without meta.
		{ID: "shop-build-0a1b2c3d", Meta: map[string]string{"dyno.app": "shop", "dyno.process": "build"},
			JobSummary: summary("run", nomadapi.TaskGroupSummary{Running: 1})},
		{ID: "other-run-1000", Meta: map[string]string{"dyno.app": "other", "dyno.process": "run"},
			JobSummary: summary("run", nomadapi.TaskGroupSummary{Running: 1})},
		{ID: "mine", JobSummary: summary("x", nomadapi.TaskGroupSummary{Running: 3})},
		{ID: "shop-run-9999", Meta: oneOff},
	}
	want := Formation{Current: 4, Others: 3, OneOffs: 3}
	if f := formationOf("shop", "web", st, jobs); f != want {
		t.Errorf("formation %+v, want %+v", f, want)
	}
	if f := formationOf("shop", "web", st, nil); f != (Formation{Current: 4, Others: 3}) {
		t.Errorf("formation without jobs %+v", f)
	}
}

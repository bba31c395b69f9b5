package deploy

import (
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/meter"
)

// TestReleasePhaseJob checks the release phase's job: a one-off batch job of the new
// slug and environment running the release command once, metered as a one-off dyno,
// with the release process type's memory and size, and no service.
func TestReleasePhaseJob(t *testing.T) {
	t.Parallel()
	r := testRelease()
	p := appspec.Process{Name: appspec.ReleaseProcess, Command: "rake db:migrate", MemoryMB: 128, Size: appspec.SizeShared}
	job := releasePhaseJob("shop-run-0a1b2c3d", r, p, "nomad/jobs/shop-run-0a1b2c3d")
	if *job.ID != "shop-run-0a1b2c3d" || *job.Type != "batch" || *job.Namespace != "shop" {
		t.Errorf("job %s of type %s in %s, want batch job shop-run-0a1b2c3d in namespace shop", *job.ID, *job.Type, *job.Namespace)
	}
	if job.Meta[MetaApp] != "shop" || job.Meta[MetaProcess] != OneOffProcess || job.Meta[MetaReleasePhase] != "v3" || job.Meta[MetaRelease] != "v3" {
		t.Errorf("meta = %v, want a one-off dyno of shop, the release phase of v3", job.Meta)
	}
	if len(job.TaskGroups) != 1 || *job.TaskGroups[0].Name != "release" || len(job.TaskGroups[0].Tasks) != 1 {
		t.Fatalf("groups = %+v, want one group release", job.TaskGroups)
	}
	tg := job.TaskGroups[0]
	if *tg.RestartPolicy.Attempts != 0 || *tg.ReschedulePolicy.Attempts != 0 {
		t.Errorf("the release phase may be restarted or rescheduled: %+v %+v", tg.RestartPolicy, tg.ReschedulePolicy)
	}
	task := tg.Tasks[0]
	if task.Name != "release" || task.Config["slug"] != r.Slug.Path || task.Config["slug_sha256"] != r.Slug.SHA256 {
		t.Errorf("task %s config %v, want task release of the new slug", task.Name, task.Config)
	}
	assertKeepsLogs(t, task, 2, 10)
	if args := task.Config["args"].([]string); len(args) != 2 || args[1] != "exec rake db:migrate" {
		t.Errorf("args = %q, want the release command", args)
	}
	if *task.Resources.MemoryMB != 128 || task.Resources.Cores != nil || task.Resources.CPU == nil || *task.Resources.CPU != SharedCPU {
		t.Errorf("resources = %+v, want 128 MB and a CPU share", task.Resources)
	}
	alloc := &nomadapi.Allocation{Job: job, JobID: *job.ID, TaskGroup: *tg.Name}
	if app, process, ok := meter.DynoOf(alloc); !ok || app != "shop" || process != meter.OneOffProcess {
		t.Errorf("the meter counts the release phase as %q of %q (a dyno: %t), want a one-off dyno of shop", process, app, ok)
	}
	if len(task.Services) != 0 || len(task.Templates) != 1 || !strings.Contains(*task.Templates[0].EmbeddedTmpl, "nomad/jobs/shop-run-0a1b2c3d") || !strings.Contains(*task.Templates[0].EmbeddedTmpl, "DYNO=release.") {
		t.Errorf("services %v, templates %+v: want none, and the copy of the new environment", task.Services, task.Templates)
	}
}

// TestBuildDynoJob checks a build dyno's job: a one-off batch job of the build's slug
// whose job and group meta say process type build, so that neither the meter bills it
// nor the autoscaler's cost cap counts it, as Heroku bills no build time.
func TestBuildDynoJob(t *testing.T) {
	t.Parallel()
	r := testRelease()
	job := buildDynoJob("shop-build-0a1b2c3d", "shop", r.Slug, 1024)
	if *job.ID != "shop-build-0a1b2c3d" || *job.Type != "batch" || *job.Namespace != "shop" {
		t.Errorf("job %s of type %s in %s, want batch job shop-build-0a1b2c3d in namespace shop", *job.ID, *job.Type, *job.Namespace)
	}
	if len(job.TaskGroups) != 1 || len(job.TaskGroups[0].Tasks) != 1 {
		t.Fatalf("groups = %+v, want one group of one task", job.TaskGroups)
	}
	tg := job.TaskGroups[0]
	if job.Meta[MetaApp] != "shop" || job.Meta[MetaProcess] != BuildProcess || tg.Meta[MetaProcess] != BuildProcess {
		t.Errorf("job meta %v, group meta %v: want process type build in both", job.Meta, tg.Meta)
	}
	task := tg.Tasks[0]
	if task.Config["slug"] != r.Slug.Path || task.Config["slug_sha256"] != r.Slug.SHA256 || *task.Resources.MemoryMB != 1024 {
		t.Errorf("task config %v, resources %+v: want the build's slug and 1024 MB", task.Config, task.Resources)
	}
	assertKeepsLogs(t, task, 2, 10)
	alloc := &nomadapi.Allocation{Job: job, JobID: *job.ID, TaskGroup: *tg.Name}
	if app, process, ok := meter.DynoOf(alloc); ok {
		t.Errorf("the meter bills a build dyno as %q of %q, want it not billed", process, app)
	}
}

func TestExitReason(t *testing.T) {
	t.Parallel()
	terminated := func(code string) *nomadapi.TaskEvent {
		return &nomadapi.TaskEvent{Type: nomadapi.TaskTerminated, Details: map[string]string{"exit_code": code}}
	}
	for _, tc := range []struct {
		name   string
		status string
		state  *nomadapi.TaskState
		want   string
	}{
		{"exit 0", nomadapi.AllocClientStatusComplete, &nomadapi.TaskState{State: "dead", Events: []*nomadapi.TaskEvent{terminated("0")}}, ""},
		{"exit 3", nomadapi.AllocClientStatusFailed, &nomadapi.TaskState{State: "dead", Failed: true, Events: []*nomadapi.TaskEvent{terminated("3"), {Type: nomadapi.TaskNotRestarting, FailsTask: true}}}, "exited with status 3"},
		{"signal", nomadapi.AllocClientStatusFailed, &nomadapi.TaskState{State: "dead", Failed: true, Events: []*nomadapi.TaskEvent{{Type: nomadapi.TaskTerminated, Details: map[string]string{"exit_code": "0", "signal": "9"}}}}, "was killed by signal 9"},
		{"driver", nomadapi.AllocClientStatusFailed, &nomadapi.TaskState{State: "dead", Failed: true, Events: []*nomadapi.TaskEvent{{Type: nomadapi.TaskDriverFailure, DisplayMessage: "slug not found"}}}, "did not run: Driver Failure: slug not found"},
		{"no task", nomadapi.AllocClientStatusFailed, nil, "did not start: "},
	} {
		alloc := &nomadapi.Allocation{ClientStatus: tc.status, TaskStates: map[string]*nomadapi.TaskState{}}
		if tc.state != nil {
			alloc.TaskStates["release"] = tc.state
		}
		if got := exitReason(alloc); got != tc.want {
			t.Errorf("%s: exitReason = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestPhaseOutputLines checks that the release phase's output reaches the terminal in
// whole lines, indented, the last one even without its newline, and its control
// characters (an OSC 52 clipboard write, a CSI clear-screen) shown, not run.
func TestPhaseOutputLines(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	o := &phaseOutput{w: &b}
	o.write("stdout", []byte("migrating\nhalf"))
	o.write("stderr", []byte("warning: slow\n"))
	o.write("stdout", []byte(" done\n\x1b]52;c;b3duZWQ=\x07\x1b[2J\nno newline"))
	o.flush()
	want := "    migrating\n    warning: slow\n    half done\n    \\x1b]52;c;b3duZWQ=\\x07\\x1b[2J\n    no newline\n"
	if b.String() != want {
		t.Errorf("output = %q, want %q", b.String(), want)
	}
	if o.seen["stdout"] != int64(len("migrating\nhalf done\n\x1b]52;c;b3duZWQ=\x07\x1b[2J\nno newline")) {
		t.Errorf("stdout bytes seen = %d", o.seen["stdout"])
	}
}

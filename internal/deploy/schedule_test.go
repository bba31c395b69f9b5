package deploy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

func TestDynoNamesOfOneOffJobs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ job, oneOff, scheduled string }{
		{"shop-run-1234", "run.1234", ""},
		{"shop-scheduler-nightly/periodic-1765000000", "", "scheduler.nightly.1765000000"},
		{"shop-scheduler-nightly", "", ""},
		{"shop", "", ""},
		{"shop-run-", "", ""},
		{"other-run-1234", "", ""},
		{"shop-scheduler-/periodic-1", "", ""},
	} {
		if got := OneOffName("shop", tc.job); got != tc.oneOff {
			t.Errorf("OneOffName(shop, %q) = %q, want %q", tc.job, got, tc.oneOff)
		}
		if got := ScheduledRunName("shop", tc.job); got != tc.scheduled {
			t.Errorf("ScheduledRunName(shop, %q) = %q, want %q", tc.job, got, tc.scheduled)
		}
	}
}

// A deploy's plan lists the schedules it adds, edits (cron, command or memory) and
// deletes, by name, and not the unchanged ones.
func TestDiffSchedules(t *testing.T) {
	t.Parallel()
	nightly := appspec.Schedule{Name: "nightly", Cron: "0 3 * * *", Command: "rake cleanup", MemoryMB: 512}
	hourly := appspec.Schedule{Name: "hourly", Cron: "@hourly", Command: "rake ping", MemoryMB: 512}
	old := appspec.Schedule{Name: "old", Cron: "0 0 * * 0", Command: "rake weekly", MemoryMB: 256}
	later := nightly
	later.Cron, later.MemoryMB = "0 4 * * *", 1024
	added := appspec.Schedule{Name: "added", Cron: "*/5 * * * *", Command: "rake poll", MemoryMB: 512}

	got := diffSchedules([]appspec.Schedule{nightly, hourly, old}, []appspec.Schedule{hourly, later, added})
	want := []ScheduleDiff{
		{Type: "Added", Name: "added", Schedule: &added},
		{Type: "Edited", Name: "nightly", Fields: []*nomadapi.FieldDiff{
			{Type: "Edited", Name: "cron", Old: "0 3 * * *", New: "0 4 * * *"},
			{Type: "Edited", Name: "memory", Old: "512 MB", New: "1024 MB"}}},
		{Type: "Deleted", Name: "old", Schedule: &old},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diff:\n%s\nwant:\n%s", dumpDiffs(got), dumpDiffs(want))
	}
	if got := diffSchedules([]appspec.Schedule{nightly}, []appspec.Schedule{nightly}); len(got) != 0 {
		t.Errorf("diff of the same schedules: %s", dumpDiffs(got))
	}
	if got := diffSchedules([]appspec.Schedule{nightly}, nil); len(got) != 1 || got[0].Type != "Deleted" {
		t.Errorf("diff without schedules: %s", dumpDiffs(got))
	}
}

func dumpDiffs(ds []ScheduleDiff) string {
	var s string
	for _, d := range ds {
		s += fmt.Sprintf("%s %s %+v", d.Type, d.Name, d.Schedule)
		for _, f := range d.Fields {
			s += fmt.Sprintf(" %+v", *f)
		}
		s += "\n"
	}
	return s
}

// TestScheduleCommandNotInJobMeta: a schedule's command (which may hold a secret) is not
// in its job's meta, which Nomad's job list shows to tokens that may only list jobs
// (the autoscaler's, the router's); it is in the task, which only tokens that may read
// the job's definition see, and `dyno schedules` reads it back from there.
func TestScheduleCommandNotInJobMeta(t *testing.T) {
	t.Parallel()
	cur := &nomadapi.Job{Meta: map[string]string{MetaApp: "shop", MetaRelease: "v7", MetaEnv: "nomad/jobs/shop/env/v7"}}
	src := &nomadapi.Task{Config: map[string]any{"slug": "shop.tgz", "slug_sha256": "abc"},
		Resources: &nomadapi.Resources{Cores: ptr(1)}}
	s := appspec.Schedule{Name: "ping", Cron: "*/5 * * * *", Command: `curl -fsS -H "Authorization: Bearer s3cr3t-token" https://example.test/ping`, MemoryMB: 256}
	job := scheduleJob(cur, src, s, "nomad/jobs/shop-scheduler-ping")
	for k, v := range job.Meta {
		if strings.Contains(v, "s3cr3t") || strings.Contains(v, "curl") {
			t.Errorf("job meta %s = %q: the command is in what list-jobs shows", k, v)
		}
	}
	task := job.TaskGroups[0].Tasks[0]
	if args := fmt.Sprint(task.Config["args"]); !strings.Contains(args, s.Command) {
		t.Errorf("the task runs %s, want the command", args)
	}
	got := scheduleOf(job, time.Now())
	if got.Schedule != s || got.Release != "v7" {
		t.Errorf("read back: %+v, want %+v of v7", got, s)
	}
	// A schedule registered with the command in its job's meta still reads.
	delete(task.Meta, MetaCommand)
	job.Meta[MetaCommand] = s.Command
	if got := scheduleOf(job, time.Now()); got.Command != s.Command {
		t.Errorf("a schedule with its command in job meta: read %q", got.Command)
	}
}

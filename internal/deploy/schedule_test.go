package deploy

import (
	"fmt"
	"reflect"
	"testing"

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

package meter

import (
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

func ev(typ string, sec int) *nomadapi.TaskEvent {
	return &nomadapi.TaskEvent{Type: typ, Time: at(sec).UnixNano()}
}

func TestDynoOf(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	job := func(jobMeta, groupMeta map[string]string) *nomadapi.Job {
		return &nomadapi.Job{ID: str("demo"), Meta: jobMeta,
			TaskGroups: []*nomadapi.TaskGroup{{Name: str("other"), Meta: map[string]string{MetaProcess: "nope"}},
				{Name: str("web"), Meta: groupMeta}}}
	}
	for _, tc := range []struct {
		name         string
		alloc        *nomadapi.Allocation
		app, process string
		ok           bool
	}{
		{"no job", &nomadapi.Allocation{TaskGroup: "web"}, "", "", false},
		{"no meta", &nomadapi.Allocation{TaskGroup: "web", Job: job(nil, nil)}, "", "", false},
		{"job meta", &nomadapi.Allocation{TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "web"}, nil)}, "demo", "web", true},
		{"group name", &nomadapi.Allocation{TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo"}, nil)}, "demo", "web", true},
		{"group meta wins", &nomadapi.Allocation{TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "x"}, map[string]string{MetaProcess: "worker"})}, "demo", "worker", true},
		{"one-off", &nomadapi.Allocation{TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "run"}, nil)}, "demo", "run", true},
		{"one-off job", &nomadapi.Allocation{JobID: "demo-run-1a2b", TaskGroup: "run", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "run"}, nil)}, "demo", "run", true},
		{"release phase", &nomadapi.Allocation{JobID: "demo-run-0a1b2c3d", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "run", "dyno.release_phase": "v3"}, map[string]string{MetaProcess: "run"})}, "demo", "run", true},
		// Build time is not billed, whichever meta says build: the group's (build dynos now)
		// or the job's only (build dynos that started before groups said it too).
		{"build dyno", &nomadapi.Allocation{JobID: "demo-build-0a1b2c3d", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "build"}, map[string]string{MetaProcess: "build"})}, "", "", false},
		{"build dyno, group meta run", &nomadapi.Allocation{JobID: "demo-build-0a1b2c3d", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "build"}, map[string]string{MetaProcess: "run"})}, "", "", false},
		// A process type named build (a Procfile's `build: ...`) in the app's own job is
		// billed like any other: the spec may name it, so it must not run free.
		{"process type build in the app's own job", &nomadapi.Allocation{JobID: "demo", TaskGroup: "build", Job: job(map[string]string{MetaApp: "demo"}, map[string]string{MetaProcess: "build"})}, "demo", "build", true},
		{"job meta build in the app's own job", &nomadapi.Allocation{JobID: "demo", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaProcess: "build"}, map[string]string{MetaProcess: "web"})}, "demo", "web", true},
		{"add-on job", &nomadapi.Allocation{JobID: "addon-memcached-demo-1", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaAddon: "memcached"}, nil)}, "", "", false},
		{"another job naming the app", &nomadapi.Allocation{JobID: "other", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo"}, nil)}, "", "", false},
		// In an app's namespace, the namespace says whose dyno it is: the app's deploy token
		// writes the meta, and must neither bill another app nor run a dyno unbilled.
		{"app namespace", &nomadapi.Allocation{Namespace: "demo", JobID: "demo", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo"}, nil)}, "demo", "web", true},
		{"another app's name in the meta", &nomadapi.Allocation{Namespace: "alpha", JobID: "beta", TaskGroup: "web", Job: job(map[string]string{MetaApp: "beta"}, nil)}, "alpha", "web", true},
		{"no meta in an app's namespace", &nomadapi.Allocation{Namespace: "alpha", JobID: "miner", TaskGroup: "web", Job: job(nil, nil)}, "alpha", "web", true},
		{"add-on meta in an app's namespace", &nomadapi.Allocation{Namespace: "alpha", JobID: "free", TaskGroup: "web", Job: job(map[string]string{MetaAddon: "memcached"}, nil)}, "alpha", "web", true},
		{"build dyno in an app's namespace", &nomadapi.Allocation{Namespace: "alpha", JobID: "alpha-build-0a1b", TaskGroup: "web", Job: job(map[string]string{MetaApp: "alpha", MetaProcess: "build"}, map[string]string{MetaProcess: "build"})}, "", "", false},
		{"add-on job in the add-ons' namespace", &nomadapi.Allocation{Namespace: "dyno-addons", JobID: "addon-memcached-demo-1", TaskGroup: "web", Job: job(map[string]string{MetaApp: "demo", MetaAddon: "memcached"}, nil)}, "", "", false},
	} {
		app, process, ok := DynoOf(tc.alloc)
		if app != tc.app || process != tc.process || ok != tc.ok {
			t.Errorf("%s: DynoOf = %q %q %v, want %q %q %v", tc.name, app, process, ok, tc.app, tc.process, tc.ok)
		}
	}
}

func TestDeriveRecords(t *testing.T) {
	t.Parallel()
	base := AllocState{ID: "a1", Namespace: "default", JobID: "demo", TaskGroup: "web", NodeID: "n1",
		ClientStatus: "running", ModifyTime: at(5000), App: "demo", Process: "web"}
	open := func(start int) Record { return base.record("main", at(start)) }
	closed := func(start, end int, why string) Record {
		r := open(start)
		r.close(at(end), why)
		return r
	}
	type span struct {
		start, end int // end -1: open
		why        string
	}
	for _, tc := range []struct {
		name     string
		status   string
		state    *nomadapi.TaskState
		existing []Record
		want     []span
	}{
		{
			name:  "running",
			state: &nomadapi.TaskState{State: "running", Events: []*nomadapi.TaskEvent{ev("Received", 0), ev("Started", 1)}},
			want:  []span{{1, -1, ""}},
		},
		{
			name: "crash and restart",
			state: &nomadapi.TaskState{State: "running", Events: []*nomadapi.TaskEvent{
				ev("Received", 0), ev("Started", 1), ev("Terminated", 100), ev("Restarting", 100), ev("Started", 115)}},
			want: []span{{1, 100, "Terminated"}, {115, -1, ""}},
		},
		{
			name: "graceful kill ends at Terminated, not Killing",
			state: &nomadapi.TaskState{State: "dead", Events: []*nomadapi.TaskEvent{
				ev("Started", 1), ev("Killing", 100), ev("Terminated", 130), ev("Killed", 131)}},
			want: []span{{1, 130, "Terminated"}},
		},
		{
			name:  "dead without an end event ends at FinishedAt",
			state: &nomadapi.TaskState{State: "dead", FinishedAt: at(50), Events: []*nomadapi.TaskEvent{ev("Started", 1)}},
			want:  []span{{1, 50, ReasonTaskDead}},
		},
		{
			name:   "lost allocation ends when the servers marked it lost",
			status: "lost",
			state:  &nomadapi.TaskState{State: "running", Events: []*nomadapi.TaskEvent{ev("Started", 1)}},
			want:   []span{{1, 5000, ReasonAllocLost}},
		},
		{
			name:   "client status unknown (disconnected) keeps it open",
			status: "unknown",
			state:  &nomadapi.TaskState{State: "running", Events: []*nomadapi.TaskEvent{ev("Started", 1)}},
			want:   []span{{1, -1, ""}},
		},
		{
			name: "closed records are final",
			state: &nomadapi.TaskState{State: "dead", FinishedAt: at(90), Events: []*nomadapi.TaskEvent{
				ev("Started", 1), ev("Terminated", 80)}},
			existing: []Record{closed(1, 70, ReasonAllocGone)},
			want:     nil,
		},
		{
			name:     "unchanged open record is not rewritten",
			state:    &nomadapi.TaskState{State: "running", Events: []*nomadapi.TaskEvent{ev("Started", 1)}},
			existing: []Record{open(1)},
			want:     nil,
		},
		{
			name: "open record whose Started event was truncated closes at the next end event",
			state: &nomadapi.TaskState{State: "running", StartedAt: at(300), Events: []*nomadapi.TaskEvent{
				ev("Terminated", 200), ev("Restarting", 200), ev("Started", 210), ev("Terminated", 250),
				ev("Restarting", 250), ev("Started", 300)}},
			existing: []Record{open(1)},
			want:     []span{{1, 200, "Terminated"}, {210, 250, "Terminated"}, {300, -1, ""}},
		},
		{
			name:     "open record of a dead task with no events left",
			state:    &nomadapi.TaskState{State: "dead", FinishedAt: at(400)},
			existing: []Record{open(1)},
			want:     []span{{1, 400, ReasonTaskDead}},
		},
		{
			name:     "open record of a running task whose events only show signals stays open",
			state:    &nomadapi.TaskState{State: "running", StartedAt: at(1), Events: []*nomadapi.TaskEvent{ev("Signaling", 50)}},
			existing: []Record{open(1)},
			want:     nil,
		},
		{
			name:  "running task never seen whose Started event is gone starts at StartedAt",
			state: &nomadapi.TaskState{State: "running", StartedAt: at(7), Events: []*nomadapi.TaskEvent{ev("Signaling", 50)}},
			want:  []span{{7, -1, ""}},
		},
		{
			name: "state still running just after Terminated does not invent a run",
			state: &nomadapi.TaskState{State: "running", StartedAt: at(115).Add(time.Millisecond), Events: []*nomadapi.TaskEvent{
				ev("Started", 1), ev("Terminated", 100), ev("Restarting", 100), ev("Started", 115), ev("Terminated", 200)}},
			want: []span{{1, 100, "Terminated"}, {115, 200, "Terminated"}},
		},
		{
			name: "state running with only an end event after StartedAt",
			state: &nomadapi.TaskState{State: "running", StartedAt: at(7), Events: []*nomadapi.TaskEvent{
				ev("Signaling", 50), ev("Terminated", 60)}},
			want: nil,
		},
		{
			name:  "task that never started",
			state: &nomadapi.TaskState{State: "dead", Events: []*nomadapi.TaskEvent{ev("Received", 0), ev("Driver Failure", 1)}},
			want:  nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := base
			if tc.status != "" {
				a.ClientStatus = tc.status
			}
			a.TaskStates = map[string]*nomadapi.TaskState{"main": tc.state}
			got := deriveRecords(a, tc.existing)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d: %+v", len(got), len(tc.want), got)
			}
			sortRecords(got)
			for i, w := range tc.want {
				r := got[i]
				if !r.Start.Equal(at(w.start)) {
					t.Errorf("record %d starts at %s, want %s", i, r.Start.Sub(t0), time.Duration(w.start)*time.Second)
				}
				if w.end < 0 {
					if !r.Open() {
						t.Errorf("record %d closed at %s, want open", i, r.End.Sub(t0))
					}
					continue
				}
				if r.Open() || !r.End.Equal(at(w.end)) || r.EndReason != w.why {
					t.Errorf("record %d ends %v by %q, want %s by %q", i, r.End, r.EndReason, at(w.end), w.why)
				}
			}
		})
	}
}

package meter

import (
	"sort"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/policies"
)

// Task states as Nomad reports them in TaskState.State.
const (
	taskStateRunning = "running"
	taskStateDead    = "dead"
)

// Meta keys of the deployer's contract (docs/design.md).
const (
	MetaApp     = "dyno.app"
	MetaProcess = "dyno.process"
	// MetaAddon marks the jobs that add-ons run for an app.
	MetaAddon = "dyno.addon"
	// OneOffProcess is the process type of one-off dynos.
	OneOffProcess = "run"
	// BuildProcess is the process type of build dynos, which are not billed: Heroku
	// does not bill build time.
	BuildProcess = "build"
)

// AllocState is what the meter needs to know of one allocation: who it bills and when
// its tasks ran.
type AllocState struct {
	ID, Namespace, JobID, TaskGroup, NodeID string
	// ClientStatus is Nomad's client status: pending, running, complete, failed, lost,
	// unknown.
	ClientStatus string
	// ModifyTime is when the servers last changed the allocation.
	ModifyTime time.Time
	TaskStates map[string]*nomadapi.TaskState
	// App and Process come from the job's meta (see DynoOf).
	App, Process string
}

// DynoOf says whether a full allocation (with its Job) is a dyno, and whose. In an app's
// namespace every allocation is a dyno of that app but a build dyno's. Elsewhere
// (the default namespace) the app is meta dyno.app (task group meta over job meta). The
// process type is meta dyno.process, or else the task group name. One-off dynos carry dyno.process=run. A dyno belongs to
// the app's own job (ID = app) or is a one-off: other jobs that name an app, such as an
// add-on's (meta dyno.addon), run no dynos. A build dyno (a job other than the app's own
// with dyno.process=build, in its job's or its group's meta) is not billed.
func DynoOf(a *nomadapi.Allocation) (app, process string, ok bool) {
	if a == nil || a.Job == nil {
		return "", "", false
	}
	meta := map[string]string{}
	for k, v := range a.Job.Meta {
		meta[k] = v
	}
	for _, tg := range a.Job.TaskGroups {
		if tg != nil && tg.Name != nil && *tg.Name == a.TaskGroup {
			for k, v := range tg.Meta {
				meta[k] = v
			}
		}
	}
	process = meta[MetaProcess]
	if process == "" {
		process = a.TaskGroup
	}
	jobID := a.JobID
	if jobID == "" && a.Job.ID != nil {
		jobID = *a.Job.ID
	}
	if appNamespace(a.Namespace) {
		// Only the app's deploy tokens write its namespace, and they write the meta
		// too: the namespace says whose dyno it is, so that no job bills another app
		// and none runs unbilled for want of meta. Only a build runs free.
		if jobID != a.Namespace && (process == BuildProcess || a.Job.Meta[MetaProcess] == BuildProcess) {
			return "", "", false
		}
		return a.Namespace, process, true
	}
	app = meta[MetaApp]
	if app == "" {
		return "", "", false
	}
	// A build dyno is a job of its own (<app>-build-<hex>); in the app's own job,
	// "build" is a process type of the app's spec like any other, and billed.
	if jobID != app && (process == BuildProcess || a.Job.Meta[MetaProcess] == BuildProcess) {
		return "", "", false
	}
	if _, addon := meta[MetaAddon]; addon || (jobID != app && process != OneOffProcess) {
		return "", "", false
	}
	return app, process, true
}

// appNamespace says whether ns is an app's own namespace (tenancy.Namespace): neither
// the default one, where only operators run jobs, nor the add-ons'.
func appNamespace(ns string) bool {
	return ns != "" && ns != "default" && ns != policies.AddonNamespace
}

// StateOfAlloc turns a full allocation into an AllocState, or reports that it is not a dyno.
func StateOfAlloc(a *nomadapi.Allocation) (AllocState, bool) {
	app, process, ok := DynoOf(a)
	if !ok {
		return AllocState{}, false
	}
	return AllocState{
		ID: a.ID, Namespace: a.Namespace, JobID: a.JobID, TaskGroup: a.TaskGroup, NodeID: a.NodeID,
		ClientStatus: a.ClientStatus, ModifyTime: nanos(a.ModifyTime), TaskStates: a.TaskStates,
		App: app, Process: process,
	}, true
}

// StateOfStub turns an allocation list entry into an AllocState for an allocation already
// known to be a dyno of app and process.
func StateOfStub(s *nomadapi.AllocationListStub, app, process string) AllocState {
	return AllocState{
		ID: s.ID, Namespace: s.Namespace, JobID: s.JobID, TaskGroup: s.TaskGroup, NodeID: s.NodeID,
		ClientStatus: s.ClientStatus, ModifyTime: nanos(s.ModifyTime), TaskStates: s.TaskStates,
		App: app, Process: process,
	}
}

func nanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// endEvents are the task events after which the task's process is no longer running.
// Killing, Restart Signaled, Sibling Task Failed and Leader Task Dead only ask it to stop;
// the Terminated or Killed event that follows says when it did.
var endEvents = map[string]bool{
	nomadapi.TaskTerminated:    true,
	nomadapi.TaskKilled:        true,
	nomadapi.TaskRestarting:    true,
	nomadapi.TaskNotRestarting: true,
	nomadapi.TaskDriverFailure: true,
}

// run is one stretch of a task's TaskState events from Started to an end event.
type run struct {
	start, end time.Time // end zero: still running
	reason     string
}

// runsOf reads the runs of a task from its events. A Started event opens a run (closing
// one still open, which Nomad does not emit but a truncated history could suggest); an
// end event closes it; end events with no open run are ignored.
func runsOf(ts *nomadapi.TaskState) []run {
	if ts == nil {
		return nil
	}
	evs := sortedEvents(ts)
	var out []run
	open := -1
	for _, ev := range evs {
		t := nanos(ev.Time)
		switch {
		case ev.Type == nomadapi.TaskStarted:
			if open >= 0 {
				out[open].end, out[open].reason = t, nomadapi.TaskStarted
			}
			out = append(out, run{start: t})
			open = len(out) - 1
		case endEvents[ev.Type] && open >= 0:
			out[open].end, out[open].reason = t, ev.Type
			open = -1
		}
	}
	return out
}

func sortedEvents(ts *nomadapi.TaskState) []*nomadapi.TaskEvent {
	evs := make([]*nomadapi.TaskEvent, 0, len(ts.Events))
	for _, ev := range ts.Events {
		if ev != nil {
			evs = append(evs, ev)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time < evs[j].Time })
	return evs
}

// Reasons a run's end is inferred rather than read from a task event.
const (
	ReasonTaskDead  = "task dead"
	ReasonAllocLost = "alloc lost"
	ReasonAllocGone = "alloc gone"
)

// deriveRecords computes the ledger records an allocation's state implies, given the
// records already in the ledger for it (existing). It returns only records whose
// content differs from existing ones. Closed records are final and never reopened or
// moved.
func deriveRecords(a AllocState, existing []Record) []Record {
	have := map[string]Record{}
	byTask := map[string][]Record{}
	for _, r := range existing {
		have[r.Key()] = r
		byTask[r.Task] = append(byTask[r.Task], r)
	}
	tasks := map[string]bool{}
	for name := range a.TaskStates {
		tasks[name] = true
	}
	for name := range byTask {
		tasks[name] = true
	}
	names := make([]string, 0, len(tasks))
	for n := range tasks {
		names = append(names, n)
	}
	sort.Strings(names)

	terminal := a.ClientStatus == nomadapi.AllocClientStatusComplete ||
		a.ClientStatus == nomadapi.AllocClientStatusFailed ||
		a.ClientStatus == nomadapi.AllocClientStatusLost
	allocEnd := func() (time.Time, string) {
		if a.ClientStatus == nomadapi.AllocClientStatusLost {
			return a.ModifyTime, ReasonAllocLost
		}
		return a.ModifyTime, ReasonTaskDead
	}

	var out []Record
	emit := func(r Record) {
		if old, ok := have[r.Key()]; ok && (!old.Open() || old.same(r)) {
			return
		}
		out = append(out, r)
	}
	for _, task := range names {
		ts := a.TaskStates[task]
		runs := runsOf(ts)
		seen := map[int64]bool{}
		openRun := false
		for _, rn := range runs {
			seen[rn.start.UnixNano()] = true
			r := a.record(task, rn.start)
			switch {
			case !rn.end.IsZero():
				r.close(rn.end, rn.reason)
			case ts.State == taskStateDead:
				r.close(laterOf(ts.FinishedAt, rn.start), ReasonTaskDead)
			case terminal:
				at, why := allocEnd()
				r.close(laterOf(at, rn.start), why)
			default:
				openRun = true
			}
			emit(r)
		}
		// Open runs of the ledger whose Started event has left the task's event list
		// (Nomad keeps its last ten events): close them from what the state still says.
		for _, r := range byTask[task] {
			if !r.Open() || seen[r.Start.UnixNano()] {
				continue
			}
			if end, why, ok := inferEnd(ts, r.Start, runs); ok {
				r.close(end, why)
				emit(r)
				continue
			}
			if terminal {
				at, why := allocEnd()
				r.close(laterOf(at, r.Start), why)
				emit(r)
				continue
			}
			openRun = true
		}
		// A running task whose Started event is gone (more than ten events since) and
		// that the ledger never saw: start its run at StartedAt. Not when the events
		// show any run or an end after StartedAt: a task's state still says running
		// for a moment after its Terminated event.
		if !openRun && len(runs) == 0 && ts != nil && ts.State == taskStateRunning &&
			!ts.StartedAt.IsZero() && !terminal && !endedSince(ts, ts.StartedAt) {
			emit(a.record(task, ts.StartedAt.UTC()))
		}
	}
	return out
}

// inferEnd finds when a run that started at start ended, from a task state whose events
// no longer show its start: the first end event after start, else the task's finish
// time if it is dead, else the start of a later run.
func inferEnd(ts *nomadapi.TaskState, start time.Time, runs []run) (time.Time, string, bool) {
	if ts == nil {
		return time.Time{}, "", false
	}
	for _, ev := range sortedEvents(ts) {
		if t := nanos(ev.Time); endEvents[ev.Type] && t.After(start) {
			return t, ev.Type, true
		}
	}
	if ts.State == taskStateDead {
		return laterOf(ts.FinishedAt, start), ReasonTaskDead, true
	}
	for _, rn := range runs {
		if rn.start.After(start) {
			return rn.start, nomadapi.TaskStarted, true
		}
	}
	return time.Time{}, "", false
}

// endedSince says whether the task's events show an end at or after t.
func endedSince(ts *nomadapi.TaskState, t time.Time) bool {
	for _, ev := range ts.Events {
		if ev != nil && endEvents[ev.Type] && !nanos(ev.Time).Before(t) {
			return true
		}
	}
	return false
}

func laterOf(t, floor time.Time) time.Time {
	if t.Before(floor) {
		return floor
	}
	return t.UTC()
}

func (a AllocState) record(task string, start time.Time) Record {
	return Record{Version: RecordVersion, App: a.App, Process: a.Process, Namespace: a.Namespace,
		Job: a.JobID, Group: a.TaskGroup, Alloc: a.ID, Task: task, Node: a.NodeID, Start: start.UTC()}
}

func (r *Record) close(at time.Time, reason string) {
	t := at.UTC()
	r.End, r.EndReason = &t, reason
}

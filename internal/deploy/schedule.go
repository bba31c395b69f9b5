package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
)

// ScheduledProcess names the task group and task of a scheduled run, and the process
// type `dyno ps` and `dyno logs` show it under. The meter counts it as a one-off dyno
// (meta dyno.process=run), as Heroku bills Scheduler's dynos.
const ScheduledProcess = "scheduler"

// Meta keys of a schedule's job: the schedule's name in the job's meta, its command in
// its task's meta. Job meta is in Nomad's job list, which tokens that may only list jobs
// (the router's, the autoscaler's) read; a task's meta, like its arguments, only tokens
// that may read the job's definition.
const (
	MetaSchedule = "dyno.schedule"
	MetaCommand  = "dyno.command"
)

// ScheduleJobID is the periodic job of app's schedule name.
func ScheduleJobID(app, name string) string { return app + "-" + ScheduledProcess + "-" + name }

// ScheduledRunName is the dyno name (scheduler.nightly.1765000000: the schedule and the
// Unix time it fired) of a run of one of app's schedules, from its job ID
// (<app>-scheduler-nightly/periodic-1765000000); "" when jobID is not one.
func ScheduledRunName(app, jobID string) string {
	rest, ok := strings.CutPrefix(jobID, ScheduleJobID(app, ""))
	if !ok {
		return ""
	}
	name, at, ok := strings.Cut(rest, nomadapi.JobPeriodicLaunchSuffix)
	if !ok || name == "" || at == "" {
		return ""
	}
	return ScheduledProcess + "." + name + "." + at
}

// ScheduleStatus is a schedule as it is registered, for `dyno schedules`.
type ScheduleStatus struct {
	appspec.Schedule
	Release string    `json:"release"`
	Next    time.Time `json:"next_run"`
	// LastRun is when the latest run started (zero for none that Nomad still keeps),
	// LastStatus how it went: running, complete, failed or dead.
	LastRun    time.Time `json:"last_run,omitempty"`
	LastStatus string    `json:"last_status,omitempty"`
}

// SyncSchedules makes the app's schedules those of want: each is a periodic batch job
// with the current release's slug and environment, and schedules no longer wanted are
// removed with their copy of the environment. A deploy calls it with its spec's
// schedules.
func (d *Deployer) SyncSchedules(ctx context.Context, app string, want []appspec.Schedule) error {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return err
	}
	have, err := d.scheduleJobs(ctx, app)
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, s := range want {
		id := ScheduleJobID(app, s.Name)
		kept[id] = true
		if err := d.registerSchedule(ctx, cur, s); err != nil {
			return err
		}
	}
	for _, j := range have {
		if !kept[j.ID] {
			d.progress("    schedule %s removed", j.Meta[MetaSchedule])
			if err := d.removeSchedule(ctx, j.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// RefreshSchedules gives the app's registered schedules the current release's slug and
// environment, after a release that changed them without a spec (a config change, a
// rollback).
func (d *Deployer) RefreshSchedules(ctx context.Context, app string) error {
	have, err := d.Schedules(ctx, app)
	if err != nil {
		return err
	}
	want := make([]appspec.Schedule, len(have))
	for i, s := range have {
		want[i] = s.Schedule
	}
	return d.SyncSchedules(ctx, app, want)
}

// Schedules lists the app's registered schedules, by name, with their next and latest
// runs.
func (d *Deployer) Schedules(ctx context.Context, app string) ([]ScheduleStatus, error) {
	jobs, err := d.scheduleJobs(ctx, app)
	if err != nil {
		return nil, err
	}
	var out []ScheduleStatus
	now := time.Now()
	for _, stub := range jobs {
		job, _, err := d.Nomad.Jobs().Info(stub.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("failed to read schedule %s: %w", stub.ID, err)
		}
		s := scheduleOf(job, now)
		children, _, err := d.Nomad.Jobs().PrefixList(stub.ID + nomadapi.JobPeriodicLaunchSuffix)
		if err != nil {
			return nil, fmt.Errorf("failed to read the runs of schedule %s: %w", s.Name, err)
		}
		for _, c := range children {
			if at := time.Unix(0, c.SubmitTime); at.After(s.LastRun) {
				s.LastRun, s.LastStatus = at, runStatus(c)
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// scheduleOf is the schedule a schedule's job runs, as of now.
func scheduleOf(job *nomadapi.Job, now time.Time) ScheduleStatus {
	s := ScheduleStatus{Schedule: appspec.Schedule{Name: job.Meta[MetaSchedule]}, Release: job.Meta[MetaRelease]}
	if job.Periodic != nil && job.Periodic.Spec != nil {
		s.Cron = *job.Periodic.Spec
		s.Next = appspec.NextRun(s.Cron, now)
	}
	if tg := job.LookupTaskGroup(ScheduledProcess); tg != nil && len(tg.Tasks) > 0 {
		task := tg.Tasks[0]
		s.Command = task.Meta[MetaCommand]
		if task.Resources != nil && task.Resources.MemoryMB != nil {
			s.MemoryMB = *task.Resources.MemoryMB
		}
	}
	if s.Command == "" {
		s.Command = job.Meta[MetaCommand] // registered before the command moved to the task
	}
	return s
}

// RunSchedule starts a run of the app's schedule name now, besides its cron: Nomad's
// periodic force. It returns the run's job ID.
func (d *Deployer) RunSchedule(ctx context.Context, app, name string) (string, error) {
	if err := appspec.ValidateScheduleName(name); err != nil {
		return "", err
	}
	id := ScheduleJobID(app, name)
	before, _, err := d.Nomad.Jobs().PrefixList(id + nomadapi.JobPeriodicLaunchSuffix)
	if err != nil {
		return "", fmt.Errorf("failed to read the runs of schedule %s of %s: %w", name, app, err)
	}
	if _, _, err := d.Nomad.Jobs().PeriodicForce(id, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return "", fmt.Errorf("failed to run schedule %s of %s (see `dyno schedules --app %s`): %w", name, app, app, err)
	}
	seen := map[string]bool{}
	for _, j := range before {
		seen[j.ID] = true
	}
	after, _, err := d.Nomad.Jobs().PrefixList(id + nomadapi.JobPeriodicLaunchSuffix)
	if err != nil {
		return "", err
	}
	for _, j := range after {
		if !seen[j.ID] {
			return j.ID, nil
		}
	}
	return "", fmt.Errorf("schedule %s of %s did not start a run", name, app)
}

// runStatus says how a scheduled run went, from its job: running, complete, failed.
func runStatus(j *nomadapi.JobListStub) string {
	if s := j.JobSummary; s != nil {
		for _, g := range s.Summary {
			switch {
			case g.Running > 0 || g.Starting > 0 || g.Queued > 0:
				return "running"
			case g.Failed > 0 || g.Lost > 0:
				return "failed"
			case g.Complete > 0:
				return "complete"
			}
		}
	}
	return j.Status
}

// scheduleJobs lists the app's schedule jobs (not their runs).
func (d *Deployer) scheduleJobs(ctx context.Context, app string) ([]*nomadapi.JobListStub, error) {
	stubs, _, err := d.Nomad.Jobs().PrefixList(ScheduleJobID(app, ""))
	if err != nil {
		return nil, fmt.Errorf("failed to list the schedules of %s: %w", app, err)
	}
	var out []*nomadapi.JobListStub
	for _, s := range stubs {
		if s.ParentID == "" && s.Periodic {
			out = append(out, s)
		}
	}
	return out, nil
}

// registerSchedule registers schedule s of the app as a periodic batch job that runs
// the current release. Its environment is copied to the job's own variable, the only
// one its runs' workload identity may read (Nomad gives a periodic job's runs their
// parent job's identity).
func (d *Deployer) registerSchedule(ctx context.Context, cur *App, s appspec.Schedule) error {
	app := cur.Job.Meta[MetaApp]
	src := sourceTask(cur.Job)
	if src == nil {
		return fmt.Errorf("%s has no release to run schedule %s with", app, s.Name)
	}
	id := ScheduleJobID(app, s.Name)
	envPath, err := d.copyEnv(ctx, cur.Job.Meta[MetaEnv], id)
	if err != nil {
		return err
	}
	job := scheduleJob(cur.Job, src, s, envPath)
	if _, _, err := d.Nomad.Jobs().Register(job, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to register schedule %s: %w", s.Name, err)
	}
	d.progress("    schedule %s: %s, %s", s.Name, s.Cron, s.Command)
	return nil
}

// scheduleJob is the periodic job of schedule s of the app whose current job is cur:
// runs of the slug of task src with the environment at envPath.
func scheduleJob(cur *nomadapi.Job, src *nomadapi.Task, s appspec.Schedule, envPath string) *nomadapi.Job {
	app := cur.Meta[MetaApp]
	job := oneOffJob(ScheduleJobID(app, s.Name), app, cur.Meta[MetaRelease], src, s.MemoryMB, envPath)
	job.Constraints = cur.Constraints // a built release's stack (stack.go)
	job.Meta[MetaSchedule] = s.Name
	job.Periodic = &nomadapi.PeriodicConfig{
		Enabled: ptr(true), Spec: ptr(s.Cron), SpecType: ptr(nomadapi.PeriodicSpecCron),
		// A run does not start while the previous one still runs.
		ProhibitOverlap: ptr(true), TimeZone: ptr("UTC"),
	}
	// DYNO is scheduler.<name>.<the Unix time of the run>, as `dyno logs` names it.
	dyno := fmt.Sprintf(`%s.%s.{{ env "NOMAD_JOB_ID" | regexReplaceAll "^.*/periodic-" "" }}`, ScheduledProcess, s.Name)
	runInOneOff(job, ScheduledProcess, ShellCommand(s.Command), dyno, envPath)
	task := job.TaskGroups[0].Tasks[0]
	if task.Meta == nil {
		task.Meta = map[string]string{}
	}
	task.Meta[MetaCommand] = s.Command
	return job
}

// removeSchedule stops a schedule, its runs with it, and removes its environment copy.
func (d *Deployer) removeSchedule(ctx context.Context, id string) error {
	children, _, err := d.Nomad.Jobs().PrefixList(id + nomadapi.JobPeriodicLaunchSuffix)
	if err != nil {
		return fmt.Errorf("failed to list the runs of %s: %w", id, err)
	}
	q := (&nomadapi.WriteOptions{}).WithContext(ctx)
	for _, c := range children {
		if _, _, err := d.Nomad.Jobs().Deregister(c.ID, true, q); err != nil {
			return fmt.Errorf("failed to stop %s: %w", c.ID, err)
		}
	}
	if _, _, err := d.Nomad.Jobs().Deregister(id, true, q); err != nil {
		return fmt.Errorf("failed to remove schedule %s: %w", id, err)
	}
	d.removeEnvCopy(ctx, "nomad/jobs/"+id)
	return nil
}

// removeSchedules removes all of the app's schedules.
func (d *Deployer) removeSchedules(ctx context.Context, app string) error {
	have, err := d.scheduleJobs(ctx, app)
	if err != nil {
		return err
	}
	for _, j := range have {
		if err := d.removeSchedule(ctx, j.ID); err != nil {
			return err
		}
	}
	return nil
}

// ScheduleDiff is what a deploy would change of one of the app's schedules. Type is
// Added, Edited or Deleted, as in Nomad's job diffs; Schedule is the schedule added,
// or the one deleted; Fields are the edited fields.
type ScheduleDiff struct {
	Type     string
	Name     string
	Schedule *appspec.Schedule     `json:",omitempty"`
	Fields   []*nomadapi.FieldDiff `json:",omitempty"`
}

// PlanSchedules says which of the app's registered schedules a deploy of want would
// add, edit or delete, by name; an unchanged schedule is not listed (the deploy gives
// it the new release all the same).
func (d *Deployer) PlanSchedules(ctx context.Context, app string, want []appspec.Schedule) ([]ScheduleDiff, error) {
	have, err := d.Schedules(ctx, app)
	if err != nil {
		return nil, err
	}
	registered := make([]appspec.Schedule, len(have))
	for i, s := range have {
		registered[i] = s.Schedule
	}
	return diffSchedules(registered, want), nil
}

// diffSchedules compares the schedules registered with those wanted.
func diffSchedules(have, want []appspec.Schedule) []ScheduleDiff {
	old := map[string]appspec.Schedule{}
	for _, s := range have {
		old[s.Name] = s
	}
	var out []ScheduleDiff
	for _, s := range want {
		o, ok := old[s.Name]
		delete(old, s.Name)
		if !ok {
			out = append(out, ScheduleDiff{Type: "Added", Name: s.Name, Schedule: &s})
			continue
		}
		var fields []*nomadapi.FieldDiff
		for _, f := range []struct{ name, old, new string }{
			{"cron", o.Cron, s.Cron},
			{"command", o.Command, s.Command},
			{"memory", fmt.Sprintf("%d MB", o.MemoryMB), fmt.Sprintf("%d MB", s.MemoryMB)},
		} {
			if f.old != f.new {
				fields = append(fields, &nomadapi.FieldDiff{Type: "Edited", Name: f.name, Old: f.old, New: f.new})
			}
		}
		if len(fields) > 0 {
			out = append(out, ScheduleDiff{Type: "Edited", Name: s.Name, Fields: fields})
		}
	}
	for _, s := range have {
		if _, ok := old[s.Name]; ok {
			out = append(out, ScheduleDiff{Type: "Deleted", Name: s.Name, Schedule: &s})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

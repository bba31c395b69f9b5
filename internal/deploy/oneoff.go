package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/dynogrid/dynogrid/internal/tenancy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// OneOffProcess is the process type of one-off dynos (`dyno run`, `dyno run:detached`
// and scheduled runs), as metering counts them.
const OneOffProcess = "run"

// oneOffTries bounds the attempts at a free one-off dyno number.
const oneOffTries = 8

// OneOffJobID is the Nomad job of one-off dyno run.<n> of app.
func OneOffJobID(app string, n int) string { return fmt.Sprintf("%s-run-%d", app, n) }

// OneOffName is the dyno name (run.1234) of a one-off dyno's job, or "" when jobID
// is not one of app's one-off dynos.
func OneOffName(app, jobID string) string {
	n, ok := strings.CutPrefix(jobID, app+"-run-")
	if !ok || n == "" {
		return ""
	}
	return OneOffProcess + "." + n
}

// OneOff is a one-off dyno that was started.
type OneOff struct {
	// JobID is its Nomad job; Name its dyno name, run.1234, as DYNO and `dyno logs` say.
	JobID, Name string
	// Alloc is its running allocation.
	Alloc *nomadapi.Allocation
}

// StartOneOff starts a one-off dyno of the app's current release: a batch job with the
// release's slug and environment whose task waits, so that the caller can exec the
// user's command in it, attached to a terminal. StopOneOff removes it.
func (d *Deployer) StartOneOff(ctx context.Context, app string, memoryMB int) (*OneOff, error) {
	o, err := d.startOneOff(ctx, app, "exec sleep 86400", memoryMB)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// StartDetached starts a one-off dyno of the app's current release that runs command
// as its main process, with no terminal: its output goes to the dyno's logs, and the
// dyno stops when the command ends. Its job stays, dead, until Nomad's job garbage
// collection, so that `dyno logs` can show its output.
func (d *Deployer) StartDetached(ctx context.Context, app, command string, memoryMB int) (*OneOff, error) {
	o, err := d.startOneOff(ctx, app, ShellCommand(command), memoryMB)
	if err != nil {
		return nil, err
	}
	// The environment was rendered when the task started; its copy is no longer needed.
	d.removeEnvCopy(ctx, "nomad/jobs/"+o.JobID)
	return o, nil
}

func (d *Deployer) startOneOff(ctx context.Context, app, script string, memoryMB int) (*OneOff, error) {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return nil, err
	}
	src := sourceTask(cur.Job)
	if src == nil {
		return nil, fmt.Errorf("%s has no release to run a command in", app)
	}
	for try := 0; try < oneOffTries; try++ {
		n, err := rand.Int(rand.Reader, big.NewInt(9000))
		if err != nil {
			return nil, err
		}
		o := &OneOff{JobID: OneOffJobID(app, 1000+int(n.Int64()))}
		o.Name = OneOffName(app, o.JobID)
		if _, _, err := d.Nomad.Jobs().Info(o.JobID, (&nomadapi.QueryOptions{}).WithContext(ctx)); err == nil {
			continue // the number is taken
		}
		envPath, err := d.copyEnv(ctx, cur.Job.Meta[MetaEnv], o.JobID)
		if err != nil {
			return nil, err
		}
		job := oneOffJob(o.JobID, app, cur.Job.Meta[MetaRelease], src, memoryMB, envPath)
		job.Constraints = cur.Job.Constraints // a built release's stack (stack.go)
		runInOneOff(job, OneOffProcess, script, o.Name, envPath)
		// Modify index 0: register only a job that does not exist yet, so that a number
		// taken by another one-off dyno, even a dead one, is never reused.
		_, _, err = d.Nomad.Jobs().RegisterOpts(job, &nomadapi.RegisterOptions{EnforceIndex: true},
			(&nomadapi.WriteOptions{}).WithContext(ctx))
		if err != nil && strings.Contains(err.Error(), "Enforcing job modify index") {
			continue // the number is taken
		}
		if err != nil {
			d.removeEnvCopy(context.Background(), envPath)
			return nil, fmt.Errorf("failed to start a one-off dyno: %w", err)
		}
		if o.Alloc, err = d.waitRunning(ctx, o.JobID); err != nil {
			_ = d.StopOneOff(context.Background(), o.JobID)
			return nil, err
		}
		return o, nil
	}
	return nil, fmt.Errorf("no free one-off dyno number for %s after %d tries; stop some with `dyno ps:stop run.N`", app, oneOffTries)
}

// oneOffID names a new one-off job that is not a numbered dyno (a release phase):
// <app>-run-<8 hex>.
func oneOffID(app string) string {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return fmt.Sprintf("%s-run-%s", app, hex.EncodeToString(suffix))
}

// sourceTask is the task whose slug and size one-off dynos copy: the web process's, or
// else any process type's; nil for a job with none.
func sourceTask(job *nomadapi.Job) *nomadapi.Task {
	var src *nomadapi.Task
	for _, tg := range job.TaskGroups {
		if len(tg.Tasks) > 0 && (src == nil || *tg.Name == "web") {
			src = tg.Tasks[0]
		}
	}
	return src
}

// oneOffJob is the batch job of one-off dyno id: the slug of task src, with the
// cores or CPU share of src and memoryMB, whose task waits.
func oneOffJob(id, app, release string, src *nomadapi.Task, memoryMB int, envPath string) *nomadapi.Job {
	job := nomadapi.NewBatchJob(id, id, "global", 50)
	job.Namespace = ptr(tenancy.Namespace(app))
	job.Datacenters = []string{"*"}
	job.Meta = map[string]string{MetaApp: app, MetaProcess: OneOffProcess, MetaRelease: release}
	tg := nomadapi.NewTaskGroup(OneOffProcess, 1)
	tg.Meta = map[string]string{MetaProcess: OneOffProcess}
	tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	tg.Networks = []*nomadapi.NetworkResource{dynoNetwork(false)}
	task := nomadapi.NewTask(OneOffProcess, DriverName)
	task.Config = map[string]interface{}{
		"command":     "/bin/sh",
		"args":        []string{"-c", "exec sleep 86400"},
		"slug":        src.Config["slug"],
		"slug_sha256": src.Config["slug_sha256"],
	}
	// A one-off dyno is of the size of the dyno it copies.
	task.Resources = &nomadapi.Resources{Cores: src.Resources.Cores, CPU: src.Resources.CPU, MemoryMB: ptr(memoryMB)}
	if task.Resources.Cores != nil && *task.Resources.Cores > 0 {
		task.Resources.CPU = nil
	}
	task.KillSignal = "SIGTERM"
	task.KillTimeout = ptr(5 * time.Second)
	task.Env = map[string]string{"HOME": "/app"}
	task.Templates = []*nomadapi.Template{envTemplate(OneOffProcess, envPath)}
	keepLogs(task, 2, 10)
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

// runInOneOff makes the one-off job's group and task named name, running the /bin/sh
// script and seeing DYNO=dyno (a name, or a consul-template expression) with the
// environment at envPath.
func runInOneOff(job *nomadapi.Job, name, script, dyno, envPath string) {
	tg := job.TaskGroups[0]
	tg.Name = ptr(name)
	task := tg.Tasks[0]
	task.Name = name
	task.Config["args"] = []string{"-c", script}
	tmpl := dynoEnvTemplate(dyno, envPath)
	// A one-off dyno runs once: a later change of its environment's copy (its removal
	// once the dyno started) must not restart it.
	tmpl.ChangeMode = ptr("noop")
	task.Templates = []*nomadapi.Template{tmpl}
}

// StopOneOff stops and removes a one-off dyno's job and its copy of the config.
func (d *Deployer) StopOneOff(ctx context.Context, id string) error {
	_, _, err := d.Nomad.Jobs().DeregisterOpts(id, &nomadapi.DeregisterOptions{Purge: true}, (&nomadapi.WriteOptions{}).WithContext(ctx))
	d.removeEnvCopy(ctx, "nomad/jobs/"+id)
	return err
}

func (d *Deployer) waitRunning(ctx context.Context, id string) (*nomadapi.Allocation, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		allocs, _, err := d.Nomad.Jobs().Allocations(id, false, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("failed to follow the one-off dyno: %w", err)
		}
		for _, stub := range allocs {
			switch stub.ClientStatus {
			case nomadapi.AllocClientStatusRunning, nomadapi.AllocClientStatusComplete:
				// A detached command may be done before it was seen running.
				if stub.ClientStatus == nomadapi.AllocClientStatusComplete && !startedOnce(stub.TaskStates) {
					return nil, fmt.Errorf("the one-off dyno stopped before it ran: %s", lastEvent(stub.TaskStates))
				}
				a, _, err := d.Nomad.Allocations().Info(stub.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
				return a, err
			case nomadapi.AllocClientStatusFailed:
				if startedOnce(stub.TaskStates) {
					a, _, err := d.Nomad.Allocations().Info(stub.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
					return a, err
				}
				return nil, fmt.Errorf("the one-off dyno stopped before it ran: %s", lastEvent(stub.TaskStates))
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the one-off dyno did not start in time: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startedOnce says whether a task of the allocation started.
func startedOnce(states map[string]*nomadapi.TaskState) bool {
	for _, st := range states {
		if !st.StartedAt.IsZero() {
			return true
		}
	}
	return false
}

func lastEvent(states map[string]*nomadapi.TaskState) string {
	for _, st := range states {
		if n := len(st.Events); n > 0 {
			return st.Events[n-1].DisplayMessage
		}
	}
	return "no event"
}

// copyEnv copies the release's environment at path to the one-off job's own variable,
// nomad/jobs/<id>: the only variable its workload identity may read, since the app's
// variables are bound to the app's job alone. It returns the copy's path ("" for none).
func (d *Deployer) copyEnv(ctx context.Context, path, id string) (string, error) {
	env, err := ReadEnv(ctx, d.Nomad, path)
	if err != nil || len(env) == 0 {
		return "", err
	}
	v := &nomadapi.Variable{Path: "nomad/jobs/" + id, Items: nomadapi.VariableItems(env)}
	if _, _, err := d.Nomad.Variables().Update(v, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return "", fmt.Errorf("failed to give the one-off dyno its config: %w", err)
	}
	return v.Path, nil
}

func (d *Deployer) removeEnvCopy(ctx context.Context, path string) {
	if path != "" {
		_, _ = d.Nomad.Variables().Delete(path, (&nomadapi.WriteOptions{}).WithContext(ctx))
	}
}

package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/dynogrid/dynogrid/internal/tenancy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// OneOffProcess is the process type of one-off dynos (`dyno run`), as metering counts them.
const OneOffProcess = "run"

// StartOneOff starts a one-off dyno of the app's current release: a batch job with the
// release's slug and environment whose task waits, so that the caller can exec the
// user's command in it, attached to a terminal. It returns the job's ID and the
// running allocation. StopOneOff removes it.
func (d *Deployer) StartOneOff(ctx context.Context, app string, memoryMB int) (string, *nomadapi.Allocation, error) {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return "", nil, err
	}
	var src *nomadapi.Task
	for _, tg := range cur.Job.TaskGroups {
		if len(tg.Tasks) > 0 && (src == nil || *tg.Name == "web") {
			src = tg.Tasks[0]
		}
	}
	if src == nil {
		return "", nil, fmt.Errorf("%s has no release to run a command in", app)
	}
	id := oneOffID(app)
	envPath, err := d.copyEnv(ctx, cur.Job.Meta[MetaEnv], id)
	if err != nil {
		return "", nil, err
	}
	job := oneOffJob(id, app, cur.Job.Meta[MetaRelease], src, memoryMB, envPath)
	job.Constraints = cur.Job.Constraints // a built release's stack (stack.go)

	if _, _, err := d.Nomad.Jobs().Register(job, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		d.removeEnvCopy(context.Background(), envPath)
		return "", nil, fmt.Errorf("failed to start a one-off dyno: %w", err)
	}
	alloc, err := d.waitRunning(ctx, id)
	if err != nil {
		_ = d.StopOneOff(context.Background(), id)
		return "", nil, err
	}
	return id, alloc, nil
}

// oneOffID names a new one-off dyno's job: <app>-run-<8 hex>.
func oneOffID(app string) string {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return fmt.Sprintf("%s-run-%s", app, hex.EncodeToString(suffix))
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
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
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
			case nomadapi.AllocClientStatusRunning:
				a, _, err := d.Nomad.Allocations().Info(stub.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
				return a, err
			case nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusComplete:
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
	if _, _, err := d.Nomad.Variables().Create(v, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return "", fmt.Errorf("failed to give the one-off dyno its config: %w", err)
	}
	return v.Path, nil
}

func (d *Deployer) removeEnvCopy(ctx context.Context, path string) {
	if path != "" {
		_, _ = d.Nomad.Variables().Delete(path, (&nomadapi.WriteOptions{}).WithContext(ctx))
	}
}

package deploy

import (
	"context"
	"fmt"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/slug"
)

// BuildProcess is the process type of build dynos, in their job's and group's meta.
const BuildProcess = "build"

// StartBuildDyno starts a build dyno of app: a one-off dyno (the same sandbox, with the
// network of any dyno) whose /app is the slug s (the buildpacks and the build
// program) and whose task waits, so that the caller execs the build in it. Its
// memory is memoryMB and it has the CPU share of a shared dyno. It has no config of
// the app: what the build gets of it, it gets through the exec's stdin. It returns the
// job's ID, which StopOneOff removes, and the running allocation.
func (d *Deployer) StartBuildDyno(ctx context.Context, app string, s *slug.Slug, memoryMB int) (string, *nomadapi.Allocation, error) {
	if err := d.ensureTenant(ctx, app); err != nil {
		return "", nil, err
	}
	id := strings.Replace(oneOffID(app), "-run-", "-build-", 1)
	job := buildDynoJob(id, app, s, memoryMB)
	if _, _, err := d.Nomad.Jobs().Register(job, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return "", nil, fmt.Errorf("failed to start a build dyno: %w", err)
	}
	alloc, err := d.waitRunning(ctx, id)
	if err != nil {
		_ = d.StopOneOff(context.Background(), id)
		return "", nil, fmt.Errorf("build dyno: %w", err)
	}
	return id, alloc, nil
}

// buildDynoJob is the job of build dyno id of app: a one-off dyno's job of the slug s
// whose process type is build.
func buildDynoJob(id, app string, s *slug.Slug, memoryMB int) *nomadapi.Job {
	src := &nomadapi.Task{
		Config:    map[string]interface{}{"slug": s.Path, "slug_sha256": s.SHA256},
		Resources: &nomadapi.Resources{CPU: ptr(SharedCPU)},
	}
	job := oneOffJob(id, app, BuildProcess, src, memoryMB, "")
	// Builds are not billed (Heroku bills no build time): the meter and the autoscaler's
	// cost cap skip process type build, which the group's meta, read over the job's,
	// must say too.
	job.Meta[MetaProcess] = BuildProcess
	job.TaskGroups[0].Meta[MetaProcess] = BuildProcess
	// The build learns its host's stack from the fingerprint (driver/stack.go).
	env := job.TaskGroups[0].Tasks[0].Env
	for name, attr := range map[string]string{"STACK": AttrStack, "STACK_VERSION": AttrStackVersion, "STACK_RUBY": AttrStackRuby, "STACK_NODE": AttrStackNode} {
		env[name] = "${attr." + attr + "}"
	}
	return job
}

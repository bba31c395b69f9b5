package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/logstream"
)

// MetaReleasePhase marks the one-off job of a release phase; its value is the release
// the phase ran for.
const MetaReleasePhase = "dyno.release_phase"

// DefaultReleasePhaseTimeout bounds a release phase, from its job's registration to its
// command's exit, when the deployer sets no other.
const DefaultReleasePhaseTimeout = 10 * time.Minute

// ErrReleasePhase means the release phase failed: its command exited non-zero, did not
// start, or ran out of time. No release was registered.
var ErrReleasePhase = errors.New("release phase failed")

// runReleasePhase runs the release command of r in a one-off dyno with r's slug and
// environment, streaming its output to the deployer's progress, and returns once the
// command has exited. Any failure is ErrReleasePhase with its reason. The job stays
// (dead) so that `dyno logs` can show its output; pruneReleasePhases removes old ones.
func (d *Deployer) runReleasePhase(ctx context.Context, r Release) error {
	app, p, release := r.Spec.Name, *r.Spec.Release, ReleaseName(r.Version)
	d.progress("==> Running the release phase of %s %s: %s", app, release, p.Command)
	d.pruneReleasePhases(ctx, app)
	id := oneOffID(app)
	envPath, err := d.copyEnv(ctx, r.EnvPath, id)
	if err != nil {
		return err
	}
	// The dyno has rendered its environment once it runs; the copy holds credentials.
	defer d.removeEnvCopy(context.Background(), envPath)
	job := releasePhaseJob(id, r, p, envPath)
	if _, _, err := d.Nomad.Jobs().Register(job, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("failed to start the release phase of %s: %w", app, err)
	}
	timeout := d.ReleasePhaseTimeout
	if timeout <= 0 {
		timeout = DefaultReleasePhaseTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reason := d.followReleasePhase(wctx, id)
	if reason == "" {
		d.progress("    release phase of %s %s succeeded", app, release)
		return nil
	}
	if wctx.Err() != nil {
		reason = fmt.Sprintf("did not finish within %s (it was stopped)", timeout)
		if ctx.Err() != nil {
			reason = "was interrupted (it was stopped)"
		}
	}
	// Stop what is left of it (a dyno still running, a placement still waiting); an
	// ended job stays readable.
	_, _, _ = d.Nomad.Jobs().Deregister(id, false, (&nomadapi.WriteOptions{}).WithContext(context.WithoutCancel(ctx)))
	return fmt.Errorf("%w: %s of %s %s %s; nothing was released, the running release is untouched (the phase's output: `dyno logs --app %s --dyno %s`)",
		ErrReleasePhase, p.Command, app, release, reason, app, ReleasePhaseDyno(release))
}

// ReleasePhaseDyno is how `dyno logs` names the dyno of a release's release phase.
func ReleasePhaseDyno(release string) string { return appspec.ReleaseProcess + "." + release }

// releasePhaseJob is the one-off job that runs r's release command once: the slug,
// memory and size of the release process type, metered as a one-off dyno.
func releasePhaseJob(id string, r Release, p appspec.Process, envPath string) *nomadapi.Job {
	release := ReleaseName(r.Version)
	src := group(r, p, 0, release).Tasks[0]
	job := oneOffJob(id, r.Spec.Name, release, src, p.MemoryMB, envPath)
	job.Meta[MetaReleasePhase] = release
	job.Meta[MetaDescription] = r.Description
	addStack(job, r.Spec.Stack)
	tg := job.TaskGroups[0]
	tg.Name = ptr(appspec.ReleaseProcess)
	task := tg.Tasks[0]
	task.Name = appspec.ReleaseProcess
	task.Config["args"] = []string{"-c", ShellCommand(p.Command)}
	task.Meta = map[string]string{MetaRelease: release}
	task.Templates = []*nomadapi.Template{envTemplate(appspec.ReleaseProcess, envPath)}
	return job
}

// followReleasePhase streams the output of release phase job id to the progress writer
// until its command exits, and says why it failed ("" when it exited 0).
func (d *Deployer) followReleasePhase(ctx context.Context, id string) string {
	alloc, err := d.waitStarted(ctx, id)
	if err != nil {
		return err.Error()
	}
	if alloc.TaskStates[appspec.ReleaseProcess] != nil && !alloc.TaskStates[appspec.ReleaseProcess].StartedAt.IsZero() {
		out := &phaseOutput{w: d.Progress}
		streamCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, stream := range []string{"stdout", "stderr"} {
			wg.Add(1)
			go func(stream string) {
				defer wg.Done()
				out.follow(streamCtx, d.Nomad, alloc, stream)
			}(stream)
		}
		alloc, err = d.waitDone(ctx, alloc)
		stop()
		wg.Wait()
		if err != nil {
			return err.Error()
		}
		// What the command wrote after the streams were stopped.
		for _, stream := range []string{"stdout", "stderr"} {
			out.drain(ctx, d.Nomad, alloc, stream)
		}
		out.flush()
	}
	return exitReason(alloc)
}

// waitStarted waits until the release phase's task has started or ended, with
// blocking queries.
func (d *Deployer) waitStarted(ctx context.Context, id string) (*nomadapi.Allocation, error) {
	var index uint64
	var waiting string
	for {
		q := (&nomadapi.QueryOptions{WaitIndex: index, WaitTime: 2 * time.Second}).WithContext(ctx)
		stubs, meta, err := d.Nomad.Jobs().Allocations(id, false, q)
		if err != nil {
			return nil, fmt.Errorf("failed to follow the release phase: %w", err)
		}
		index = meta.LastIndex
		if len(stubs) == 0 {
			// Nomad places it once there is room, within the phase's timeout.
			if why := d.unplaced(ctx, id); why != "" && why != waiting {
				d.progress("    the release phase waits for room on the grid: %s", why)
				waiting = why
			}
		}
		for _, s := range stubs {
			st := s.TaskStates[appspec.ReleaseProcess]
			if (st != nil && (!st.StartedAt.IsZero() || st.State == "dead")) || s.ClientStatus == nomadapi.AllocClientStatusFailed {
				a, _, err := d.Nomad.Allocations().Info(s.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
				if err != nil {
					return nil, fmt.Errorf("failed to follow the release phase: %w", err)
				}
				return a, nil
			}
		}
	}
}

// unplaced says why Nomad could not place the dyno of job id yet, or "" if it did not say.
func (d *Deployer) unplaced(ctx context.Context, id string) string {
	evals, _, err := d.Nomad.Jobs().Evaluations(id, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return ""
	}
	for _, e := range evals {
		for _, m := range e.FailedTGAllocs {
			var why []string
			for dim, n := range m.DimensionExhausted {
				why = append(why, fmt.Sprintf("%s exhausted on %d hosts", dim, n))
			}
			for c, n := range m.ConstraintFiltered {
				why = append(why, fmt.Sprintf("%s filtered %d hosts", c, n))
			}
			sort.Strings(why)
			return fmt.Sprintf("%d hosts evaluated; %s", m.NodesEvaluated, strings.Join(why, ", "))
		}
	}
	return ""
}

// waitDone waits until alloc is terminal, with blocking queries.
func (d *Deployer) waitDone(ctx context.Context, alloc *nomadapi.Allocation) (*nomadapi.Allocation, error) {
	for !alloc.ClientTerminalStatus() {
		q := (&nomadapi.QueryOptions{WaitIndex: alloc.ModifyIndex, WaitTime: 10 * time.Second}).WithContext(ctx)
		a, _, err := d.Nomad.Allocations().Info(alloc.ID, q)
		if err != nil {
			return nil, fmt.Errorf("failed to follow the release phase: %w", err)
		}
		alloc = a
	}
	return alloc, nil
}

// exitReason says why a terminal release phase failed, or "" when its command exited 0.
func exitReason(alloc *nomadapi.Allocation) string {
	st := alloc.TaskStates[appspec.ReleaseProcess]
	if alloc.ClientStatus == nomadapi.AllocClientStatusComplete && st != nil && !st.Failed {
		return ""
	}
	if st == nil {
		return "did not start: " + alloc.ClientDescription
	}
	for i := len(st.Events) - 1; i >= 0; i-- {
		e := st.Events[i]
		if e.Type == nomadapi.TaskTerminated {
			if code := e.Details["exit_code"]; code != "" && code != "0" {
				return "exited with status " + code
			}
			if sig := e.Details["signal"]; sig != "" && sig != "0" {
				return "was killed by signal " + sig
			}
		}
	}
	for i := len(st.Events) - 1; i >= 0; i-- {
		if e := st.Events[i]; e.FailsTask || e.Type == nomadapi.TaskDriverFailure {
			return fmt.Sprintf("did not run: %s: %s", e.Type, e.DisplayMessage)
		}
	}
	return "failed: " + lastEvent(alloc.TaskStates)
}

// phaseOutput copies a release phase's output, line by line, to the deploy's terminal.
type phaseOutput struct {
	w    interface{ Write([]byte) (int, error) }
	mu   sync.Mutex
	seen map[string]int64 // bytes of each stream written so far
	rest map[string][]byte
}

func (o *phaseOutput) follow(ctx context.Context, nomad *nomadapi.Client, alloc *nomadapi.Allocation, stream string) {
	frames, errs := nomad.AllocFS().Logs(alloc, true, appspec.ReleaseProcess, stream, "start", 0, ctx.Done(), nil)
	eachFrame(ctx, frames, errs, func(data []byte) { o.write(stream, data) })
}

// drain writes what the stream holds beyond what follow wrote.
func (o *phaseOutput) drain(ctx context.Context, nomad *nomadapi.Client, alloc *nomadapi.Allocation, stream string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	frames, errs := nomad.AllocFS().Logs(alloc, false, appspec.ReleaseProcess, stream, "start", 0, ctx.Done(), nil)
	var read int64
	eachFrame(ctx, frames, errs, func(data []byte) {
		o.mu.Lock()
		skip := o.seen[stream] - read
		o.mu.Unlock()
		read += int64(len(data))
		if skip < int64(len(data)) {
			o.write(stream, data[max(skip, 0):])
		}
	})
}

// eachFrame hands the data of each log frame to fn until the stream or ctx ends.
func eachFrame(ctx context.Context, frames <-chan *nomadapi.StreamFrame, errs <-chan error, fn func([]byte)) {
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-errs:
			if !ok {
				errs = nil
			} else if err != nil {
				return // the output stays readable with dyno logs
			}
		case f, ok := <-frames:
			if !ok {
				return
			}
			if f != nil && len(f.Data) > 0 {
				fn(f.Data)
			}
		}
	}
}

func (o *phaseOutput) write(stream string, data []byte) {
	if len(data) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen, o.rest = map[string]int64{}, map[string][]byte{}
	}
	o.seen[stream] += int64(len(data))
	buf := append(o.rest[stream], data...)
	end := strings.LastIndexByte(string(buf), '\n')
	if end < 0 {
		o.rest[stream] = buf
		return
	}
	o.emit(buf[:end+1])
	o.rest[stream] = append([]byte(nil), buf[end+1:]...)
}

func (o *phaseOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for s, b := range o.rest {
		if len(b) > 0 {
			o.emit(append(b, '\n'))
		}
		delete(o.rest, s)
	}
}

// emit writes whole lines, each indented like the deploy's progress lines, with their
// control characters made visible (logstream.Printable).
func (o *phaseOutput) emit(lines []byte) {
	if o.w == nil {
		return
	}
	for _, l := range strings.SplitAfter(string(lines), "\n") {
		if l != "" {
			_, _ = o.w.Write([]byte("    " + logstream.Printable(strings.TrimSuffix(l, "\n")) + "\n"))
		}
	}
}

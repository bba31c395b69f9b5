package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/apierr"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/slug"
)

// Deployer releases apps on a Nomad cluster.
type Deployer struct {
	Nomad *nomadapi.Client
	// SlugStore is the directory where slugs are stored, readable by every host, or
	// packed before they are uploaded to SlugRemote.
	SlugStore string
	// SlugRemote, when set, is the grid's slug store every host fetches slugs from.
	SlugRemote *slug.Remote
	// Progress receives one line per step of a long wait.
	Progress io.Writer
	// Timeout bounds the wait for a release's dynos to be healthy.
	Timeout time.Duration
	// ReleasePhaseTimeout bounds a release phase (DefaultReleasePhaseTimeout when 0).
	ReleasePhaseTimeout time.Duration
	// Consul, when set, lets Scale return as soon as the new web dynos pass their
	// health check, which is when the router routes them, rather than when Nomad's
	// deployment of the scale ends (Nomad counts a dyno healthy once its check has
	// passed for the update block's min_healthy_time).
	Consul *consulapi.Client
}

// ErrNoApp means the app is not deployed.
var ErrNoApp = errors.New("no such app")

// App is an app's current state, read from its Nomad job.
type App struct {
	Job *nomadapi.Job
	// Release is the current release's number; Next is the number the next release
	// takes: above every release ever made, failed and reverted ones included.
	Release, Next int
	// Versions are the job's versions, newest first.
	Versions []*nomadapi.Job
	Env      map[string]string
	Counts   map[string]int
}

// Current reads the app's current job, release and environment.
func (d *Deployer) Current(ctx context.Context, app string) (*App, error) {
	job, _, err := d.Nomad.Jobs().Info(app, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		if apierr.IsStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoApp, app)
		}
		return nil, fmt.Errorf("failed to read app %s: %w", app, err)
	}
	if job.Meta[MetaApp] != app {
		return nil, fmt.Errorf("%w: the Nomad job %q is not a Dynogrid app", ErrNoApp, app)
	}
	if job.Stop != nil && *job.Stop {
		return nil, fmt.Errorf("%w: %s was destroyed", ErrNoApp, app)
	}
	a := &App{Job: job, Counts: Counts(job)}
	a.Release, _ = strconv.Atoi(strings.TrimPrefix(job.Meta[MetaRelease], "v"))
	a.Next = a.Release + 1
	versions, _, _, err := d.Nomad.Jobs().Versions(app, false, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to read the releases of %s: %w", app, err)
	}
	a.Versions = versions
	for _, v := range versions {
		if n, _ := strconv.Atoi(strings.TrimPrefix(v.Meta[MetaRelease], "v")); n >= a.Next {
			a.Next = n + 1
		}
	}
	if a.Next, err = d.nextAfterFailed(ctx, app, a.Next); err != nil {
		return nil, err
	}
	if a.Env, err = ReadEnv(ctx, d.Nomad, job.Meta[MetaEnv]); err != nil {
		return nil, err
	}
	return a, nil
}

// Attaching provisions the add-ons a deploy attaches. It gets the release's environment
// without them and returns their variables and their names; Deploy calls it once the
// slug is packed, before anything of the release is written.
type Attaching func(ctx context.Context, env map[string]string) (vars map[string]string, names []string, err error)

// Deploy packs the spec's code into a slug and releases it, in one release: the
// variables of the add-ons attach provisions (nil: none) are in it from its first dyno,
// and its release phase, if the spec has one, runs before its dynos start. An existing
// app keeps its current dyno counts and config vars, with the spec's config vars on top.
// When the release phase fails nothing is registered, and the failed release keeps its
// number (FailedReleases).
func (d *Deployer) Deploy(ctx context.Context, spec *appspec.Spec, attach Attaching) (*nomadapi.Job, error) {
	if err := d.ensureTenant(ctx, spec.Name); err != nil {
		return nil, err
	}
	cur, err := d.Current(ctx, spec.Name)
	if err != nil && !errors.Is(err, ErrNoApp) {
		return nil, err
	}
	d.progress("==> Packing %s into a slug", spec.Dir)
	s, err := slug.Pack(spec.Dir, d.SlugStore)
	if err != nil {
		return nil, err
	}
	if d.SlugRemote != nil {
		if s, err = d.SlugRemote.Upload(ctx, s); err != nil {
			return nil, err
		}
	}
	d.progress("    slug %s (%d KB)", s.SHA256[:12], s.Size/1024)
	r := Release{Spec: spec, Slug: s, Description: "Deploy " + s.SHA256[:12]}
	if cur != nil {
		r.Version = cur.Next
		r.Counts = map[string]int{}
		for name, c := range cur.Counts {
			if p := spec.Process(name); p != nil {
				r.Counts[name] = c
				if in := withinRange(c, *p); in != c {
					d.progress("    %s: %d -> %d dynos, within min %d and max %d of the spec", name, c, in, p.Min, p.Max)
				}
			}
		}
	} else if r.Version, err = d.nextAfterFailed(ctx, spec.Name, 1); err != nil {
		return nil, err
	}
	env, err := specEnv(cur, spec)
	if err != nil {
		return nil, err
	}
	if attach != nil {
		vars, names, err := attach(ctx, env)
		if err != nil {
			return nil, err
		}
		for k, v := range vars {
			env[k] = v
		}
		if len(names) > 0 {
			r.Description += ", attach " + strings.Join(names, ", ")
		}
	}
	if r.EnvPath, err = WriteEnv(ctx, d.Nomad, spec.Name, env); err != nil {
		return nil, err
	}
	if spec.Release != nil {
		if err := d.runReleasePhase(ctx, r); err != nil {
			if errors.Is(err, ErrReleasePhase) {
				if rerr := d.recordFailedRelease(context.WithoutCancel(ctx), r, strings.TrimPrefix(err.Error(), ErrReleasePhase.Error()+": ")); rerr != nil {
					return nil, fmt.Errorf("%w (and %v)", err, rerr)
				}
			}
			return nil, err
		}
	}
	job := Job(r)
	if err := d.register(ctx, job, cur); err != nil {
		return job, err
	}
	return job, d.SyncSchedules(ctx, spec.Name, spec.Schedules)
}

// nextAfterFailed returns next, or the number after the app's last failed release when
// that is higher: a failed release keeps its number.
func (d *Deployer) nextAfterFailed(ctx context.Context, app string, next int) (int, error) {
	failed, err := d.failedVersions(ctx, app)
	if err != nil {
		return 0, err
	}
	if n := len(failed); n > 0 && failed[n-1] >= next {
		next = failed[n-1] + 1
	}
	return next, nil
}

// Plan is what deploying a spec would change: Nomad's plan of the app's job, and the
// changes to its schedules.
type Plan struct {
	*nomadapi.JobPlanResponse
	Schedules []ScheduleDiff `json:",omitempty"`
}

// Plan asks Nomad what deploying spec would change, without changing anything.
func (d *Deployer) Plan(ctx context.Context, spec *appspec.Spec) (*Plan, error) {
	cur, err := d.Current(ctx, spec.Name)
	if err != nil && !errors.Is(err, ErrNoApp) {
		return nil, err
	}
	tmp, err := slugDryRun(spec.Dir)
	if err != nil {
		return nil, err
	}
	r := Release{Spec: spec, Slug: tmp, Version: 1}
	if cur != nil {
		r.Version, r.Counts = cur.Next, cur.Counts
	}
	env, err := specEnv(cur, spec)
	if err != nil {
		return nil, err
	}
	r.EnvPath = EnvPath(spec.Name, env)
	resp, _, err := d.Nomad.Jobs().Plan(Job(r), true, (&nomadapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to plan %s: %w", spec.Name, err)
	}
	schedules, err := d.PlanSchedules(ctx, spec.Name, spec.Schedules)
	if err != nil {
		return nil, err
	}
	return &Plan{JobPlanResponse: resp, Schedules: schedules}, nil
}

// ConfigVars are the config vars a deploy of spec starts from, before the add-ons it
// attaches: the app's current ones (set with `dyno config:set` or by its add-ons; none
// for a new app), with the spec's on top, within the config limits. A build gets
// them as its ENV_DIR.
func (d *Deployer) ConfigVars(ctx context.Context, spec *appspec.Spec) (map[string]string, error) {
	cur, err := d.Current(ctx, spec.Name)
	if err != nil && !errors.Is(err, ErrNoApp) {
		return nil, err
	}
	return specEnv(cur, spec)
}

// specEnv is the environment a release of spec starts from: the current release's
// (cur is nil for a new app) with the spec's config vars on top, within the limits.
func specEnv(cur *App, spec *appspec.Spec) (map[string]string, error) {
	env := map[string]string{}
	if cur != nil {
		maps.Copy(env, cur.Env)
	}
	maps.Copy(env, spec.Config)
	if err := checkEnv(spec.Name, env); err != nil {
		return nil, err
	}
	return env, nil
}

// SetConfig makes a release with config vars set and unset. description says what the
// release is for; "" describes the change.
func (d *Deployer) SetConfig(ctx context.Context, app string, set map[string]string, unset []string, description string) (*App, error) {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, v := range cur.Env {
		env[k] = v
	}
	var changed []string
	for k, v := range set {
		if err := appspec.ValidateConfigKey(k); err != nil {
			return nil, err
		}
		env[k] = v
		changed = append(changed, k)
	}
	for _, k := range unset {
		if _, ok := env[k]; !ok {
			return nil, fmt.Errorf("config var %s is not set on %s", k, app)
		}
		delete(env, k)
		changed = append(changed, k)
	}
	path, err := WriteEnv(ctx, d.Nomad, app, env)
	if err != nil {
		return nil, err
	}
	if description == "" {
		verb := "Set"
		if len(set) == 0 {
			verb = "Unset"
		}
		sort.Strings(changed)
		description = fmt.Sprintf("%s %s config vars", verb, strings.Join(changed, ", "))
	}
	job := cur.Job
	setRelease(job, cur.Next, description)
	setEnvPath(job, path)
	if err := d.register(ctx, job, cur); err != nil {
		return nil, err
	}
	if err := d.RefreshSchedules(ctx, app); err != nil {
		return nil, err
	}
	return d.Current(ctx, app)
}

// Rollback makes a new release with the code and config of release version, keeping
// the current formation: each process type's dyno count, min and max.
func (d *Deployer) Rollback(ctx context.Context, app string, version int) (int, error) {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return 0, err
	}
	if version == 0 {
		version = cur.Release - 1
	}
	if version < 1 || version >= cur.Next || version == cur.Release {
		return 0, fmt.Errorf("cannot roll back %s to v%d: releases run from v1 to v%d, and v%d is current", app, version, cur.Next-1, cur.Release)
	}
	var old *nomadapi.Job
	for _, v := range cur.Versions { // newest first: take the latest version of that release
		if v.Meta[MetaRelease] == ReleaseName(version) {
			old = v
			break
		}
	}
	if old == nil {
		return 0, fmt.Errorf("release v%d of %s is no longer kept by Nomad", version, app)
	}
	// The formation stays as it is: the current counts and the min and max they keep to.
	for _, tg := range old.TaskGroups {
		if c, ok := cur.Counts[*tg.Name]; ok {
			tg.Count = ptr(c)
			if now := cur.Job.LookupTaskGroup(*tg.Name); now.Scaling != nil {
				tg.Scaling = now.Scaling
			}
		}
	}
	old.Stop = ptr(false)
	setRelease(old, cur.Next, fmt.Sprintf("Rollback to v%d", version))
	if err := d.register(ctx, old, cur); err != nil {
		return 0, err
	}
	return cur.Next, d.RefreshSchedules(ctx, app)
}

// Scale sets the dyno counts of process types, without a new release.
func (d *Deployer) Scale(ctx context.Context, app string, counts map[string]int) error {
	cur, err := d.Current(ctx, app)
	if err != nil {
		return err
	}
	for name, c := range counts {
		if _, ok := cur.Counts[name]; !ok {
			return fmt.Errorf("%s has no process type %q (it has: %s)", app, name, strings.Join(SortedKeys(cur.Counts), ", "))
		}
		if err := checkScale(app, name, c, cur.Job.LookupTaskGroup(name)); err != nil {
			return err
		}
	}
	// Check every name before changing anything: nothing is half-applied.
	for _, name := range SortedKeys(counts) {
		c := counts[name]
		msg := fmt.Sprintf("dyno ps:scale %s=%d", name, c)
		if err := d.settle(ctx, app); err != nil {
			return err
		}
		q := (&nomadapi.WriteOptions{}).WithContext(ctx)
		resp, _, err := d.Nomad.Jobs().Scale(app, name, &c, msg, false, nil, q)
		if err != nil && strings.Contains(err.Error(), "active deployment") {
			return fmt.Errorf("%s is being released; scale it once the release is done (see `dyno ps --app %s`)", app, app)
		}
		if err != nil {
			return fmt.Errorf("failed to scale %s to %d: %w", name, c, err)
		}
		d.progress("    %s: %d -> %d dynos", name, cur.Counts[name], c)
		if added := c - cur.Counts[name]; name == "web" && added > 0 && d.Consul != nil {
			routed, err := d.scaledOut(ctx, app, resp, added)
			if err != nil {
				return err
			}
			if routed {
				continue
			}
		}
		// Wait for new dynos to be healthy.
		if err := d.WaitHealthy(ctx, app, resp.JobModifyIndex); err != nil {
			if errors.Is(err, ErrNoStackHost) {
				return d.unscale(ctx, app, name, cur.Counts[name], err)
			}
			return err
		}
	}
	return nil
}

// unscale sets process type name of app back to count after its scale failed with
// cause: dynos no host can take must not wait for one.
func (d *Deployer) unscale(ctx context.Context, app, name string, count int, cause error) error {
	msg := fmt.Sprintf("dyno ps:scale %s=%d: back, as no host has the release's stack", name, count)
	if _, _, err := d.Nomad.Jobs().Scale(app, name, &count, msg, false, nil, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("%w (and %s could not be set back to %d dynos: %v)", cause, name, count, err)
	}
	d.progress("    %s: back to %d dynos", name, count)
	return cause
}

// scaledOut waits, within the deployer's timeout, until the added web dynos of a scale
// are routed; false when it cannot tell, and the scale's deployment must say.
func (d *Deployer) scaledOut(ctx context.Context, app string, resp *nomadapi.JobRegisterResponse, added int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	routed, err := d.waitRouted(ctx, app, resp.EvalID, resp.JobModifyIndex, added)
	if routed {
		d.progress("    %d new web dynos pass their health check: routed", added)
	}
	return routed, err
}

func (d *Deployer) register(ctx context.Context, job *nomadapi.Job, cur *App) error {
	opts := &nomadapi.RegisterOptions{EnforceIndex: true}
	if cur != nil {
		opts.ModifyIndex = *cur.Job.JobModifyIndex
	}
	d.progress("==> Releasing %s %s: %s", *job.ID, job.Meta[MetaRelease], job.Meta[MetaDescription])
	resp, _, err := d.Nomad.Jobs().RegisterOpts(job, opts, (&nomadapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		if strings.Contains(err.Error(), "Enforcing job modify index") {
			return fmt.Errorf("%s changed while this release was prepared; try again: %w", *job.ID, err)
		}
		return fmt.Errorf("failed to release %s: %w", *job.ID, err)
	}
	for _, w := range strings.Split(strings.TrimSpace(resp.Warnings), "\n") {
		if w != "" {
			d.progress("    warning: %s", w)
		}
	}
	return d.WaitHealthy(ctx, *job.ID, resp.JobModifyIndex)
}

func (d *Deployer) progress(format string, args ...any) {
	if d.Progress != nil {
		fmt.Fprintf(d.Progress, format+"\n", args...)
	}
}

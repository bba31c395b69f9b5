package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	mcli "github.com/mitchellh/cli"

	"github.com/dynogrid/dynogrid/internal/addons"
	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/build"
	"github.com/dynogrid/dynogrid/internal/deploy"
)

type deployCommand struct{ meta }

// maxReleaseTimeout bounds --release-timeout.
const maxReleaseTimeout = 2 * time.Hour

func (c *deployCommand) Synopsis() string { return "Deploy an app from its spec or Procfile" }
func (c *deployCommand) Help() string {
	return `Usage: dyno deploy [options] [PATH]

  Packs the app at PATH (a dyno.hcl spec, a directory holding one, or a
  directory with only a Procfile; default: the current directory) into a slug
  and releases it. It waits until every new dyno is healthy. A failed deploy
  says why and leaves the previous release serving.

  A deploy is one release. The spec's add-ons that are not attached yet are
  provisioned first, and the release's first dyno has their variables. A
  release process type (a release: line in the Procfile, or a process "release"
  block) runs once in a one-off dyno with the new code and config before any new
  dyno starts, its output shown here; if it exits non-zero or runs out of time,
  the release fails and the previous release keeps serving.

  An app whose source has a Gemfile or a package.json, or whose spec names
  buildpacks, is built first, in a build dyno on the grid, with its build's
  output shown here. A failed build says which step failed and changes nothing.

  An app that is already deployed keeps its dyno counts (change them with
  ` + "`dyno ps:scale`" + `) and its config vars, with the spec's on top.

Options:
  --release-timeout=D  How long the release phase may take, from its start to
                       its command's exit (default 10m)
  --build-timeout=D    How long a build may take (default 15m)
` + commonHelp + addonsHelp
}

func (c *deployCommand) Run(args []string) int {
	var af addonFlags
	fs := c.addonFlagSet("deploy", &af)
	releaseTimeout := fs.Duration("release-timeout", deploy.DefaultReleasePhaseTimeout, "")
	buildTimeout := fs.Duration("build-timeout", build.DefaultTimeout, "")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if *releaseTimeout <= 0 || *releaseTimeout > maxReleaseTimeout {
		c.ui.Error(fmt.Sprintf("--release-timeout %s: give more than 0 and at most %s", *releaseTimeout, maxReleaseTimeout))
		return 1
	}
	if *buildTimeout <= 0 || *buildTimeout > maxReleaseTimeout {
		c.ui.Error(fmt.Sprintf("--build-timeout %s: give more than 0 and at most %s", *buildTimeout, maxReleaseTimeout))
		return 1
	}
	spec, code := loadSpec(c.ui, fs.Args())
	if spec == nil {
		return code
	}
	c.app = spec.Name
	d, err := c.deployer(spec.Name)
	if err != nil {
		return c.fail(err)
	}
	d.ReleasePhaseTimeout = *releaseTimeout
	var attach *addons.SpecAttach
	var provision deploy.Attaching
	if len(spec.Addons) > 0 {
		mgr, err := c.addonManager(spec.Name, af)
		if err != nil {
			return c.fail(err)
		}
		attach = &addons.SpecAttach{Manager: mgr, App: spec.Name, Want: spec.Addons, Progress: c.ui.Output}
		provision = attach.Provision
	}
	ctx, cancel := interruptible()
	defer cancel()
	if build.Needed(spec) {
		built, err := build.Run(ctx, d, spec, build.Options{Timeout: *buildTimeout, Output: c.buildOutput()})
		if err != nil {
			return c.fail(err)
		}
		defer os.RemoveAll(built.Dir)
		if err := built.Release.Apply(spec, built.Dir, built.Stack); err != nil {
			return c.fail(err)
		}
	}
	job, err := d.Deploy(ctx, spec, provision)
	if err != nil {
		return c.fail(err)
	}
	if attach != nil {
		if err := attach.Attached(ctx); err != nil {
			return c.fail(err)
		}
	}
	if c.json {
		return c.printJSON(map[string]any{"app": spec.Name, "release": job.Meta["dyno.release"]})
	}
	c.ui.Output(fmt.Sprintf("==> %s %s is released and healthy", spec.Name, job.Meta["dyno.release"]))
	return 0
}

// buildOutput is where a build's output goes: the terminal, or stderr when stdout
// carries JSON.
func (c *meta) buildOutput() io.Writer {
	if c.json {
		return c.stderr
	}
	return c.stdout
}

// loadSpec reads the spec named by args (at most one path), printing diagnostics.
func loadSpec(ui mcli.Ui, args []string) (*appspec.Spec, int) {
	path := "."
	switch len(args) {
	case 0:
	case 1:
		path = args[0]
	default:
		ui.Error(fmt.Sprintf("expected at most one path, got %d arguments: %s", len(args), strings.Join(args, " ")))
		return nil, 1
	}
	spec, diags := appspec.Load(path)
	if diags.HasErrors() {
		ui.Error(strings.TrimRight(appspec.FormatDiagnostics(diags), "\n"))
		return nil, 1
	}
	return spec, 0
}

type planCommand struct{ meta }

func (c *planCommand) Synopsis() string { return "Show what a deploy would change" }
func (c *planCommand) Help() string {
	return `Usage: dyno plan [options] [PATH]

  Shows what ` + "`dyno deploy PATH`" + ` would change, without changing anything:
  which process types are added, changed or removed, and how many dynos would
  start, be replaced or stop; which schedules are added, changed (their cron,
  command or memory) or removed.

  An app that a deploy builds first (a Gemfile or a package.json, or buildpacks
  in its spec) is not built: the plan says so and which buildpacks would run, and
  is of its source as it is, with the default process types of the built-in
  buildpacks (web: npm start, say) where it has no process of that name.
` + commonHelp
}

func (c *planCommand) Run(args []string) int {
	fs := c.flagSet("plan")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	spec, code := loadSpec(c.ui, fs.Args())
	if spec == nil {
		return code
	}
	c.app = spec.Name
	if build.Needed(spec) {
		f, err := build.Foresee(spec)
		if err != nil {
			return c.fail(err)
		}
		w := c.buildOutput()
		fmt.Fprintf(w, "==> %s is built on deploy, by buildpack %s; this plan is of its source before the build\n", spec.Name, strings.Join(f.Buildpacks, ", "))
		for _, p := range f.Added {
			fmt.Fprintf(w, "    process type from the buildpacks' defaults: %s\n", p)
		}
		fmt.Fprintln(w, "    the build's own changes (the compiled slug, bin/release's config vars, the stack it needs) show once it runs")
	}
	d, err := c.deployer(spec.Name)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	plan, err := d.Plan(ctx, spec)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(plan)
	}
	c.ui.Output(renderPlan(spec.Name, plan))
	return 0
}

func renderPlan(app string, plan *deploy.Plan) string {
	var b strings.Builder
	if plan.Diff == nil && len(plan.Schedules) == 0 {
		return fmt.Sprintf("No changes to %s.", app)
	}
	if plan.Diff != nil {
		renderJobDiff(&b, app, plan.Diff)
	}
	for _, s := range plan.Schedules {
		fmt.Fprintf(&b, "  schedule %s: %s", s.Name, strings.ToLower(s.Type))
		if s.Schedule != nil {
			fmt.Fprintf(&b, " (%q runs `%s`, %d MB)", s.Schedule.Cron, s.Schedule.Command, s.Schedule.MemoryMB)
		}
		b.WriteByte('\n')
		for _, f := range s.Fields {
			fmt.Fprintf(&b, "    %s: %q -> %q\n", f.Name, f.Old, f.New)
		}
	}
	for _, w := range strings.Split(strings.TrimSpace(plan.Warnings), "\n") {
		if w != "" {
			fmt.Fprintf(&b, "warning: %s\n", w)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// renderJobDiff writes Nomad's diff of the app's job: each process type's change.
func renderJobDiff(b *strings.Builder, app string, diff *nomadapi.JobDiff) {
	fmt.Fprintf(b, "%s: %s\n", app, strings.ToLower(diff.Type))
	for _, tg := range diff.TaskGroups {
		fmt.Fprintf(b, "  process %s: %s", tg.Name, strings.ToLower(tg.Type))
		var counts []string
		for k, v := range tg.Updates {
			if v > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", v, k))
			}
		}
		sort.Strings(counts)
		if len(counts) > 0 {
			fmt.Fprintf(b, " (%s)", strings.Join(counts, ", "))
		}
		b.WriteByte('\n')
		for _, f := range tg.Fields {
			if f.Type != "None" {
				fmt.Fprintf(b, "    %s: %q -> %q\n", f.Name, f.Old, f.New)
			}
		}
		for _, t := range tg.Tasks {
			for _, o := range t.Objects {
				if o.Type != "None" {
					fmt.Fprintf(b, "    %s %s\n", strings.ToLower(o.Type), o.Name)
				}
			}
			for _, f := range t.Fields {
				if f.Type != "None" {
					fmt.Fprintf(b, "    %s: %q -> %q\n", f.Name, f.Old, f.New)
				}
			}
		}
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/cli"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/meter"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
)

// formationSpec is the example app with two web dynos (at least one), a worker that
// prints a line a second, a config var, and the schedule lines given.
func formationSpec(app, schedules string) string {
	return fmt.Sprintf(`app %q {
  procfile = "Procfile"

  process "web" {
    count        = 2
    min          = 1
    memory       = 128
    health_check = "/health"
    size         = "shared"
  }

  process "worker" {
    command = "ruby -e '$stdout.sync = true; loop { puts %%(working as #{ENV[%%(DYNO)]}); sleep 1 }'"
    count   = 1
    memory  = 64
    size    = "shared"
  }

  config {
    GREETING = "hello-from-config"
  }
%s}
`, app, schedules)
}

// TestPsStop stops one web dyno and the worker process type, whose dynos Nomad
// replaces, as Heroku's dyno manager does, all with the app's own deploy token; an
// unknown type and an unknown dyno are refused.
func TestPsStop(t *testing.T) {
	t.Parallel()
	g, consul, c, _ := formationApp(t, "stopper", "")
	nomad := appNomad(t, g, "stopper")
	web2 := dynoByName(t, c, "web.2")

	out := c.must("ps:stop", "web.2")
	if !strings.Contains(out, "web.2 stopped; Nomad starts a new web.2 in its place") {
		t.Errorf("ps:stop web.2 said:\n%s", out)
	}
	a, _, err := nomad.Allocations().Info(web2.AllocID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.ClientTerminalStatus() || a.DesiredStatus != nomadapi.AllocDesiredStatusStop {
		t.Errorf("the stopped web.2 is %s/%s, want stopped", a.DesiredStatus, a.ClientStatus)
	}
	testutil.WaitFor(t, 2*time.Minute, "a new web.2 in place of the stopped one", func() error {
		d := dynoByName(t, c, "web.2")
		if d.AllocID == web2.AllocID || d.State != "running" {
			return fmt.Errorf("web.2 is %s (%s)", d.AllocID, d.State)
		}
		return nil
	})
	passingDynos(t, consul, "stopper", 2, 2*time.Minute)

	// Stopping a process type stops all its dynos, which Nomad replaces, as Heroku's
	// dyno manager does: the count stays.
	worker := dynoByName(t, c, "worker.1")
	out = c.must("ps:stop", "worker")
	if !strings.Contains(out, "Stopped 1 worker dynos of stopper; Nomad starts new ones in their place. To stop them for good, use `dyno ps:scale worker=0 --app stopper`.") {
		t.Errorf("ps:stop worker said:\n%s", out)
	}
	if a, _, err := nomad.Allocations().Info(worker.AllocID, nil); err != nil || !a.ClientTerminalStatus() || a.DesiredStatus != nomadapi.AllocDesiredStatusStop {
		t.Errorf("worker.1 still runs after ps:stop worker: %v", err)
	}
	job, _, err := nomad.Jobs().Info("stopper", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := *job.LookupTaskGroup("worker").Count; n != 1 {
		t.Errorf("after ps:stop worker the worker group runs %d dynos, want 1", n)
	}
	testutil.WaitFor(t, 2*time.Minute, "a new worker.1 in place of the stopped one", func() error {
		d := dynoByName(t, c, "worker.1")
		if d.AllocID == worker.AllocID || d.State != "running" {
			return fmt.Errorf("worker.1 is %s (%s)", d.AllocID, d.State)
		}
		return nil
	})

	// Bad input: unknown process type, unknown dyno, no argument.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mailer"}, `stopper has no process type "mailer" (it has: web, worker)`},
		{[]string{"web.9"}, "stopper has no running dyno web.9"},
		{nil, "ps:stop takes one dyno (web.2) or process type (worker)"},
	} {
		if code, _, errOut := c.run("ps:stop", tc.args...); code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("ps:stop %v: exit %d, %q; want exit 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
	passingDynos(t, consul, "stopper", 2, time.Minute)
}

// TestRunDetached runs a command in a detached one-off dyno with the app's deploy token:
// the command prints the dyno's name, the command's output (with the app's config) is
// in `dyno logs` under that name, and the meter records the dyno as process type run.
func TestRunDetached(t *testing.T) {
	t.Parallel()
	g, consul, c, _ := formationApp(t, "detached", "")
	out := c.must("run:detached", "--", "echo detached-output as $DYNO with $GREETING")
	m := regexp.MustCompile(`up, (run\.\d{4})\n`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "Use `dyno logs --app detached --dyno "+m[1]+"` to view the output.") {
		t.Fatalf("run:detached said:\n%s\nwant the dyno's name and how to see its output", out)
	}
	name := m[1]
	want := "detached-output as " + name + " with hello-from-config"
	testutil.WaitFor(t, time.Minute, "the detached command's output in dyno logs", func() error {
		code, logs, errOut := c.run("logs", "--dyno", name)
		if code != 0 || !strings.Contains(logs, name+": "+want) {
			return fmt.Errorf("dyno logs --dyno %s: exit %d\n%s%s", name, code, logs, errOut)
		}
		return nil
	})
	// The whole app's logs show it too, among the other dynos' lines.
	if code, logs, _ := c.run("logs"); code != 0 || !strings.Contains(logs, name+": "+want) || !strings.Contains(logs, "worker.1: working as worker.1") {
		t.Errorf("dyno logs: exit %d, lines:\n%s\nwant the one-off dyno's and the worker's", code, logs)
	}
	allocs, _, err := appNomad(t, g, "detached").Jobs().Allocations("detached-run-"+strings.TrimPrefix(name, "run."), false, nil)
	if err != nil || len(allocs) != 1 {
		t.Fatalf("the one-off dyno's allocations: %v, %v", allocs, err)
	}
	wantMeteredRun(t, consul, "detached", allocs[0].ID)

	// Bad input.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "which command?"},
		{[]string{"--memory", "10", "--", "true"}, "--memory 10: give from 64 to 65536 MB"},
		{[]string{"--", strings.Repeat("x", 5000)}, "the command is 5000 bytes long; the limit is 4096"},
	} {
		if code, _, errOut := c.run("run:detached", tc.args...); code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("run:detached %v: exit %d, %q; want exit 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestSchedules deploys an app with a schedule: it becomes a Nomad periodic job that
// `dyno schedules` lists with its next run; a run forced through Nomad's periodic force
// (with the app's deploy token) runs the release's code with its config, its output is
// in `dyno logs` and the meter records it. A config change reaches the next run; a
// redeploy changes the cron and one without the block removes the schedule and its
// copy of the config, each shown first by `dyno plan`. A bad cron is refused at its
// place in the spec.
func TestSchedules(t *testing.T) {
	t.Parallel()
	const block = `
  schedule "tick" {
    cron    = "0 3 * * *"
    command = "echo scheduled as $DYNO with $GREETING"
    memory  = 128
  }
`
	g, consul, c, dir := formationApp(t, "cron", block)
	nomad := appNomad(t, g, "cron")
	job, _, err := nomad.Jobs().Info("cron-scheduler-tick", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !job.IsPeriodic() || *job.Periodic.Spec != "0 3 * * *" || *job.Type != "batch" || !*job.Periodic.ProhibitOverlap {
		t.Errorf("the schedule's job is %s, periodic %+v; want a batch job run at 0 3 * * *, never overlapping", *job.Type, job.Periodic)
	}
	// The job list, which the autoscaler's and the router's tokens read with its meta,
	// shows the schedule but not its command.
	for _, name := range []string{policies.NomadAutoscaler, policies.NomadRouter} {
		lister, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + g.Options.NomadAddr(),
			SecretID: harness.Tokens(t, g).Nomad[name], Namespace: "cron"})
		if err != nil {
			t.Fatal(err)
		}
		stubs, _, err := lister.Jobs().ListOptions(&nomadapi.JobListOptions{Fields: &nomadapi.JobListFields{Meta: true}}, nil)
		if err != nil {
			t.Fatalf("the %s token lists the app's jobs: %v", name, err)
		}
		listed := false
		for _, st := range stubs {
			listed = listed || st.ID == "cron-scheduler-tick" && st.Meta["dyno.schedule"] == "tick"
			for k, v := range st.Meta {
				if strings.Contains(v, "echo scheduled") {
					t.Errorf("the %s token reads the schedule's command in job %s's meta %s", name, st.ID, k)
				}
			}
		}
		if !listed {
			t.Errorf("the %s token's job list has no cron-scheduler-tick with its meta: %+v", name, stubs)
		}
		// The router reads job definitions (read-job), to tell an app's own dynos from
		// another job's (router/provenance.go); the autoscaler does not.
		if _, _, err := lister.Jobs().Info("cron-scheduler-tick", nil); err == nil && name == policies.NomadAutoscaler {
			t.Errorf("the %s token reads the schedule's job definition", name)
		}
	}
	next := time.Now().UTC().Truncate(24 * time.Hour).Add(3 * time.Hour)
	if !next.After(time.Now()) {
		next = next.Add(24 * time.Hour)
	}
	if out := c.must("schedules"); !strings.Contains(out, `tick: "0 3 * * *" runs `+"`echo scheduled as $DYNO with $GREETING`, 128 MB, release v1; next run "+next.Format("2006-01-02 15:04")) {
		t.Errorf("dyno schedules said:\n%s\nwant tick with its next run at %s", out, next)
	}

	runTick := func(greeting string) {
		t.Helper()
		out := c.must("schedules:run", "tick")
		m := regexp.MustCompile(`: (scheduler\.tick\.\d+)\n`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("schedules:run said:\n%s", out)
		}
		name := m[1]
		testutil.WaitFor(t, 2*time.Minute, "the scheduled run's output in dyno logs", func() error {
			code, logs, errOut := c.run("logs", "--dyno", name)
			if want := name + ": scheduled as " + name + " with " + greeting; code != 0 || !strings.Contains(logs, want) {
				return fmt.Errorf("dyno logs --dyno %s: exit %d, want %q\n%s%s", name, code, want, logs, errOut)
			}
			return nil
		})
		run := strings.TrimPrefix(name, "scheduler.tick.")
		allocs, _, err := nomad.Jobs().Allocations("cron-scheduler-tick/periodic-"+run, false, nil)
		if err != nil || len(allocs) != 1 {
			t.Fatalf("the scheduled run's allocations: %v, %v", allocs, err)
		}
		wantMeteredRun(t, consul, "cron", allocs[0].ID)
	}
	runTick("hello-from-config")
	if out := c.must("schedules"); !regexp.MustCompile(`; last run [0-9-]+ [0-9:]+, complete`).MatchString(out) {
		t.Errorf("dyno schedules after a run said:\n%s\nwant its last run, complete", out)
	}

	// A config change reaches the schedule's next run.
	c.must("config:set", "GREETING=changed")
	runTick("changed")

	// dyno plan shows what a deploy would change of the schedules: an edited cron, an
	// added schedule.
	const tock = `
  schedule "tock" {
    cron    = "@hourly"
    command = "echo tock"
  }
`
	writeSpec(t, dir, formationSpec("cron", strings.Replace(block, "0 3 * * *", "* * * * *", 1)+tock))
	if out := c.must("plan", dir); !strings.Contains(logged(t, "dyno plan", out), "  schedule tick: edited\n    cron: \"0 3 * * *\" -> \"* * * * *\"\n  schedule tock: added (\"@hourly\" runs `echo tock`, 512 MB)") {
		t.Errorf("dyno plan with an edited and an added schedule said:\n%s", out)
	}
	if out := c.must("plan", "--json", dir); !strings.Contains(out, `"Schedules": [`) || !strings.Contains(out, `"Name": "tock"`) {
		t.Errorf("dyno plan --json has no schedules:\n%s", out)
	}

	// A redeploy changes the cron, here to every minute: Nomad fires it on its own.
	writeSpec(t, dir, formationSpec("cron", strings.Replace(block, "0 3 * * *", "* * * * *", 1)))
	deployed := time.Now()
	c.must("deploy", dir)
	if out := c.must("schedules"); !strings.Contains(out, `tick: "* * * * *"`) {
		t.Errorf("dyno schedules after a redeploy said:\n%s", out)
	}
	// The deploy's release sets GREETING from the spec again, over the config change.
	fired := regexp.MustCompile(`(?m)^(scheduler\.tick\.(\d+)): scheduled as scheduler\.tick\.\d+ with hello-from-config$`)
	testutil.WaitFor(t, 3*time.Minute, "the every-minute cron to fire and its run's output in dyno logs", func() error {
		_, logs, _ := c.run("logs", "--process", "scheduler")
		for _, m := range fired.FindAllStringSubmatch(logs, -1) {
			if at, _ := strconv.ParseInt(m[2], 10, 64); at >= deployed.Unix() {
				return nil
			}
		}
		return fmt.Errorf("no run since the redeploy:\n%s", logs)
	})
	writeSpec(t, dir, formationSpec("cron", ""))
	if out := c.must("plan", dir); !strings.Contains(out, "  schedule tick: deleted (\"* * * * *\" runs `echo scheduled as $DYNO with $GREETING`, 128 MB)") {
		t.Errorf("dyno plan without the schedule block said:\n%s", out)
	}
	c.must("deploy", dir)
	if out := c.must("plan", dir); strings.Contains(out, "schedule") {
		t.Errorf("dyno plan right after the deploy still shows schedules:\n%s", out)
	}
	if out := c.must("schedules"); !strings.Contains(out, "cron has no schedules") {
		t.Errorf("dyno schedules after removing the block said:\n%s", out)
	}
	if _, _, err := nomad.Jobs().Info("cron-scheduler-tick", nil); err == nil {
		t.Error("the schedule's job is still registered after its block was removed")
	}
	if _, _, err := nomad.Variables().Read("nomad/jobs/cron-scheduler-tick", nil); err == nil {
		t.Error("the schedule's copy of the config is still there after its block was removed")
	}

	// Bad input: the spec's cron, and a schedule that does not exist.
	writeSpec(t, dir, formationSpec("cron", strings.Replace(block, "0 3 * * *", "0 3 * *", 1)))
	if code, _, errOut := c.run("deploy", dir); code != 1 || !strings.Contains(errOut, "dyno.hcl:24:15: error: Invalid cron") {
		t.Errorf("deploy with a four-field cron: exit %d, %q; want exit 1 naming dyno.hcl:24", code, errOut)
	}
	if code, _, errOut := c.run("schedules:run", "nosuch"); code != 1 || !strings.Contains(errOut, "failed to run schedule nosuch of cron") {
		t.Errorf("schedules:run nosuch: exit %d, %q", code, errOut)
	}
	if code, _, errOut := c.run("schedules:run", "tick/periodic-1"); code != 1 || !strings.Contains(errOut, `"tick/periodic-1" is not a schedule name`) {
		t.Errorf("schedules:run tick/periodic-1: exit %d, %q", code, errOut)
	}
}

// formationApp deploys formationSpec with the schedule lines given as app on a grid of
// its own, and returns a CLI that uses the app's deploy token.
func formationApp(t *testing.T, app, schedules string) (*devgrid.Grid, *consulapi.Client, *dynoCLI, string) {
	t.Helper()
	g := harness.Grid(t)
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.CopyExample(t, app)
	writeSpec(t, dir, formationSpec(app, schedules))
	mgmt := newCLI(t, g, app)
	mgmt.must("deploy", dir)
	token := strings.TrimSpace(mgmt.must("apps:token"))
	c := &dynoCLI{t: t, g: g, base: tokenArgs(mgmt.base, token)}
	passingDynos(t, consul, app, 2, 2*time.Minute)
	return g, consul, c, dir
}

// psDynos is what `dyno ps --json` lists.
func psDynos(t *testing.T, c *dynoCLI) []cli.Dyno {
	t.Helper()
	var dynos []cli.Dyno
	if err := json.Unmarshal([]byte(c.must("ps", "--json")), &dynos); err != nil {
		t.Fatal(err)
	}
	return dynos
}

func dynoByName(t *testing.T, c *dynoCLI, name string) cli.Dyno {
	t.Helper()
	for _, d := range psDynos(t, c) {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("dyno ps lists no %s", name)
	return cli.Dyno{}
}

// wantMeteredRun waits until the meter has recorded a finished run of allocation alloc
// of app as process type run.
func wantMeteredRun(t *testing.T, consul *consulapi.Client, app, alloc string) {
	t.Helper()
	store := meter.NewConsulStore(consul, "")
	testutil.WaitFor(t, time.Minute, "the meter to record the one-off dyno's run", func() error {
		runs, err := store.Runs(context.Background(), app)
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.Alloc == alloc {
				if r.Process != "run" || r.Open() {
					return fmt.Errorf("the run of %s is of process %s, open %v", alloc, r.Process, r.Open())
				}
				return nil
			}
		}
		return fmt.Errorf("%d runs of %s, none of allocation %s", len(runs), app, alloc)
	})
}

// logged logs a command's output under what, and returns it.
func logged(t *testing.T, what, out string) string {
	t.Helper()
	t.Logf("%s:\n%s", what, out)
	return out
}

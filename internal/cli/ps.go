package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/logstream"
	"github.com/dynogrid/dynogrid/internal/tenancy"
)

// Dyno is one dyno as `dyno ps` shows it.
type Dyno struct {
	Name    string    `json:"name"`
	Process string    `json:"process"`
	State   string    `json:"state"`
	Host    string    `json:"host"`
	Release string    `json:"release"`
	Since   time.Time `json:"since"`
	AllocID string    `json:"alloc_id"`
	// Job is the dyno's Nomad job: the app's, or a one-off dyno's or scheduled run's.
	Job string `json:"job"`
}

type psCommand struct{ meta }

func (c *psCommand) Synopsis() string { return "List an app's dynos" }
func (c *psCommand) Help() string {
	return `Usage: dyno ps [options]

  Lists the app's dynos: name, state, host, release and since when; with each
  process type, its latest scale and where it came from (dyno ps:scale, the Nomad
  UI, or another caller of Nomad's job scale API). Running one-off dynos (run.1234)
  and scheduled runs (scheduler.nightly.1765000000) are listed too.
` + commonHelp
}

func (c *psCommand) Run(args []string) int {
	app, code := c.appOnly("ps", args)
	if code >= 0 {
		return code
	}
	dynos, err := c.dynos(app, false)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(dynos)
	}
	if len(dynos) == 0 {
		c.ui.Output(fmt.Sprintf("%s has no dynos running. Scale up with `dyno ps:scale web=1 --app %s`.", app, app))
		return 0
	}
	nomad, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	scales, err := deploy.LastScales(context.Background(), nomad, app)
	if err != nil {
		return c.fail(err)
	}
	byProc := map[string][]Dyno{}
	for _, d := range dynos {
		byProc[d.Process] = append(byProc[d.Process], d)
	}
	for _, p := range deploy.SortedKeys(byProc) {
		head := fmt.Sprintf("=== %s (%d)", p, len(byProc[p]))
		if sc, ok := scales[p]; ok {
			head += fmt.Sprintf(", scaled from %d to %d %s at %s (%s ago)",
				sc.From, sc.To, sc.By, sc.Time.Format("2006-01-02 15:04:05"), time.Since(sc.Time).Round(time.Second))
		}
		c.ui.Output(head)
		for _, d := range byProc[p] {
			c.ui.Output(fmt.Sprintf("%s: %s since %s (%s ago) on %s, release %s",
				d.Name, d.State, d.Since.Format("2006-01-02 15:04:05"), time.Since(d.Since).Round(time.Second), d.Host, d.Release))
		}
		c.ui.Output("")
	}
	return 0
}

// dynos lists the app's current dynos (allocations that run or are about to), sorted
// by name: those of its formation, its one-off dynos (run.1234) and its scheduled runs
// (scheduler.nightly.1765000000). With ended, one-off dynos and scheduled runs that ended
// but whose logs Nomad still keeps are listed too.
func (m *meta) dynos(app string, ended bool) ([]Dyno, error) {
	nomad, err := m.nomad(app)
	if err != nil {
		return nil, err
	}
	cur, err := m.deployerFor(nomad).Current(context.Background(), app)
	if err != nil {
		return nil, err
	}
	// The app's namespace holds its own jobs only: its formation, one-off dynos and
	// schedules.
	allocs, _, err := nomad.Allocations().List(nil)
	if err != nil {
		return nil, fmt.Errorf("failed to list the dynos of %s: %w", app, err)
	}
	releases := map[uint64]string{}
	for _, v := range cur.Versions {
		if v.Version != nil {
			releases[*v.Version] = v.Meta[deploy.MetaRelease]
		}
	}
	oneOffReleases := map[string]string{}
	var dynos []Dyno
	for _, a := range allocs {
		name := logstream.DynoName(a.Name)
		oneOff := a.JobID != app
		if oneOff {
			if name = deploy.OneOffName(app, a.JobID); name == "" {
				name = deploy.ScheduledRunName(app, a.JobID)
			}
			if name == "" || a.TaskGroup == appspec.ReleaseProcess {
				continue // not a dyno of the app; a release phase is listed as release.vN by dyno logs
			}
		}
		if !liveAlloc(a) && !(ended && oneOff && a.ClientStatus != nomadapi.AllocClientStatusPending) {
			continue
		}
		d := Dyno{Name: name, Process: a.TaskGroup, State: a.ClientStatus, AllocID: a.ID, Host: a.NodeName,
			Release: releases[a.JobVersion], Job: a.JobID}
		if oneOff {
			d.Release = m.oneOffRelease(nomad, a.JobID, oneOffReleases)
		}
		if st, ok := a.TaskStates[a.TaskGroup]; ok {
			d.State = st.State
			if st.Restarts > 0 {
				d.State = fmt.Sprintf("%s (restarted %d times)", st.State, st.Restarts)
			}
			d.Since = st.StartedAt
			if st.State == "dead" {
				d.Since = st.FinishedAt
			}
		}
		if d.Since.IsZero() {
			d.Since = time.Unix(0, a.CreateTime)
		}
		if d.Release == "" {
			d.Release = fmt.Sprintf("job version %d", a.JobVersion)
		}
		dynos = append(dynos, d)
	}
	sort.Slice(dynos, func(i, j int) bool { return lessDyno(dynos[i].Name, dynos[j].Name) })
	return dynos, nil
}

// liveAlloc says whether an allocation runs or is about to.
func liveAlloc(a *nomadapi.AllocationListStub) bool {
	return a.DesiredStatus == nomadapi.AllocDesiredStatusRun && a.ClientStatus != nomadapi.AllocClientStatusComplete &&
		a.ClientStatus != nomadapi.AllocClientStatusFailed && a.ClientStatus != nomadapi.AllocClientStatusLost
}

// oneOffRelease is the release a one-off dyno's job runs, read once per job into seen.
func (m *meta) oneOffRelease(nomad *nomadapi.Client, jobID string, seen map[string]string) string {
	if r, ok := seen[jobID]; ok {
		return r
	}
	job, _, err := nomad.Jobs().Info(jobID, nil)
	if err == nil {
		seen[jobID] = job.Meta[deploy.MetaRelease]
	}
	return seen[jobID]
}

// lessDyno orders web.2 before web.10.
func lessDyno(a, b string) bool {
	pa, na, _ := strings.Cut(a, ".")
	pb, nb, _ := strings.Cut(b, ".")
	if pa != pb {
		return pa < pb
	}
	if len(na) != len(nb) {
		return len(na) < len(nb)
	}
	return na < nb
}

type scaleCommand struct{ meta }

func (c *scaleCommand) Synopsis() string { return "Set how many dynos each process type runs" }
func (c *scaleCommand) Help() string {
	return `Usage: dyno ps:scale [options] PROCESS=COUNT...

  Sets the number of dynos of process types at once, with no redeploy, for
  example ` + "`dyno ps:scale web=4 worker=1`" + `. Each count must lie within the
  process type's min and max, from the app spec. A scale-down takes dynos out of
  routing and lets them finish their requests (SIGTERM, then SIGKILL after 30s).

  It returns once the new dynos are healthy: when it can read Consul, as soon as
  the new web dynos pass their health check, which is when the router routes
  them; otherwise when Nomad counts them healthy, about 3 s later.
` + commonHelp + consulHelp
}

func (c *scaleCommand) Run(args []string) int {
	fs := c.flagSet("ps:scale")
	var cf consulFlags
	fs.StringVar(&cf.addr, "consul-addr", "", "")
	fs.StringVar(&cf.token, "consul-token", "", "")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() == 0 {
		c.ui.Error("which process types? write PROCESS=COUNT, for example `dyno ps:scale web=2`")
		return 1
	}
	counts, err := parseCounts(fs.Args())
	if err != nil {
		return c.fail(err)
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	d, err := c.deployer(app)
	if err != nil {
		return c.fail(err)
	}
	d.Consul = cf.client(d.Nomad)
	ctx, cancel := interruptible()
	defer cancel()
	c.ui.Output(fmt.Sprintf("==> Scaling %s", app))
	if err := d.Scale(ctx, app, counts); err != nil {
		return c.fail(err)
	}
	return 0
}

type restartCommand struct{ meta }

func (c *restartCommand) Synopsis() string { return "Restart all dynos, a process type's, or one" }
func (c *restartCommand) Help() string {
	return `Usage: dyno ps:restart [options] [DYNO|PROCESS]

  Restarts every dyno of the app, the dynos of one process type (web), or one
  dyno (web.1), in place.
` + commonHelp
}

func (c *restartCommand) Run(args []string) int {
	fs := c.flagSet("ps:restart")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() > 1 {
		c.ui.Error("ps:restart takes at most one dyno or process type")
		return 1
	}
	target := fs.Arg(0)
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	dynos, err := c.dynos(app, false)
	if err != nil {
		return c.fail(err)
	}
	nomad, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	n := 0
	for _, d := range dynos {
		if target != "" && d.Name != target && d.Process != target {
			continue
		}
		a := &nomadapi.Allocation{ID: d.AllocID, Namespace: tenancy.Namespace(app)}
		if err := nomad.Allocations().Restart(a, d.Process, nil); err != nil {
			return c.fail(fmt.Errorf("failed to restart %s: %w", d.Name, err))
		}
		c.ui.Output(fmt.Sprintf("Restarting %s", d.Name))
		n++
	}
	if n == 0 {
		return c.fail(fmt.Errorf("%s has no running dyno or process type %q", app, target))
	}
	return 0
}

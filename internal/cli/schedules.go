package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/dynogrid/dynogrid/internal/deploy"
)

type schedulesCommand struct{ meta }

func (c *schedulesCommand) Synopsis() string { return "List an app's scheduled one-off dynos" }
func (c *schedulesCommand) Help() string {
	return `Usage: dyno schedules [options]

  Lists the app's schedules (the schedule blocks of its spec): each one's cron
  (UTC), command, next run, and its latest run with how it went. Each run is a
  one-off dyno, scheduler.<schedule>.<unix time>, whose output is in ` + "`dyno logs`" + `.
` + commonHelp
}

func (c *schedulesCommand) Run(args []string) int {
	app, code := c.appOnly("schedules", args)
	if code >= 0 {
		return code
	}
	d, err := c.deployer(app)
	if err != nil {
		return c.fail(err)
	}
	if _, err := d.Current(context.Background(), app); err != nil {
		return c.fail(err)
	}
	list, err := d.Schedules(context.Background(), app)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		if list == nil {
			list = []deploy.ScheduleStatus{}
		}
		return c.printJSON(list)
	}
	if len(list) == 0 {
		c.ui.Output(fmt.Sprintf("%s has no schedules; add a block such as schedule \"nightly\" { cron = \"0 3 * * *\"  command = \"rake cleanup\" } to its spec and deploy.", app))
		return 0
	}
	c.ui.Output("=== " + app + " schedules (times in UTC)")
	for _, s := range list {
		line := fmt.Sprintf("%s: %q runs `%s`, %d MB, release %s; next run %s (in %s)", s.Name, s.Cron, s.Command, s.MemoryMB,
			s.Release, s.Next.Format("2006-01-02 15:04"), time.Until(s.Next).Round(time.Second))
		if !s.LastRun.IsZero() {
			line += fmt.Sprintf("; last run %s, %s", s.LastRun.UTC().Format("2006-01-02 15:04:05"), s.LastStatus)
		}
		c.ui.Output(line)
	}
	return 0
}

type schedulesRunCommand struct{ meta }

func (c *schedulesRunCommand) Synopsis() string { return "Run a schedule's command now" }
func (c *schedulesRunCommand) Help() string {
	return `Usage: dyno schedules:run [options] SCHEDULE

  Starts a run of the schedule now, besides its cron (Nomad's periodic force),
  and prints the run's dyno name. Its output is in ` + "`dyno logs`" + `.
` + commonHelp
}

func (c *schedulesRunCommand) Run(args []string) int {
	fs := c.flagSet("schedules:run")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 1 {
		c.ui.Error("schedules:run takes one schedule name (see `dyno schedules`)")
		return 1
	}
	app, d, err := c.appDeployer()
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	id, err := d.RunSchedule(ctx, app, fs.Arg(0))
	if err != nil {
		return c.fail(err)
	}
	name := deploy.ScheduledRunName(app, id)
	c.ui.Output(fmt.Sprintf("Running schedule %s of %s: %s", fs.Arg(0), app, name))
	c.ui.Output(fmt.Sprintf("Use `dyno logs --app %s --dyno %s` to view the output.", app, name))
	return 0
}

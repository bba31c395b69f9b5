package cli

import (
	"fmt"
	"strings"

	"github.com/dynogrid/dynogrid/internal/deploy"
)

type stopCommand struct{ meta }

func (c *stopCommand) Synopsis() string { return "Stop a dyno or every dyno of a process type" }
func (c *stopCommand) Help() string {
	return `Usage: dyno ps:stop [options] DYNO|PROCESS

  Stops one dyno (web.2, run.1234) or every dyno of a process type (worker), as
  Heroku's ps:stop does:

  * A dyno of the formation (web.2) stops, and Nomad starts a new one in its
    place, since the process type's count is unchanged.
  * A process type (worker): all its dynos stop at once, and Nomad starts a new
    one in place of each. To stop them for good, use ` + "`dyno ps:scale worker=0`" + `.
  * A one-off dyno (run.1234) or a scheduled run stops for good;
    ` + "`dyno ps:stop run`" + ` stops every one-off dyno.
` + commonHelp
}

func (c *stopCommand) Run(args []string) int {
	fs := c.flagSet("ps:stop")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 1 {
		c.ui.Error("ps:stop takes one dyno (web.2) or process type (worker)")
		return 1
	}
	target := fs.Arg(0)
	if len(target) > 128 {
		c.ui.Error(fmt.Sprintf("%q... is not a dyno or process type name", target[:32]))
		return 1
	}
	app, d, err := c.appDeployer()
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	dynos, err := c.dynos(app, false)
	if err != nil {
		return c.fail(err)
	}
	if strings.Contains(target, ".") { // one dyno
		for _, dy := range dynos {
			if dy.Name != target {
				continue
			}
			c.ui.Output(fmt.Sprintf("Stopping dyno %s of %s", dy.Name, app))
			if err := d.StopDyno(ctx, app, dy.Job, dy.AllocID); err != nil {
				return c.fail(err)
			}
			if dy.Job == app {
				c.ui.Output(fmt.Sprintf("%s stopped; Nomad starts a new %s in its place. To run fewer %s dynos, use `dyno ps:scale %s=N --app %s`.",
					dy.Name, dy.Name, dy.Process, dy.Process, app))
			} else {
				c.ui.Output(dy.Name + " stopped.")
			}
			return 0
		}
		return c.fail(fmt.Errorf("%s has no running dyno %s (see `dyno ps --app %s`)", app, target, app))
	}
	// A process type: one-off dynos and scheduled runs stop for good, one by one; the
	// dynos of a type of the formation stop at once, and Nomad replaces them.
	if target == deploy.OneOffProcess || target == deploy.ScheduledProcess {
		n := 0
		for _, dy := range dynos {
			if dy.Process == target {
				c.ui.Output(fmt.Sprintf("Stopping dyno %s of %s", dy.Name, app))
				if err := d.StopDyno(ctx, app, dy.Job, dy.AllocID); err != nil {
					return c.fail(err)
				}
				n++
			}
		}
		c.ui.Output(fmt.Sprintf("Stopped %d %s dynos of %s.", n, target, app))
		return 0
	}
	c.ui.Output(fmt.Sprintf("Stopping all %s dynos of %s", target, app))
	n, err := d.StopProcess(ctx, app, target)
	if err != nil {
		return c.fail(err)
	}
	c.ui.Output(fmt.Sprintf("Stopped %d %s dynos of %s; Nomad starts new ones in their place. To stop them for good, use `dyno ps:scale %s=0 --app %s`.",
		n, target, app, target, app))
	return 0
}

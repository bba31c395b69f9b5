package cli

import (
	"fmt"
)

type runDetachedCommand struct{ meta }

func (c *runDetachedCommand) Synopsis() string {
	return "Run a command in a one-off dyno, in the background"
}
func (c *runDetachedCommand) Help() string {
	return `Usage: dyno run:detached [options] [--] COMMAND [ARGS...]

  Runs COMMAND in a one-off dyno with no terminal, as Heroku's run:detached does:
  the same sandbox, code and environment as the app's dynos. It prints the dyno's
  name (run.1234) once the command runs, and returns. The command's output goes to
  the app's logs, each line prefixed by the dyno's name: see it with
  ` + "`dyno logs --dyno run.1234`" + `. The dyno stops when the command ends;
  ` + "`dyno ps:stop run.1234`" + ` stops it before. It is metered as process type run.

Options:
  --memory=MB        Memory limit of the one-off dyno (default 512)
` + commonHelp
}

func (c *runDetachedCommand) Run(args []string) int {
	memory, command, ok := c.oneOffArgs("run:detached", args)
	if !ok {
		return 1
	}
	app, d, err := c.appDeployer()
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	o, err := d.StartDetached(ctx, app, command, memory)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(map[string]string{"name": o.Name, "job": o.JobID, "alloc_id": o.Alloc.ID})
	}
	c.ui.Output(fmt.Sprintf("Running %s on %s... up, %s", shorten(command, 60), app, o.Name))
	c.ui.Output(fmt.Sprintf("Use `dyno logs --app %s --dyno %s` to view the output.", app, o.Name))
	return 0
}

// shorten cuts s to at most n bytes for a one-line message.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

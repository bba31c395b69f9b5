package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/moby/term"
)

type runCommand struct{ meta }

func (c *runCommand) Synopsis() string { return "Run a command in a one-off dyno" }
func (c *runCommand) Help() string {
	return `Usage: dyno run [options] [--] COMMAND [ARGS...]

  Runs COMMAND in a one-off dyno: the same sandbox, code and environment as the
  app's dynos, attached to this terminal. The exit code is the command's. The
  one-off dyno is removed when the command ends. Options go before COMMAND:
  everything from COMMAND on is the command's.

Options:
  --memory=MB        Memory limit of the one-off dyno (default 512)
` + commonHelp
}

func (c *runCommand) Run(args []string) int {
	memory, command, ok := c.oneOffArgs("run", args)
	if !ok {
		return 1
	}
	app, d, err := c.appDeployer()
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	c.ui.Output(fmt.Sprintf("==> Starting a one-off dyno of %s", app))
	o, err := d.StartOneOff(ctx, app, memory)
	if err != nil {
		return c.fail(err)
	}
	defer func() { _ = d.StopOneOff(context.Background(), o.JobID) }()

	tty := term.IsTerminal(os.Stdin.Fd()) && term.IsTerminal(os.Stdout.Fd())
	sizes := make(chan nomadapi.TerminalSize, 1)
	if tty {
		state, err := term.SetRawTerminal(os.Stdin.Fd())
		if err == nil {
			defer func() { _ = term.RestoreTerminal(os.Stdin.Fd(), state) }()
		}
		if ws, err := term.GetWinsize(os.Stdout.Fd()); err == nil {
			sizes <- nomadapi.TerminalSize{Height: int(ws.Height), Width: int(ws.Width)}
		}
	}
	// Exec runs the command in the dyno's sandbox, in the app's directory.
	cmd := []string{"/bin/sh", "-c", "cd /app || exit 1\n" + deploy.ShellCommand(command)}
	code, err := d.Nomad.Allocations().Exec(ctx, o.Alloc, deploy.OneOffProcess, tty, cmd, c.stdin, c.stdout, c.stderr, sizes, nil)
	if err != nil {
		return c.fail(fmt.Errorf("one-off dyno: %w", err))
	}
	return code
}

// shellJoin quotes args for /bin/sh so that the command runs as typed.
func shellJoin(args []string) string {
	if len(args) == 1 {
		return args[0] // one argument is a command line: `dyno run "rake db:migrate"`
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

// oneOffArgs parses the flags and command of `dyno run` and `dyno run:detached`; ok is
// false once a problem was reported.
func (c *meta) oneOffArgs(name string, args []string) (memory int, command string, ok bool) {
	fs := c.flagSet(name)
	fs.IntVar(&memory, "memory", 512, "")
	if err := fs.Parse(args); err != nil {
		return 0, "", false
	}
	if fs.NArg() == 0 {
		c.ui.Error(fmt.Sprintf("which command? for example `dyno %s -- ruby -v`", name))
		return 0, "", false
	}
	if memory < appspec.MinMemoryMB || memory > appspec.MaxMemoryMB {
		c.ui.Error(fmt.Sprintf("--memory %d: give from %d to %d MB", memory, appspec.MinMemoryMB, appspec.MaxMemoryMB))
		return 0, "", false
	}
	command = shellJoin(fs.Args())
	if strings.TrimSpace(command) == "" {
		c.ui.Error("the command is empty; give the command to run, for example `dyno " + name + " -- ruby -v`")
		return 0, "", false
	}
	if len(command) > appspec.MaxCommandBytes {
		c.ui.Error(fmt.Sprintf("the command is %d bytes long; the limit is %d: put a long script in the app's code and run that", len(command), appspec.MaxCommandBytes))
		return 0, "", false
	}
	return memory, command, true
}

// appDeployer returns the command's app and a deployer for it.
func (m *meta) appDeployer() (string, *deploy.Deployer, error) {
	app, err := m.appName()
	if err != nil {
		return "", nil, err
	}
	d, err := m.deployer(app)
	return app, d, err
}

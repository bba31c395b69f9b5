// Package cli holds the commands of the `dyno` CLI. Each command lives in a file of its
// own; cmd/dyno only wires them together.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	mcli "github.com/mitchellh/cli"
)

// Version is the version of the dyno CLI, set at build time.
var Version = "0.1.0-dev"

// Run runs the CLI with args (without the program name) and returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	ui := &mcli.BasicUi{Reader: os.Stdin, Writer: stdout, ErrorWriter: stderr}
	m := newMeta(ui)
	// The command's Nomad connections close with it, so that a program that runs many
	// commands (the tests) does not pile up idle ones against Nomad's per-client limit.
	defer m.clients.closeAll()
	c := &mcli.CLI{
		Name:        "dyno",
		Version:     Version,
		Args:        args,
		Commands:    commandsOf(m, ui),
		HelpFunc:    mcli.BasicHelpFunc("dyno"),
		HelpWriter:  stdout,
		ErrorWriter: stderr,
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(stderr, "dyno: %v\n", err)
		return 1
	}
	return code
}

// Commands maps each command's name to its factory.
func Commands(ui mcli.Ui) map[string]mcli.CommandFactory {
	return commandsOf(newMeta(ui), ui)
}

func newMeta(ui mcli.Ui) meta {
	m := meta{ui: ui, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, clients: &nomadClients{}}
	if b, ok := ui.(*mcli.BasicUi); ok {
		m.stdout, m.stderr = b.Writer, b.ErrorWriter
	}
	return m
}

func commandsOf(m meta, ui mcli.Ui) map[string]mcli.CommandFactory {
	return map[string]mcli.CommandFactory{
		"dev":            func() (mcli.Command, error) { return &devCommand{}, nil },
		"dev up":         func() (mcli.Command, error) { return &devUpCommand{ui: ui}, nil },
		"dev down":       func() (mcli.Command, error) { return &devDownCommand{ui: ui}, nil },
		"deploy":         func() (mcli.Command, error) { return &deployCommand{m}, nil },
		"plan":           func() (mcli.Command, error) { return &planCommand{m}, nil },
		"apps":           func() (mcli.Command, error) { return &appsCommand{m}, nil },
		"apps:destroy":   func() (mcli.Command, error) { return &destroyCommand{m}, nil },
		"apps:token":     func() (mcli.Command, error) { return &appTokenCommand{m}, nil },
		"apps:refresh":   func() (mcli.Command, error) { return &appsRefreshCommand{m}, nil },
		"autoscale":      func() (mcli.Command, error) { return &autoscaleCommand{m}, nil },
		"ps":             func() (mcli.Command, error) { return &psCommand{m}, nil },
		"ps:scale":       func() (mcli.Command, error) { return &scaleCommand{m}, nil },
		"ps:restart":     func() (mcli.Command, error) { return &restartCommand{m}, nil },
		"config":         func() (mcli.Command, error) { return &configCommand{m}, nil },
		"config:set":     func() (mcli.Command, error) { return &configSetCommand{m}, nil },
		"config:unset":   func() (mcli.Command, error) { return &configUnsetCommand{m}, nil },
		"releases":       func() (mcli.Command, error) { return &releasesCommand{m}, nil },
		"rollback":       func() (mcli.Command, error) { return &rollbackCommand{m}, nil },
		"logs":           func() (mcli.Command, error) { return &logsCommand{m}, nil },
		"drains":         func() (mcli.Command, error) { return &drainsCommand{m}, nil },
		"drains:add":     func() (mcli.Command, error) { return &drainsAddCommand{m}, nil },
		"drains:remove":  func() (mcli.Command, error) { return &drainsRemoveCommand{m}, nil },
		"run":            func() (mcli.Command, error) { return &runCommand{m}, nil },
		"run:detached":   func() (mcli.Command, error) { return &runDetachedCommand{m}, nil },
		"ps:stop":        func() (mcli.Command, error) { return &stopCommand{m}, nil },
		"schedules":      func() (mcli.Command, error) { return &schedulesCommand{m}, nil },
		"schedules:run":  func() (mcli.Command, error) { return &schedulesRunCommand{m}, nil },
		"usage":          func() (mcli.Command, error) { return &usageCommand{m}, nil },
		"certs":          func() (mcli.Command, error) { return &certsCommand{m}, nil },
		"certs:add":      func() (mcli.Command, error) { return &certsAddCommand{m}, nil },
		"certs:remove":   func() (mcli.Command, error) { return &certsRemoveCommand{m}, nil },
		"certs:redirect": func() (mcli.Command, error) { return &certsRedirectCommand{m}, nil },
		"status":         func() (mcli.Command, error) { return &statusCommand{m}, nil },
		"addons":         func() (mcli.Command, error) { return &addonsCommand{m}, nil },
		"addons:create":  func() (mcli.Command, error) { return &addonsCreateCommand{m}, nil },
		"addons:info":    func() (mcli.Command, error) { return &addonsInfoCommand{m}, nil },
		"addons:destroy": func() (mcli.Command, error) { return &addonsDestroyCommand{m}, nil },
	}
}

// newFlagSet returns a flag set whose errors and usage go to the UI, so a bad flag
// gives a clear message and exit code 1.
func newFlagSet(ui mcli.Ui, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(&uiWriter{ui: ui})
	fs.Usage = func() { ui.Error(fmt.Sprintf("See `dyno %s --help` for the flags it takes.", name)) }
	return fs
}

type uiWriter struct{ ui mcli.Ui }

func (w *uiWriter) Write(p []byte) (int, error) {
	w.ui.Error(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// noArgs reports an error when a command that takes no arguments got some.
func noArgs(ui mcli.Ui, fs *flag.FlagSet) bool {
	if fs.NArg() > 0 {
		ui.Error(fmt.Sprintf("unexpected argument %q: `dyno %s` takes flags only", fs.Arg(0), fs.Name()))
		return false
	}
	return true
}

// parseArgs parses flags that may stand before, between or after the positional
// arguments (`dyno rollback v3 --app shop`), as Heroku's CLI allows. Everything after
// "--" is positional. Afterwards fs.Args() holds the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

package cli

import (
	"fmt"
	"strings"

	"github.com/dynogrid/dynogrid/internal/appspec"
	"github.com/dynogrid/dynogrid/internal/deploy"
)

type configCommand struct{ meta }

func (c *configCommand) Synopsis() string { return "Show an app's config vars" }
func (c *configCommand) Help() string {
	return `Usage: dyno config [options]

  Shows the config vars of the app's current release, including those that
  add-ons set.
` + commonHelp
}

func (c *configCommand) Run(args []string) int {
	app, code := c.appOnly("config", args)
	if code >= 0 {
		return code
	}
	d, err := c.deployer(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	cur, err := d.Current(ctx, app)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(cur.Env)
	}
	c.ui.Output(fmt.Sprintf("=== %s config vars (release v%d)", app, cur.Release))
	width := 0
	for k := range cur.Env {
		width = max(width, len(k))
	}
	for _, k := range deploy.SortedKeys(cur.Env) {
		c.ui.Output(fmt.Sprintf("%-*s %s", width+1, k+":", cur.Env[k]))
	}
	return 0
}

type configSetCommand struct{ meta }

func (c *configSetCommand) Synopsis() string { return "Set config vars (a new release)" }
func (c *configSetCommand) Help() string {
	return `Usage: dyno config:set [options] NAME=VALUE...

  Sets config vars and makes a new release with them; the dynos restart with
  the new environment.
` + commonHelp
}

func (c *configSetCommand) Run(args []string) int {
	fs := c.flagSet("config:set")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() == 0 {
		c.ui.Error("which config vars? write NAME=VALUE, for example `dyno config:set RACK_ENV=production`")
		return 1
	}
	set, err := parseAssignments(fs.Args(), "a config var")
	if err != nil {
		return c.fail(err)
	}
	if err := checkAssignments(set); err != nil {
		return c.fail(err)
	}
	return c.change(set, nil)
}

func (c *meta) change(set map[string]string, unset []string) int {
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	d, err := c.deployer(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	cur, err := d.SetConfig(ctx, app, set, unset, "")
	if err != nil {
		return c.fail(err)
	}
	c.ui.Output(fmt.Sprintf("==> %s is at release v%d", app, cur.Release))
	return 0
}

type configUnsetCommand struct{ meta }

func (c *configUnsetCommand) Synopsis() string { return "Unset config vars (a new release)" }
func (c *configUnsetCommand) Help() string {
	return `Usage: dyno config:unset [options] NAME...

  Removes config vars and makes a new release without them.
` + commonHelp
}

func (c *configUnsetCommand) Run(args []string) int {
	fs := c.flagSet("config:unset")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() == 0 {
		c.ui.Error("which config vars? name them, for example `dyno config:unset DEBUG`")
		return 1
	}
	for _, k := range fs.Args() {
		if strings.Contains(k, "=") {
			c.ui.Error(fmt.Sprintf("%q: config:unset takes names only, without =VALUE", k))
			return 1
		}
	}
	return c.change(nil, fs.Args())
}

// checkAssignments refuses, before the grid is asked, config vars that break a limit on
// their own; the deployer checks the app's whole environment.
func checkAssignments(set map[string]string) error {
	for _, k := range deploy.SortedKeys(set) {
		if err := appspec.ValidateConfigKey(k); err != nil {
			return err
		}
	}
	return appspec.ValidateEnv(set)
}

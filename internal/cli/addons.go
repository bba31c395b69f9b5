package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"flag"

	"github.com/dynogrid/dynogrid/internal/addons"
	"github.com/dynogrid/dynogrid/plugins/addon/addonhost"
)

const addonsHelp = `
Add-on options:
  --addon-dir=DIR      Where the add-on plugins (dyno-addon-*) are (default:
                       $DYNO_ADDON_DIR, or the folder of the dyno binary)
  --addon-config=FILE  The operators' add-on settings, JSON by add-on name
                       (default: $DYNO_ADDON_CONFIG, or the local grid's)`

type addonFlags struct {
	dir    string
	config string
}

func (m *meta) addonManager(app string, f addonFlags) (*addons.Manager, error) {
	d, err := m.deployer(app)
	if err != nil {
		return nil, err
	}
	g := localGrid()
	dir := firstNonEmpty(f.dir, os.Getenv("DYNO_ADDON_DIR"), defaultBinDir())
	cfgPath := firstNonEmpty(f.config, os.Getenv("DYNO_ADDON_CONFIG"))
	stateDir := "/var/lib/dynogrid/addon-state"
	if g != nil {
		cfgPath = firstNonEmpty(cfgPath, g.Options.AddonConfig())
		stateDir = filepath.Join(g.Options.DataDir, "addon-state")
	}
	settings := map[string]map[string]string{}
	if cfgPath != "" {
		b, err := os.ReadFile(cfgPath)
		if err != nil && !(os.IsNotExist(err) && f.config == "") {
			return nil, fmt.Errorf("failed to read add-on settings: %w", err)
		}
		if err == nil {
			if err := json.Unmarshal(b, &settings); err != nil {
				return nil, fmt.Errorf("add-on settings %s are not JSON of the form {\"postgres\": {\"key\": \"value\"}}: %w", cfgPath, err)
			}
		}
	}
	host, err := addonhost.New(addonhost.Options{PluginDir: dir, StateDir: stateDir, Settings: settings})
	if err != nil {
		return nil, err
	}
	return &addons.Manager{Deployer: d, Host: host}, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (m *meta) addonFlagSet(name string, f *addonFlags) *flag.FlagSet {
	fs := m.flagSet(name)
	fs.StringVar(&f.dir, "addon-dir", "", "")
	fs.StringVar(&f.config, "addon-config", "", "")
	return fs
}

type addonsCommand struct{ meta }

func (c *addonsCommand) Synopsis() string { return "List an app's add-ons, or the add-ons there are" }
func (c *addonsCommand) Help() string {
	return `Usage: dyno addons [options]

  Lists the add-ons attached to the app. With --available, lists the add-on
  plugins installed, with their plans and the variables they set.

Options:
  --available          List the installed add-ons instead
` + commonHelp + addonsHelp
}

func (c *addonsCommand) Run(args []string) int {
	var af addonFlags
	fs := c.addonFlagSet("addons", &af)
	available := fs.Bool("available", false, "")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	app := ""
	if !*available {
		var err error
		if app, err = c.appName(); err != nil {
			return c.fail(err)
		}
	}
	mgr, err := c.addonManager(app, af)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	if *available {
		list, err := mgr.Host.DescribeAll(ctx)
		if err != nil {
			return c.fail(err)
		}
		for _, l := range list {
			if l.Err != nil {
				c.ui.Output(fmt.Sprintf("%-12s broken: %v", l.Name, l.Err))
				continue
			}
			var plans []string
			for _, p := range l.Description.Plans {
				plans = append(plans, p.Name)
			}
			c.ui.Output(fmt.Sprintf("%-12s %s (plans: %s; sets %s)", l.Name, l.Description.Summary,
				strings.Join(plans, ", "), strings.Join(l.Description.EnvVars, ", ")))
		}
		return 0
	}
	list, err := mgr.List(ctx, app)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(list)
	}
	if len(list) == 0 {
		c.ui.Output(fmt.Sprintf("%s has no add-ons. Attach one with `dyno addons:create postgres --app %s`.", app, app))
		return 0
	}
	for _, a := range list {
		c.ui.Output(fmt.Sprintf("%-16s %-10s plan %-8s %-12s sets %s", a.Name, a.Service, a.Plan, a.State, strings.Join(a.EnvNames, ", ")))
	}
	return 0
}

type addonsCreateCommand struct{ meta }

func (c *addonsCreateCommand) Synopsis() string { return "Attach an add-on to an app" }
func (c *addonsCreateCommand) Help() string {
	return `Usage: dyno addons:create [options] SERVICE[:PLAN]

  Provisions a resource of the add-on SERVICE (postgres, memcached, ...) for the
  app and makes a release whose dynos get its variables (DATABASE_URL, ...).

Options:
  --as=NAME            Name of the attachment (default: SERVICE); another name
                       prefixes the variables: --as reports sets
                       REPORTS_DATABASE_URL
  --plan=PLAN          The add-on's plan (default: its default plan)
` + commonHelp + addonsHelp
}

func (c *addonsCreateCommand) Run(args []string) int {
	var af addonFlags
	fs := c.addonFlagSet("addons:create", &af)
	as := fs.String("as", "", "")
	plan := fs.String("plan", "", "")
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 1 {
		c.ui.Error("name one add-on, for example `dyno addons:create postgres`")
		return 1
	}
	service, p, _ := strings.Cut(fs.Arg(0), ":")
	if p != "" {
		if *plan != "" && *plan != p {
			c.ui.Error(fmt.Sprintf("plan given twice: %q and --plan %q", p, *plan))
			return 1
		}
		*plan = p
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	mgr, err := c.addonManager(app, af)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	c.ui.Output(fmt.Sprintf("==> Creating %s for %s", service, app))
	a, err := mgr.Attach(ctx, app, service, *as, *plan)
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(a)
	}
	c.ui.Output(fmt.Sprintf("==> %s is attached to %s as %s and sets %s", service, app, a.Name, strings.Join(a.EnvNames, ", ")))
	return 0
}

type addonsInfoCommand struct{ meta }

func (c *addonsInfoCommand) Synopsis() string { return "Show one of an app's add-ons" }
func (c *addonsInfoCommand) Help() string {
	return `Usage: dyno addons:info [options] NAME

  Shows an attachment: its add-on, plan, state, resource and the variables it
  sets (their names; ` + "`dyno config`" + ` shows the values).
` + commonHelp + addonsHelp
}

func (c *addonsInfoCommand) Run(args []string) int {
	return c.withAttachment("addons:info", args, func(ctx context.Context, mgr *addons.Manager, app, name string) int {
		a, err := mgr.Get(ctx, app, name)
		if err != nil {
			return c.fail(err)
		}
		if c.json {
			return c.printJSON(a)
		}
		c.ui.Output(fmt.Sprintf("=== %s (%s)\nplan:     %s\nstate:    %s\nresource: %s\ncreated:  %s\nsets:     %s",
			a.Name, a.Service, a.Plan, a.State, a.ResourceID, a.Created.Format("2006-01-02 15:04:05"), strings.Join(a.EnvNames, ", ")))
		return 0
	})
}

// withAttachment parses the arguments of a command about one attachment (NAME), finds
// the app and the add-on manager, and runs fn.
func (m *meta) withAttachment(cmd string, args []string, fn func(ctx context.Context, mgr *addons.Manager, app, name string) int) int {
	var af addonFlags
	fs := m.addonFlagSet(cmd, &af)
	if err := parseArgs(fs, args); err != nil {
		return 1
	}
	if fs.NArg() != 1 {
		m.ui.Error(fmt.Sprintf("name one add-on attachment, for example `dyno %s postgres`", cmd))
		return 1
	}
	app, err := m.appName()
	if err != nil {
		return m.fail(err)
	}
	mgr, err := m.addonManager(app, af)
	if err != nil {
		return m.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	return fn(ctx, mgr, app, fs.Arg(0))
}

type addonsDestroyCommand struct{ meta }

func (c *addonsDestroyCommand) Synopsis() string { return "Detach an add-on and remove its resource" }
func (c *addonsDestroyCommand) Help() string {
	return `Usage: dyno addons:destroy [options] NAME

  Makes a release without the add-on's variables, then deprovisions its
  resource (a database is dropped).
` + commonHelp + addonsHelp
}

func (c *addonsDestroyCommand) Run(args []string) int {
	return c.withAttachment("addons:destroy", args, func(ctx context.Context, mgr *addons.Manager, app, name string) int {
		if err := mgr.Detach(ctx, app, name); err != nil {
			return c.fail(err)
		}
		c.ui.Output(fmt.Sprintf("==> Destroyed add-on %s of %s", name, app))
		return 0
	})
}

// detachAll removes every add-on of app, for apps:destroy.
func detachAll(ctx context.Context, mgr *addons.Manager, app string) error {
	list, err := mgr.List(ctx, app)
	if err != nil {
		return err
	}
	for _, a := range list {
		if err := mgr.Detach(ctx, app, a.Name); err != nil {
			return err
		}
	}
	return nil
}

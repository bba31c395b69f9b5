package cli

import (
	"fmt"
	"sort"

	"github.com/dynogrid/dynogrid/internal/deploy"
	nomadapi "github.com/hashicorp/nomad/api"
)

// AppInfo is one app as `dyno apps` lists it.
type AppInfo struct {
	Name    string `json:"name"`
	Release string `json:"release"`
	Status  string `json:"status"`
}

type appsCommand struct{ meta }

func (c *appsCommand) Synopsis() string { return "List the apps of the grid" }
func (c *appsCommand) Help() string {
	return `Usage: dyno apps [options]

  Lists the grid's apps with their current release.
` + commonHelp
}

func (c *appsCommand) Run(args []string) int {
	fs := c.flagSet("apps")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	nomad, err := c.nomad("")
	if err != nil {
		return c.fail(err)
	}
	stubs, _, err := nomad.Jobs().ListOptions(&nomadapi.JobListOptions{Fields: &nomadapi.JobListFields{Meta: true}}, nil)
	if err != nil {
		return c.fail(fmt.Errorf("failed to list apps: %w", err))
	}
	var apps []AppInfo
	for _, s := range stubs {
		if s.Meta[deploy.MetaApp] != s.ID || s.Stop {
			continue
		}
		apps = append(apps, AppInfo{Name: s.ID, Release: s.Meta[deploy.MetaRelease], Status: s.Status})
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	if c.json {
		return c.printJSON(apps)
	}
	if len(apps) == 0 {
		c.ui.Output("No apps yet. Deploy one with `dyno deploy`.")
		return 0
	}
	for _, a := range apps {
		c.ui.Output(fmt.Sprintf("%-30s %-5s %s", a.Name, a.Release, a.Status))
	}
	return 0
}

type destroyCommand struct{ meta }

func (c *destroyCommand) Synopsis() string { return "Destroy an app and its dynos" }
func (c *destroyCommand) Help() string {
	return `Usage: dyno apps:destroy --app NAME --confirm NAME

  Stops every dyno of the app and removes it from the grid, with its releases
  and config vars. Its add-ons are deprovisioned first. --confirm must repeat
  the app's name.
` + commonHelp + addonsHelp
}

func (c *destroyCommand) Run(args []string) int {
	var af addonFlags
	fs := c.addonFlagSet("apps:destroy", &af)
	confirm := fs.String("confirm", "", "")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	if c.app == "" {
		c.ui.Error("name the app to destroy with --app NAME (and repeat it with --confirm NAME)")
		return 1
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	if *confirm != app {
		c.ui.Error(fmt.Sprintf("this destroys %s and all its dynos; run again with --confirm %s", app, app))
		return 1
	}
	mgr, err := c.addonManager(app, af)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := interruptible()
	defer cancel()
	if err := detachAll(ctx, mgr, app); err != nil {
		return c.fail(fmt.Errorf("failed to remove the add-ons of %s (the app is kept): %w", app, err))
	}
	if err := mgr.Deployer.Destroy(ctx, app); err != nil {
		return c.fail(err)
	}
	c.ui.Output(fmt.Sprintf("==> Destroyed %s", app))
	return 0
}

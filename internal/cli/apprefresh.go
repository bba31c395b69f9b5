package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/dynogrid/dynogrid/internal/tenancy"
)

type appsRefreshCommand struct{ meta }

func (c *appsRefreshCommand) Synopsis() string {
	return "Bring every app's tenancy up to date after an upgrade"
}
func (c *appsRefreshCommand) Help() string {
	return `Usage: dyno apps:refresh [options]

  Brings the tenancy of every app of the grid (each Nomad namespace but
  "default" and the add-ons' own) up to what this version of dyno makes for a
  new app: the task drivers its namespace allows, the policies of its deploy
  tokens and of its dynos. It makes no token. Run it after an upgrade whose
  CHANGELOG says so. It needs an operator's (management) token.
` + commonHelp
}

func (c *appsRefreshCommand) Run(args []string) int {
	fs := c.flagSet("apps:refresh")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	nomad, err := c.nomad("")
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	apps, err := tenancy.Apps(ctx, nomad)
	if err != nil {
		return c.fail(err)
	}
	for _, app := range apps {
		if err := tenancy.EnsureApp(ctx, nomad, app); err != nil {
			return c.fail(fmt.Errorf("failed to refresh app %s (this needs an operator's token): %w", app, err))
		}
	}
	if c.json {
		return c.printJSON(map[string][]string{"refreshed": apps})
	}
	c.ui.Output(fmt.Sprintf("Refreshed %d apps.", len(apps)))
	return 0
}

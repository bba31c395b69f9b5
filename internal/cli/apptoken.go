package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/dynogrid/dynogrid/internal/tenancy"
)

type appTokenCommand struct{ meta }

func (c *appTokenCommand) Synopsis() string { return "Make a deploy token that manages one app only" }
func (c *appTokenCommand) Help() string {
	return `Usage: dyno apps:token --app NAME [options]

  Makes the app a tenant of the grid if it is not one yet (its own Nomad
  namespace and policies) and prints a new deploy token for it: a Nomad ACL
  token that deploys, scales, configures, runs and reads the logs of this app
  and of no other. It needs an operator's (management) token.

  Use the token as NOMAD_TOKEN or with --nomad-token.

Options:
  --name=TEXT          The token's name (default: "deploy <app>")
` + commonHelp
}

func (c *appTokenCommand) Run(args []string) int {
	fs := c.flagSet("apps:token")
	name := fs.String("name", "", "")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	app, err := c.appName()
	if err != nil {
		return c.fail(err)
	}
	nomad, err := c.nomad(app)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	secret, err := tenancy.AppToken(ctx, nomad, app, *name)
	if err != nil {
		return c.fail(fmt.Errorf("failed to make a deploy token for %s (this needs an operator's token): %w", app, err))
	}
	if c.json {
		return c.printJSON(map[string]string{"app": app, "namespace": tenancy.Namespace(app), "token": secret})
	}
	c.ui.Output(secret)
	return 0
}

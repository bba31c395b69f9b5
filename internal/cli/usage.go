package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dynogrid/dynogrid/internal/agentapi"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/meter"
	"github.com/dynogrid/dynogrid/policies"
)

type usageCommand struct{ meta }

func (c *usageCommand) Synopsis() string { return "Show dyno time and its cost" }
func (c *usageCommand) Help() string {
	return `Usage: dyno usage [--app NAME] [--since T] [--until T] [--json]

  Shows the dyno-seconds each process type ran and what they cost, from the ledger
  the meter (dyno-meter) keeps in Consul. At every second the first running dyno
  of an app is free and each other one costs the grid's price per dyno-hour,
  prorated to the second. Without --app, every app is shown.

Usage options:
  --since=T            Start of the window: RFC 3339 (2026-11-25T12:00:00Z), a
                       date (2026-11-25), or a duration ago (24h). Default: the
                       first record
  --until=T            End of the window (same forms). Default: now
  --consul-addr=ADDR   Consul's HTTP address (default: $CONSUL_HTTP_ADDR, or the
                       local grid of ` + "`dyno dev up`" + `, or 127.0.0.1:8500)
  --ledger-prefix=P    Where the ledger is in Consul KV (default ` + meter.DefaultPrefix + `)
` + commonHelp
}

func (c *usageCommand) Run(args []string) int {
	var since, until, consulAddr, prefix string
	fs := c.flagSet("usage")
	fs.StringVar(&since, "since", "", "")
	fs.StringVar(&until, "until", "", "")
	fs.StringVar(&consulAddr, "consul-addr", "", "")
	fs.StringVar(&prefix, "ledger-prefix", meter.DefaultPrefix, "")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	if c.app != "" {
		if _, err := c.appName(); err != nil {
			return c.fail(err)
		}
	}
	now := time.Now()
	from, err := meter.ParseTime(since, now)
	if err != nil {
		return c.fail(fmt.Errorf("--since: %w", err))
	}
	to, err := meter.ParseTime(until, now)
	if err != nil {
		return c.fail(fmt.Errorf("--until: %w", err))
	}
	cfg := consulapi.DefaultConfig() // reads CONSUL_HTTP_ADDR and the other CONSUL_* variables
	switch {
	case consulAddr != "":
		cfg.Address = consulAddr
	case os.Getenv("CONSUL_HTTP_ADDR") == "":
		if g := localGrid(); g != nil {
			cfg.Address = g.Options.ConsulAddr()
		}
	}
	cfg.Address = strings.TrimPrefix(cfg.Address, "http://")
	// The ledger is read with $CONSUL_HTTP_TOKEN, or on the local grid with its
	// read-only usage token.
	if g := localGrid(); cfg.Token == "" && g != nil && cfg.Address == g.Options.ConsulAddr() {
		cfg.Token = localToken(g, func(t *devgrid.Tokens) string { return t.Consul[policies.ConsulUsage] })
	}
	consul, err := agentapi.NewConsul(cfg)
	if err != nil {
		return c.fail(fmt.Errorf("failed to configure consul client: %w", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := meter.Usage(ctx, meter.NewConsulStore(consul, prefix), c.app, from, to)
	if err != nil {
		return c.fail(err)
	}
	var b strings.Builder
	if c.json {
		err = rep.WriteJSON(&b)
	} else {
		err = rep.WriteText(&b)
	}
	if err != nil {
		return c.fail(err)
	}
	c.ui.Output(strings.TrimRight(b.String(), "\n"))
	return 0
}

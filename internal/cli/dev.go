package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/plugins/memcached"
	mcli "github.com/mitchellh/cli"
)

type devCommand struct{}

func (c *devCommand) Help() string {
	return `Usage: dyno dev <up|down> [options]

  Runs a local grid on this machine: a Consul agent and a Nomad agent (server
  and client) that loads Dynogrid's plugins.

Subcommands:
  up      Start the grid and wait until it is healthy
  down    Stop the grid and remove everything it left`
}
func (c *devCommand) Synopsis() string      { return "Run a local grid (Consul + Nomad) on this machine" }
func (c *devCommand) Run(args []string) int { return mcli.RunResultHelp }

type devFlags struct {
	opts devgrid.Options
}

func (f *devFlags) register(fsys *flag.FlagSet) {
	d := devgrid.Defaults()
	fsys.StringVar(&f.opts.DataDir, "data-dir", d.DataDir, "folder for the agents' data, logs and state (removed by down)")
	fsys.StringVar(&f.opts.BinDir, "bin-dir", defaultBinDir(), "folder that holds nomad, consul and the plugins")
	fsys.IntVar(&f.opts.ConsulPort, "consul-port", d.ConsulPort, "Consul HTTP port (the next three ports are Consul's too)")
	fsys.IntVar(&f.opts.NomadPort, "nomad-port", d.NomadPort, "Nomad HTTP port (the next two ports are Nomad's too)")
	fsys.IntVar(&f.opts.RouterPort, "router-port", d.RouterPort, "router HTTP port, metrics on the next, router logs on the one after, HTTPS on the one after that (0: no router)")
	fsys.IntVar(&f.opts.ACMEPort, "acme-port", d.ACMEPort, "port of the grid's ACME server (Pebble), whose certificates the router orders for the apps; the next three ports are its too (0: none)")
	fsys.IntVar(&f.opts.PostgresPort, "postgres-port", d.PostgresPort, "PostgreSQL port for the postgres add-on (0: none)")
	fsys.IntVar(&f.opts.AutoscalerMetricsPort, "autoscaler-metrics-port", d.AutoscalerMetricsPort, "autoscaler metrics port (0: none); the autoscaler runs with the router")
	fsys.StringVar(&f.opts.RouterDomain, "domain", d.RouterDomain, "router domain: Host <app>.<domain> reaches an app")
}

// defaultBinDir is the folder of the running dyno binary, where `make build` puts the
// agents and plugins beside it.
func defaultBinDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "build/bin"
	}
	return filepath.Dir(exe)
}

type devUpCommand struct {
	ui mcli.Ui
}

func (c *devUpCommand) Synopsis() string { return "Start a local grid and wait until it is healthy" }
func (c *devUpCommand) Help() string {
	return `Usage: dyno dev up [options]

  Starts a Consul agent and a Nomad agent (server and client) on loopback,
  waits until both are healthy and the dyno driver is loaded, and prints where
  their web UIs are. Without --detach it stays in the foreground: Ctrl-C stops
  the grid; ` + "`dyno dev down`" + ` run elsewhere stops it too, and then dev up says so
  and exits 0; if an agent exits on its own, dev up says which and exits 1,
  leaving the rest (and the logs) for ` + "`dyno dev down`" + `. With --detach it
  returns once the grid is up, and ` + "`dyno dev down`" + ` stops it.

Options:
  --data-dir=DIR     Folder for the agents' data, logs and state
  --bin-dir=DIR      Folder that holds nomad, consul and the plugins
  --consul-port=N    Consul HTTP port; N+1..N+3 are its serf and server ports
  --nomad-port=N     Nomad HTTP port; N+1 and N+2 are its RPC and serf ports
  --router-port=N    Router HTTP port, N+1 for its metrics, N+2 for its logs
                     endpoint (0: no router, nor autoscaler)
  --autoscaler-metrics-port=N
                     Autoscaler metrics port (default 8084; 0: none)
  --postgres-port=N  PostgreSQL for the postgres add-on (0: none)
  --domain=D         Router domain: Host <app>.D reaches an app (default localhost)
  --timeout=D        How long to wait for the grid to be healthy (default 2m)
  --detach           Return once the grid is up, leaving it running`
}

func (c *devUpCommand) Run(args []string) int {
	var f devFlags
	fs := newFlagSet(c.ui, "dev up")
	f.register(fs)
	detach := fs.Bool("detach", false, "")
	timeout := fs.Duration("timeout", 2*time.Minute, "")
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	if os.Geteuid() != 0 {
		c.ui.Error("dyno dev up must run as root: the Nomad client isolates dynos with namespaces, mounts and cgroups")
		return 1
	}
	abs, err := filepath.Abs(f.opts.DataDir)
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	f.opts.DataDir = abs
	// The memcached add-on runs memcached under Nomad's exec driver; a small chroot
	// makes that start in seconds instead of copying the host's /usr.
	f.opts.ExtraNomadConfig = memcached.NomadClientConfig("")

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	c.ui.Output(fmt.Sprintf("==> Starting Consul and Nomad (data in %s)", f.opts.DataDir))
	g, err := devgrid.Up(ctx, f.opts)
	if err != nil {
		c.ui.Error(fmt.Sprintf("dyno dev up: %v", err))
		if errors.Is(err, devgrid.ErrRunning) {
			return 2
		}
		return 1
	}
	cancel()
	c.ui.Output(gridSummary(g))
	if *detach {
		c.ui.Output(fmt.Sprintf("    stop it:   dyno dev down --data-dir %s", g.Options.DataDir))
		return 0
	}
	c.ui.Output(fmt.Sprintf("    Ctrl-C stops it, and so does `dyno dev down --data-dir %s` from elsewhere.", g.Options.DataDir))
	return c.watch(g, sigs)
}

// gridCheckInterval is how often a foreground `dyno dev up` checks that its grid runs.
const gridCheckInterval = time.Second

// watch holds the grid in the foreground until a signal stops it (exit status of the
// stop), until `dyno dev down` stops it from elsewhere (0), or until an agent exits on
// its own (1: what is left runs on, for its logs, until `dyno dev down`).
func (c *devUpCommand) watch(g *devgrid.Grid, sigs <-chan os.Signal) int {
	tick := time.NewTicker(gridCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-sigs:
			return downGrid(c.ui, g)
		case <-tick.C:
		}
		why, stopped := g.Gone()
		switch {
		case why == "":
			continue
		case stopped:
			c.ui.Output(fmt.Sprintf("==> The grid was stopped from elsewhere: %s; dyno dev up exits", why))
			return 0
		}
		c.ui.Error(fmt.Sprintf("dyno dev up: the grid is gone: %s; stop what is left with `dyno dev down --data-dir %s`", why, g.Options.DataDir))
		return 1
	}
}

func gridSummary(g *devgrid.Grid) string {
	o := g.Options
	var b strings.Builder
	fmt.Fprintf(&b, "==> The grid is up\n")
	fmt.Fprintf(&b, "    Nomad UI:  http://%s/ui/\n", o.NomadAddr())
	fmt.Fprintf(&b, "    Consul UI: http://%s/ui/\n", o.ConsulAddr())
	if o.RouterPort != 0 {
		fmt.Fprintf(&b, "    Router:    http://%s/ (Host: <app>.%s), metrics http://%s:%d/metrics, logs http://%s\n", o.RouterAddr(), o.RouterDomain, o.Bind, o.RouterPort+1, o.RouterLogsAddr())
		fmt.Fprintf(&b, "    HTTPS:     https://%s/ (certificates of the grid's CA: curl --cacert %s)\n", o.RouterTLSAddr(), o.RouterCAFile())
		if o.ACMEPort != 0 {
			fmt.Fprintf(&b, "    ACME:      %s orders each app's certificate (its root: curl --cacert <(curl -s --cacert %s %s))\n",
				o.ACMEDirectory(), o.RouterCAFile(), o.ACMERootsURL())
		}
		if o.AutoscalerMetricsPort != 0 {
			fmt.Fprintf(&b, "    Autoscaler: metrics http://%s:%d/metrics\n", o.Bind, o.AutoscalerMetricsPort)
		}
	}
	fmt.Fprintf(&b, "    export NOMAD_ADDR=http://%s CONSUL_HTTP_ADDR=%s DYNO_SLUG_STORE=%s DYNO_ADDON_CONFIG=%s\n",
		o.NomadAddr(), o.ConsulAddr(), o.SlugStore(), o.AddonConfig())
	fmt.Fprintf(&b, "    ACLs are on: the management tokens (root only) are in %s,\n", filepath.Join(o.DataDir, devgrid.TokensFile))
	fmt.Fprintf(&b, "    fields nomad_management and consul_management; sign in to the UIs with them. dyno finds them itself.\n")
	fmt.Fprintf(&b, "    logs:      %s", strings.Join(agentLogs(g), " "))
	return b.String()
}

func agentLogs(g *devgrid.Grid) []string {
	var logs []string
	for _, a := range g.Agents {
		logs = append(logs, a.Log)
	}
	return logs
}

func downGrid(ui mcli.Ui, g *devgrid.Grid) int {
	ui.Output("==> Stopping the grid (Nomad stops its dynos first)")
	ctx, cancel := context.WithTimeout(context.Background(), devgrid.StopTimeout+30*time.Second)
	defer cancel()
	if err := g.Down(ctx); err != nil {
		ui.Error(fmt.Sprintf("dyno dev down: %v", err))
		return 1
	}
	ui.Output("==> The grid is stopped and its data directory removed")
	return 0
}

type devDownCommand struct {
	ui mcli.Ui
}

func (c *devDownCommand) Synopsis() string { return "Stop the local grid and remove what it left" }
func (c *devDownCommand) Help() string {
	return `Usage: dyno dev down [options]

  Stops the grid that ` + "`dyno dev up`" + ` started in the data directory: Nomad
  first, so that it stops its dynos, then Consul. Then it unmounts what is left
  mounted there and removes the directory.

Options:
  --data-dir=DIR     Folder of the grid to stop`
}

func (c *devDownCommand) Run(args []string) int {
	var f devFlags
	fs := newFlagSet(c.ui, "dev down")
	f.register(fs)
	if err := parseArgs(fs, args); err != nil || !noArgs(c.ui, fs) {
		return 1
	}
	g, err := devgrid.Load(f.opts.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		c.ui.Output(fmt.Sprintf("No grid runs in %s: nothing to stop.", f.opts.DataDir))
		return 0
	}
	if err != nil {
		c.ui.Error(fmt.Sprintf("dyno dev down: %v", err))
		return 1
	}
	return downGrid(c.ui, g)
}

// Command dyno-autoscaler sets the web dyno count of every app whose spec has an
// autoscale block, from the p95 queue wait the routers measure, within the policy's min
// and max and its cost cap. It finds the policies through Nomad's scaling API and scales
// through Nomad's job scale API. Run one per grid. See docs/apps.md (Autoscaling).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dynogrid/dynogrid/internal/agentapi"
	"github.com/dynogrid/dynogrid/internal/autoscale"
	"github.com/dynogrid/dynogrid/internal/meter"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	t := autoscale.DefaultTuning
	fs := flag.NewFlagSet("dyno-autoscaler", flag.ContinueOnError)
	nomadAddr := fs.String("nomad-addr", "", "Nomad's HTTP address (default $NOMAD_ADDR or http://127.0.0.1:4646)")
	consulAddr := fs.String("consul-addr", "", "Consul's HTTP address, to find the routers of a cluster (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)")
	routers := fs.String("routers", "", "the routers' metrics addresses, host:port[,host:port...]; empty: find them in Consul (service dyno-router)")
	metricsListen := fs.String("metrics-listen", "", "address for the autoscaler's own /metrics (empty: off)")
	price := fs.String("price", meter.DefaultPrice.Decimal(), "price of a dyno-hour in dollars, the first dyno of an app being free (as the meter's)")
	interval := fs.Duration("interval", 5*time.Second, "how often to read the routers and decide")
	window := fs.Duration("window", 15*time.Second, "how far back the p95 queue wait is measured")
	fs.DurationVar(&t.UpCooldown, "up-cooldown", t.UpCooldown, "least time between two scale-ups")
	fs.DurationVar(&t.DownAfter, "down-after", t.DownAfter, "how long the wait stays under half the target before each scale-down")
	fs.DurationVar(&t.DownCooldown, "down-cooldown", t.DownCooldown, "least time from any scale to a scale-down")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "dyno-autoscaler: unexpected argument %q: it takes flags only\n", fs.Arg(0))
		return 2
	}
	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(os.Stderr, "dyno-autoscaler: -log-level %q: want trace, debug, info, warn or error\n", *logLevel)
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "dyno-autoscaler", Level: level})
	p, err := meter.ParsePrice(*price)
	if err != nil {
		logger.Error("bad -price", "error", err)
		return 2
	}
	t.PriceMicroUSD = int64(p)
	for name, d := range map[string]time.Duration{"interval": *interval, "window": *window} {
		if d < 100*time.Millisecond || d > time.Hour {
			logger.Error("bad -"+name+": from 100ms to 1h", "value", d)
			return 2
		}
	}
	for name, d := range map[string]time.Duration{"up-cooldown": t.UpCooldown, "down-after": t.DownAfter, "down-cooldown": t.DownCooldown} {
		if d < 0 || d > 24*time.Hour {
			logger.Error("bad -"+name+": from 0 to 24h", "value", d)
			return 2
		}
	}
	for _, r := range splitList(*routers) {
		if _, port, err := net.SplitHostPort(r); err != nil || !validPort(port) {
			logger.Error("bad -routers: want host:port[,host:port...]", "value", r)
			return 2
		}
	}

	nomad, err := agentapi.Nomad(*nomadAddr)
	if err != nil {
		logger.Error("failed to configure nomad client", "error", err)
		return 1
	}
	find := autoscale.StaticRouters(splitList(*routers))
	if *routers == "" {
		consul, err := agentapi.Consul(*consulAddr)
		if err != nil {
			logger.Error("failed to configure consul client", "error", err)
			return 1
		}
		find = autoscale.ConsulRouters(consul)
	}
	a := autoscale.New(autoscale.Config{Nomad: nomad, Routers: find, Tuning: t,
		Interval: *interval, Window: *window, Log: logger})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *metricsListen != "" {
		ln, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			logger.Error("failed to listen for metrics", "addr", *metricsListen, "error", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(a.Metrics.Registry, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server stopped", "error", err)
			}
		}()
		defer srv.Close()
	}
	logger.Info("autoscaling", "nomad", nomad.Address(), "routers", *routers, "price", p,
		"interval", *interval, "window", *window, "up_cooldown", t.UpCooldown,
		"down_after", t.DownAfter, "down_cooldown", t.DownCooldown)
	a.Run(ctx)
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// validPort says whether p is a TCP port number, 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && p == strconv.Itoa(n)
}

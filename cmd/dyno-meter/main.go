// Command dyno-meter records every dyno's running time into the grid's ledger in Consul
// KV. Run one or more per grid (as a Nomad service job); one holds the lock and writes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/internal/agentapi"
	"github.com/dynogrid/dynogrid/internal/meter"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("dyno-meter", flag.ContinueOnError)
	nomadAddr := fs.String("nomad-addr", "", "Nomad's HTTP address (default $NOMAD_ADDR or http://127.0.0.1:4646)")
	consulAddr := fs.String("consul-addr", "", "Consul's HTTP address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)")
	prefix := fs.String("ledger-prefix", meter.DefaultPrefix, "Consul KV prefix of the ledger")
	price := fs.String("price", meter.DefaultPrice.Decimal(), "price of a dyno-hour in dollars, the first dyno of an app being free")
	checkpoint := fs.Duration("checkpoint-interval", 10*time.Second, "how often to publish the ledger's checkpoint")
	lockTTL := fs.Duration("lock-ttl", 15*time.Second, "TTL of the Consul session that holds the ledger lock")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "dyno-meter: unexpected argument %q: it takes flags only\n", fs.Arg(0))
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "dyno-meter", Level: hclog.LevelFromString(*logLevel)})
	p, err := meter.ParsePrice(*price)
	if err != nil {
		logger.Error("bad -price", "error", err)
		return 2
	}

	nomad, err := agentapi.Nomad(*nomadAddr)
	if err != nil {
		logger.Error("failed to configure nomad client", "error", err)
		return 1
	}
	consul, err := agentapi.Consul(*consulAddr)
	if err != nil {
		logger.Error("failed to configure consul client", "error", err)
		return 1
	}

	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d", host, os.Getpid())
	if id := os.Getenv("NOMAD_ALLOC_ID"); id != "" {
		holder += " alloc " + id
	}
	store := meter.NewConsulStore(consul, *prefix)
	m, err := meter.New(meter.Config{
		Nomad:              meter.NomadAPI{Client: nomad},
		Store:              store,
		Locker:             &meter.ConsulLock{Client: consul, Store: store, Holder: holder, TTL: *lockTTL},
		Price:              p,
		Holder:             holder,
		CheckpointInterval: *checkpoint,
		Logger:             logger,
	})
	if err != nil {
		logger.Error("bad configuration", "error", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("metering", "nomad", nomad.Address(), "ledger", *prefix, "price", p)
	if err := m.Run(ctx); err != nil {
		logger.Error("meter stopped", "error", err)
		return 1
	}
	return 0
}

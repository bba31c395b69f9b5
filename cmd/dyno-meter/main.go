// Command dyno-meter records every dyno's running time into the grid's ledger in Consul
// KV. Run one or more per grid (as a Nomad service job); one holds the lock and writes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
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
	if err := checkFlags(*logLevel, *prefix, *checkpoint, *lockTTL); err != nil {
		fmt.Fprintf(os.Stderr, "dyno-meter: %v\n", err)
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

// ledgerPrefixRe is a Consul KV prefix: path segments of letters, digits, '-', '_' and
// '.', none empty or starting with '.' (no "." or "..").
var ledgerPrefixRe = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$`)

// checkFlags refuses flags the meter cannot run with, naming the flag.
func checkFlags(logLevel, prefix string, checkpoint, lockTTL time.Duration) error {
	var errs []error
	if hclog.LevelFromString(logLevel) == hclog.NoLevel {
		errs = append(errs, fmt.Errorf("-log-level %q: want trace, debug, info, warn or error", logLevel))
	}
	if len(prefix) > 200 || !ledgerPrefixRe.MatchString(prefix) {
		errs = append(errs, fmt.Errorf("-ledger-prefix %q: want a Consul KV path such as %s (letters, digits, '-', '_', '.' and '/', at most 200 characters)", prefix, meter.DefaultPrefix))
	}
	if checkpoint < time.Second || checkpoint > time.Hour {
		errs = append(errs, fmt.Errorf("-checkpoint-interval %s: must be 1s to 1h", checkpoint))
	}
	// Consul's own bounds of a session TTL.
	if lockTTL < 10*time.Second || lockTTL > 24*time.Hour {
		errs = append(errs, fmt.Errorf("-lock-ttl %s: must be 10s to 24h (Consul's bounds of a session TTL)", lockTTL))
	}
	return errors.Join(errs...)
}

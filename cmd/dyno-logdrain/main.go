// Command dyno-logdrain ships the log lines of the apps that have log drains: their
// dynos' output and their router lines, to each drain (see internal/drain).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dynogrid/dynogrid/internal/agentapi"
	"github.com/dynogrid/dynogrid/internal/drain"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("dyno-logdrain", flag.ContinueOnError)
	nomadAddr := fs.String("nomad-addr", "", "Nomad's HTTP address (default $NOMAD_ADDR or http://127.0.0.1:4646); the token is $NOMAD_TOKEN")
	routers := fs.String("routers", "", "the routers' logs endpoints, comma-separated http(s)://host:port")
	metrics := fs.String("metrics-listen", "", "address of the /metrics endpoint (none when empty)")
	buffer := fs.Int("buffer-bytes", 4<<20, "lines each drain holds while it is down, in bytes; the oldest are dropped beyond")
	interval := fs.Duration("interval", 5*time.Second, "how often to look for apps, drains and dynos, and write the drains' status")
	caFile := fs.String("ca-file", "", "PEM certificates trusted for syslog+tls and https drains, besides the system's")
	allow := fs.String("allow-nets", "", "comma-separated CIDRs drains may reach although not public (loopback, private); none by default")
	logLevel := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "dyno-logdrain: unexpected argument %q: it takes flags only\n", fs.Arg(0))
		return 2
	}
	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(os.Stderr, "dyno-logdrain: -log-level %q: want trace, debug, info, warn or error\n", *logLevel)
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "dyno-logdrain", Level: level})
	if *buffer < 64<<10 || *buffer > 1<<30 {
		logger.Error("bad -buffer-bytes: from 64 KiB to 1 GiB", "value", *buffer)
		return 2
	}
	if *interval < 100*time.Millisecond {
		logger.Error("bad -interval: 100ms at least", "value", *interval)
		return 2
	}
	nets, err := parseNets(*allow)
	if err != nil {
		logger.Error("bad -allow-nets", "error", err)
		return 2
	}
	roots, err := rootsWith(*caFile)
	if err != nil {
		logger.Error("bad -ca-file", "error", err)
		return 2
	}
	nomad, err := agentapi.Nomad(*nomadAddr)
	if err != nil {
		logger.Error("failed to configure nomad client", "error", err)
		return 1
	}
	s := &drain.Shipper{Nomad: nomad, Logger: logger, Interval: *interval,
		Sender: drain.SenderConfig{BufferBytes: *buffer, Dialer: drain.NewDialer(nets),
			TLS:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
			MinBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second}}
	if s.Routers, err = parseRouters(*routers); err != nil {
		logger.Error("bad -routers", "error", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *metrics != "" {
		// Bound before the shipper starts: an address that cannot be served is a
		// failure to start, not a log line.
		ln, err := net.Listen("tcp", *metrics)
		if err != nil {
			logger.Error("bad -metrics-listen", "error", err)
			return 2
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(drain.Collector{Shipper: s})
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics endpoint failed", "error", err)
				cancel()
			}
		}()
		defer srv.Close()
	}
	logger.Info("shipping log lines to drains", "routers", s.Routers)
	s.Run(ctx)
	return 0
}

// parseRouters reads -routers: comma-separated http or https URLs of a host and port,
// with no path, query or credentials.
func parseRouters(v string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q: want http://host:port or https://host:port", r)
		}
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q: the port must be 1 to 65535", r)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseNets(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range strings.Split(v, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func rootsWith(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// Command dyno-router is Dynogrid's routing mesh: it routes HTTP requests by Host to app
// dynos it finds in Consul, one request per dyno at a time. See docs/router.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/router"
)

func main() {
	// The router's live heap is small and its garbage short-lived: collect less often
	// than Go's default unless the operator chose (GOGC).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, logLevel, logJSON, err := parseFlags(args)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errFlagSyntax) {
			fmt.Fprintf(os.Stderr, "dyno-router: %v\n", err)
		}
		return 2
	}
	level := hclog.LevelFromString(logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(os.Stderr, "dyno-router: -log-level %q: want trace, debug, info, warn or error\n", logLevel)
		return 2
	}
	out := &logOutput{out: os.Stderr}
	defer out.Flush()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "dyno-router", Level: level, JSONFormat: logJSON, Output: out.direct()})
	cfg.AccessLog = hclog.New(&hclog.LoggerOptions{Name: "dyno-router.access", Level: level, JSONFormat: logJSON, Output: out.batched()})
	r, err := router.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dyno-router: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		cfg.Logger.Error("router stopped", "error", err)
		return 1
	}
	return 0
}

// errFlagSyntax is a command line the flag package refused; it has said why.
var errFlagSyntax = errors.New("bad command line")

// parseFlags reads the command line into the router's configuration, its log level and
// whether it logs JSON.
func parseFlags(args []string) (cfg router.Config, logLevel string, logJSON bool, err error) {
	d := router.DefaultConfig()
	cfg = d
	fs := flag.NewFlagSet("dyno-router", flag.ContinueOnError)
	fs.StringVar(&cfg.Listen, "listen", d.Listen, "address for client traffic")
	fs.StringVar(&cfg.TLSListen, "tls-listen", "", "address for HTTPS client traffic, HTTP/1.1 and HTTP/2 (empty: off)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "the default certificate (PEM chain), for server names no app's certificate covers")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "the default certificate's key (PEM)")
	fs.StringVar(&cfg.ACMEDirectory, "acme-directory", "", "ACME directory URL to order certificates from for the apps' hosts (empty: off; needs -nomad and -tls-listen)")
	fs.StringVar(&cfg.ACMEAccountKeyFile, "acme-account-key", "", "file of the ACME account's key (made there the first time)")
	fs.StringVar(&cfg.ACMECAFile, "acme-ca", "", "CA (PEM) to check the ACME server's HTTPS against (default: the system's)")
	fs.StringVar(&cfg.ACMEEmail, "acme-email", "", "the ACME account's contact address")
	fs.IntVar(&cfg.MaxStreams, "max-streams", d.MaxStreams, "concurrent HTTP/2 streams of one client connection")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address for /metrics and /status (empty: off)")
	fs.StringVar(&cfg.LogsListen, "logs-listen", "", "address for each app's router lines, read with the app's router log key (empty: off; needs -nomad)")
	fs.IntVar(&cfg.LogsMaxReaders, "logs-max-readers", d.LogsMaxReaders, "requests the logs endpoint serves at once, over all apps (one more: 503)")
	fs.DurationVar(&cfg.LogsWriteTimeout, "logs-write-timeout", d.LogsWriteTimeout, "each write of a logs answer must be done in this long, or the reader is dropped")
	fs.StringVar(&cfg.NomadAddr, "nomad", "", "Nomad HTTP address, for H14, the apps' router log keys and certificates (empty: no Nomad)")
	fs.StringVar(&cfg.NomadToken, "nomad-token", os.Getenv("NOMAD_TOKEN"), "Nomad ACL token (default $NOMAD_TOKEN)")
	fs.StringVar(&cfg.Domain, "domain", d.Domain, "router domain: Host <app>.<domain> routes to app")
	fs.StringVar(&cfg.ConsulAddr, "consul", "127.0.0.1:8500", "Consul HTTP address (empty: no Consul)")
	fs.StringVar(&cfg.ConsulToken, "consul-token", os.Getenv("CONSUL_HTTP_TOKEN"), "Consul ACL token (default $CONSUL_HTTP_TOKEN)")
	fs.BoolVar(&cfg.Cluster, "cluster", false, "share dynos with other routers through Consul (see docs/router.md)")
	fs.BoolVar(&cfg.EventLoop, "event-loop", d.EventLoop, "serve plain HTTP/1.1 on one event loop instead of a goroutine per connection; off by default with -cluster, which it does not serve (see docs/router.md)")
	fs.StringVar(&cfg.RouterID, "id", "", "this router's ID in cluster mode (default: hostname and listen address)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address other routers forward to in cluster mode (default: the listen address)")
	fs.IntVar(&cfg.MaxQueueDepth, "max-queue", d.MaxQueueDepth, "H11 when this many requests wait for one app")
	fs.DurationVar(&cfg.MaxQueueWait, "max-queue-wait", d.MaxQueueWait, "H11 when a request waited this long for a dyno")
	fs.DurationVar(&cfg.RequestTimeout, "timeout", d.RequestTimeout, "H12 when a dyno has not answered in this long (app meta \"timeout\" overrides)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", d.ConnectTimeout, "dial timeout to a dyno")
	fs.DurationVar(&cfg.HeaderReadTimeout, "header-timeout", d.HeaderReadTimeout, "a client must send its request headers in this long")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", d.IdleTimeout, "client keep-alive idle timeout")
	fs.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", d.MaxHeaderBytes, "431 beyond this many bytes of request headers")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", d.MaxBodyBytes, "413 beyond this many bytes of request body (-1: no limit)")
	fs.IntVar(&cfg.BodyPrefetch, "body-prefetch", d.BodyPrefetch, "bytes of a request body read before a dyno is taken")
	fs.DurationVar(&cfg.BodyReadTimeout, "body-timeout", d.BodyReadTimeout, "the prefetched body must arrive in this long (408)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "time to drain in-flight and queued requests on SIGTERM")
	fs.Func("static", "static route <app>=<host:port>[,<host:port>...], repeatable (for use without Consul)", func(v string) error {
		app, insts, err := router.ParseStatic(v)
		if err != nil {
			return err
		}
		if cfg.Static == nil {
			cfg.Static = map[string][]router.Instance{}
		}
		cfg.Static[app] = append(cfg.Static[app], insts...)
		return nil
	})
	fs.StringVar(&logLevel, "log-level", "info", "log level (trace, debug, info, warn, error)")
	fs.BoolVar(&logJSON, "log-json", false, "log in JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, "", false, err
		}
		return cfg, "", false, errFlagSyntax
	}
	if fs.NArg() > 0 {
		return cfg, "", false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.Cluster && !given(fs, "event-loop") {
		cfg.EventLoop = false // cluster mode runs on the goroutine server
	}
	if err := checkNotZero(fs); err != nil {
		return cfg, "", false, err
	}
	return cfg, logLevel, logJSON, nil
}

// zeroMeansDefault are the flags whose zero value the router's Config reads as "the
// default": given as zero (or empty) on the command line, that would silently be the
// default, not what the operator wrote.
var zeroMeansDefault = []string{"listen", "domain", "max-queue", "max-queue-wait", "timeout", "connect-timeout",
	"header-timeout", "idle-timeout", "max-header-bytes", "max-body-bytes", "body-prefetch", "body-timeout",
	"shutdown-timeout", "logs-max-readers", "logs-write-timeout", "max-streams"}

// checkNotZero refuses a flag of zeroMeansDefault set to zero or empty.
func checkNotZero(fs *flag.FlagSet) error {
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(zeroMeansDefault, f.Name) {
			return
		}
		switch v := f.Value.String(); v {
		case "", "0", "0s":
			errs = append(errs, fmt.Errorf("-%s %q: must not be zero or empty (leave the flag out for its default, %s)", f.Name, v, f.DefValue))
		}
	})
	return errors.Join(errs...)
}

// given reports whether the command line set the flag name.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

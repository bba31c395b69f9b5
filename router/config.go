package router

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/router/certapi"
)

// Config is everything the router needs. Zero values take the defaults documented on
// each field (see DefaultConfig).
type Config struct {
	// Listen is the address for client traffic ("0.0.0.0:8080"). Listener, when set,
	// is used instead (tests pass one on a free port).
	Listen   string
	Listener net.Listener

	// MetricsListen serves /metrics (Prometheus) and /status; empty disables it.
	MetricsListen   string
	MetricsListener net.Listener

	// LogsListen serves each app's router lines to the holders of the app's router log
	// key (see logserve.go); empty disables it. LogsListener, when set, is used instead.
	LogsListen   string
	LogsListener net.Listener
	// LogsMaxReaders bounds the requests the logs endpoint serves at once, over all apps
	// (default 2048): one more is answered 503 with Retry-After. LogsWriteTimeout bounds
	// each write of an answer (default 10s): a reader that stops reading is dropped.
	LogsMaxReaders   int
	LogsWriteTimeout time.Duration

	// DomainReleaseGrace is how long a custom domain's holder must be seen giving the
	// domain up before its record goes (domains.go; default 10s).
	DomainReleaseGrace time.Duration

	// TLSListen serves HTTPS (HTTP/1.1 and HTTP/2) with a certificate chosen by SNI
	// (see tls.go); empty disables it. TLSListener, when set, is used instead.
	// TLSCertFile and TLSKeyFile are the router's default certificate (PEM), served to
	// a client whose server name no app's certificate covers; an app's certificates
	// come from Nomad (certs.go). HTTPS needs the default certificate, Nomad, or both.
	TLSListen   string
	TLSListener net.Listener
	TLSCertFile string
	TLSKeyFile  string
	// ACMEDirectory is the directory URL of an ACME server (RFC 8555) to order
	// certificates from for the hosts the router routes (acme.go); empty disables it. It
	// needs Nomad and HTTPS. ACMEAccountKeyFile holds the account's key (made there the
	// first time); ACMECAFile, when set, is the CA the ACME server's HTTPS is checked
	// against (a test server's); ACMEEmail is the account's contact.
	ACMEDirectory      string
	ACMEAccountKeyFile string
	ACMECAFile         string
	ACMEEmail          string
	// MaxStreams bounds the concurrent HTTP/2 streams of one client connection
	// (default 100).
	MaxStreams int

	// NomadAddr is Nomad's HTTP address; empty means no Nomad: every unknown Host is
	// 404 (no H14), and the logs endpoint cannot check keys. NomadToken is the router's
	// Nomad ACL token (policies/nomad/router.hcl).
	NomadAddr  string
	NomadToken string

	// Domain is the router domain: Host "<app>.<Domain>" routes to app.
	Domain string

	// ConsulAddr is the Consul HTTP address; empty means no Consul (routes come only
	// from SetApp, as in tests).
	ConsulAddr  string
	ConsulToken string

	// Static routes, app name to dynos, used as well as (or instead of) Consul.
	Static map[string][]Instance

	// Router instance identity and address for multi-router ownership (see docs).
	// Ownership is on when Cluster is true.
	Cluster bool
	// EventLoop serves plain HTTP/1.1 clients on one event loop instead of a goroutine
	// per connection (see loop.go); not in cluster mode. On in DefaultConfig.
	EventLoop bool
	RouterID  string
	Advertise string

	MaxQueueDepth  int           // H11 when this many requests wait for an app (default 1000)
	MaxQueueWait   time.Duration // H11 after waiting this long (default 30s)
	RequestTimeout time.Duration // H12 when a dyno has not answered in this long (default 30s)
	ConnectTimeout time.Duration // dial timeout to a dyno (default 5s)

	HeaderReadTimeout time.Duration // client must send its headers in this long (default 10s)
	IdleTimeout       time.Duration // client keep-alive idle timeout (default 90s)
	MaxHeaderBytes    int           // 431 beyond this (default 32 KiB)
	MaxBodyBytes      int64         // 413 beyond this (default 100 MiB; <0 unlimited)
	BodyPrefetch      int           // bytes of a request body read before a dyno is taken (default 64 KiB)
	BodyReadTimeout   time.Duration // the prefetch must arrive in this long (default 30s)
	ShutdownTimeout   time.Duration // drain time on shutdown (default 30s)

	DownBackoff    time.Duration // first pause of a dyno that refused a connection (default 1s)
	MaxDownBackoff time.Duration // longest pause (default 30s)
	MaxAttempts    int           // dynos tried for a request refused before sending (default 5)

	Logger    hclog.Logger // operational logs (default: hclog at info)
	AccessLog hclog.Logger // one line per request (default: Logger named "access")

	// NewID makes request IDs (default: random UUID v4). Tests replace it.
	NewID func() string
}

// DefaultConfig returns the defaults documented in docs/router.md.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:8080",
		Domain:            "localhost",
		EventLoop:         true,
		MaxQueueDepth:     1000,
		MaxQueueWait:      30 * time.Second,
		RequestTimeout:    30 * time.Second,
		ConnectTimeout:    5 * time.Second,
		HeaderReadTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
		MaxBodyBytes:      100 << 20,
		BodyPrefetch:      64 << 10,
		BodyReadTimeout:   30 * time.Second,
		ShutdownTimeout:   30 * time.Second,
		DownBackoff:       time.Second,
		MaxDownBackoff:    30 * time.Second,
		MaxAttempts:       5,
		MaxStreams:        100,
		LogsMaxReaders:    2048,
		LogsWriteTimeout:  10 * time.Second,

		DomainReleaseGrace: 10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" && c.Listener == nil {
		c.Listen = d.Listen
	}
	if c.Domain == "" {
		c.Domain = d.Domain
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.MaxQueueWait, d.MaxQueueWait)
	setDur(&c.RequestTimeout, d.RequestTimeout)
	setDur(&c.ConnectTimeout, d.ConnectTimeout)
	setDur(&c.HeaderReadTimeout, d.HeaderReadTimeout)
	setDur(&c.IdleTimeout, d.IdleTimeout)
	setDur(&c.BodyReadTimeout, d.BodyReadTimeout)
	setDur(&c.ShutdownTimeout, d.ShutdownTimeout)
	setDur(&c.DownBackoff, d.DownBackoff)
	setDur(&c.MaxDownBackoff, d.MaxDownBackoff)
	setDur(&c.LogsWriteTimeout, d.LogsWriteTimeout)
	setDur(&c.DomainReleaseGrace, d.DomainReleaseGrace)
	if c.LogsMaxReaders == 0 {
		c.LogsMaxReaders = d.LogsMaxReaders
	}
	if c.MaxQueueDepth == 0 {
		c.MaxQueueDepth = d.MaxQueueDepth
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.BodyPrefetch == 0 {
		c.BodyPrefetch = d.BodyPrefetch
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = d.MaxStreams
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "dyno-router", Level: hclog.Info})
	}
	if c.AccessLog == nil {
		c.AccessLog = c.Logger.Named("access")
	}
	if c.NewID == nil {
		c.NewID = newUUID
	}
	c.Domain = strings.ToLower(strings.Trim(c.Domain, "."))
	return c
}

// The largest settings the router takes for what it holds in memory per request: a
// request head (Go's net/http allows 1 MiB too), and the body it reads before taking a
// dyno (each queued request may hold that much).
const (
	maxHeaderBytesLimit = 1 << 20
	maxBodyPrefetch     = 16 << 20
)

// validate names the first bad setting.
func (c Config) validate() error {
	var errs []error
	if strings.HasPrefix(c.Domain, "*") || certapi.CheckDomain(c.Domain) != nil {
		errs = append(errs, fmt.Errorf("domain %q: want a DNS name such as \"localhost\" or \"apps.example.com\" (letters, digits, hyphens and dots, at most %d characters)", c.Domain, certapi.MaxDomainBytes))
	}
	for name, v := range map[string]time.Duration{
		"max queue wait": c.MaxQueueWait, "request timeout": c.RequestTimeout,
		"connect timeout": c.ConnectTimeout, "header read timeout": c.HeaderReadTimeout,
		"idle timeout": c.IdleTimeout, "body read timeout": c.BodyReadTimeout,
		"shutdown timeout": c.ShutdownTimeout, "down backoff": c.DownBackoff,
		"max down backoff": c.MaxDownBackoff, "logs write timeout": c.LogsWriteTimeout,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", name, v))
		}
	}
	if c.MaxQueueDepth < 0 {
		errs = append(errs, fmt.Errorf("max queue depth %d: must not be negative", c.MaxQueueDepth))
	}
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > maxHeaderBytesLimit {
		errs = append(errs, fmt.Errorf("max header bytes %d: must be 1024 to %d", c.MaxHeaderBytes, maxHeaderBytesLimit))
	}
	if c.MaxBodyBytes < -1 {
		errs = append(errs, fmt.Errorf("max body bytes %d: must be -1 (no limit) or more", c.MaxBodyBytes))
	}
	if c.BodyPrefetch < 0 || c.BodyPrefetch > maxBodyPrefetch {
		errs = append(errs, fmt.Errorf("body prefetch %d: must be 0 to %d", c.BodyPrefetch, maxBodyPrefetch))
	}
	if c.LogsMaxReaders < 1 {
		errs = append(errs, fmt.Errorf("logs max readers %d: must be at least 1", c.LogsMaxReaders))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d: must be at least 1", c.MaxAttempts))
	}
	if (c.LogsListen != "" || c.LogsListener != nil) && c.NomadAddr == "" {
		errs = append(errs, errors.New("the logs endpoint needs a Nomad address: it checks each app's router log key there"))
	}
	if c.https() && c.TLSCertFile == "" && c.NomadAddr == "" {
		errs = append(errs, errors.New("HTTPS needs certificates: a default one (-tls-cert and -tls-key), Nomad (apps' certificates), or both"))
	}
	if c.ACMEDirectory != "" && (c.NomadAddr == "" || !c.https() || c.ACMEAccountKeyFile == "") {
		errs = append(errs, errors.New("ACME needs Nomad (to store certificates), HTTPS (to serve them) and an account key file"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("the default certificate needs both its file and its key's file"))
	}
	if c.MaxStreams < 1 || c.MaxStreams > 1000 {
		errs = append(errs, fmt.Errorf("max streams %d: must be 1 to 1000", c.MaxStreams))
	}
	if c.Cluster && c.EventLoop {
		errs = append(errs, errors.New("the event loop (-event-loop) does not serve in cluster mode (-cluster)"))
	}
	if c.Cluster && c.ConsulAddr == "" {
		errs = append(errs, errors.New("cluster mode needs a Consul address"))
	}
	return errors.Join(errs...)
}

// https says whether the router serves HTTPS.
func (c Config) https() bool { return c.TLSListen != "" || c.TLSListener != nil }

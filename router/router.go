// Package router is dyno-router, Dynogrid's routing mesh: it routes each HTTP request by
// Host to one of an app's web dynos, which it learns from Consul, and hands a dyno at
// most one request at a time. Requests wait in a FIFO queue per app until a dyno is idle.
package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/router/internal/http1"
)

// Router is one dyno-router instance.
type Router struct {
	cfg     Config
	log     hclog.Logger
	access  hclog.Logger
	metrics *metrics
	dialer  net.Dialer

	table atomic.Pointer[table] // read by every request without a lock

	mu   sync.Mutex // serialises table writers
	apps map[string]*app
	// conflicts are the custom domains the last table did not route to the apps naming
	// them, each with why (as logged); under mu.
	conflicts map[string]string

	cluster       *cluster        // nil unless Config.Cluster
	domains       *domainRegistry // nil without Consul
	peerTransport *http.Transport

	nomad     *nomadapi.Client                // nil without Config.NomadAddr
	nomadApps atomic.Pointer[map[string]bool] // the apps Nomad has, as last read
	// unverified: Nomad refused to say whose an allocation is (provenance.go); logged once.
	unverified atomic.Bool
	logRings   logRings     // each app's router lines
	logKeys    logKeys      // each app's router log key, as read from Nomad
	keepLines  atomic.Bool  // the logs endpoint is on: logRings are kept
	logReaders atomic.Int64 // requests the logs endpoint serves now
	epoch      string       // this run of the router, in the logs endpoint's answers

	certs    certStore    // the default certificate and each app's, for the HTTPS listener
	acme     *acmeState   // nil without Config.ACMEDirectory
	h2srv    *http.Server // nil without HTTPS
	tlsAddr  atomic.Pointer[string]
	tlsLport atomic.Pointer[string] // the HTTPS listener's port, for X-Forwarded-Port

	stale      atomic.Bool
	staleSince atomic.Int64

	connMu   sync.Mutex
	conns    map[net.Conn]struct{} // hijacked and draining connections
	closing  bool
	bg       sync.WaitGroup
	addr     atomic.Pointer[string]
	lport    atomic.Pointer[string] // the listener's port, for X-Forwarded-Port
	ready    chan struct{}
	readyOne sync.Once

	hooks testHooks // nil functions in production
}

// New checks cfg and returns a router that serves nothing until Run.
func New(cfg Config) (*Router, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid router configuration: %w", err)
	}
	r := &Router{
		cfg:    cfg,
		log:    cfg.Logger,
		access: cfg.AccessLog,
		apps:   make(map[string]*app),
		conns:  make(map[net.Conn]struct{}),
		ready:  make(chan struct{}),
		dialer: net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second},
	}
	r.peerTransport = &http.Transport{DialContext: r.dialer.DialContext, MaxIdleConnsPerHost: peerIdleConns,
		IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: cfg.MaxQueueWait + takeoverWait + cfg.ConnectTimeout + maxAppTimeout,
		ExpectContinueTimeout: peerContinueWait}
	r.metrics = newMetrics(r)
	r.epoch = newUUID()
	r.keepLines.Store(cfg.LogsListen != "" || cfg.LogsListener != nil)
	if cfg.NomadAddr != "" {
		var err error
		if r.nomad, err = newNomadClient(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.TLSCertFile != "" {
		var err error
		if r.certs.def, err = loadDefaultCert(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, err
		}
	}
	if cfg.ACMEDirectory != "" {
		var err error
		if r.acme, err = newACME(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.https() {
		r.h2srv = r.newH2Server()
	}
	r.table.Store(&table{hosts: map[string]*app{}})
	for name, insts := range cfg.Static {
		r.SetApp(name, insts)
	}
	return r, nil
}

// maxAppTimeout is the longest an app's own request timeout (meta timeout) may make the
// owner of a forwarded request take to start its answer: a forwarding router does not
// know the app's timeout, and waits this long beyond the queue before it gives up on a
// peer that stopped answering.
const maxAppTimeout = 10 * time.Minute

// peerContinueWait is how long a forwarded request with a streamed body waits for its
// owner's 100 Continue (see forward) before it sends the body anyway; the owner answers
// at once, with the 100 or with a hand-back.
const peerContinueWait = 2 * time.Second

// peerIdleConns is how many kept-alive connections a cluster router keeps to each peer:
// every forwarded request that waits in the owner's queue holds one, and connections
// above this are closed after their request, so it is as large as a busy queue.
const peerIdleConns = 1024

// Ready is closed once Run listens; Addr then says where.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Addr is the address the router listens on for clients, once Ready.
func (r *Router) Addr() string {
	if p := r.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// TLSAddr is the address of the HTTPS listener, once Ready ("" without one).
func (r *Router) TLSAddr() string {
	if p := r.tlsAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// Run serves clients (and metrics) and follows Consul until ctx ends, then shuts down
// gracefully: it stops accepting, lets in-flight and queued requests finish within the
// shutdown timeout, and closes what is left.
func (r *Router) Run(ctx context.Context) error {
	ln := r.cfg.Listener
	if ln == nil {
		var err error
		// No TCP keep-alive probes on client connections: an idle one ends at the idle
		// timeout, and the probes' timers and the system calls that set them up cost
		// on every accepted connection.
		lc := net.ListenConfig{KeepAlive: -1}
		if ln, err = lc.Listen(context.Background(), "tcp", r.cfg.Listen); err != nil {
			return fmt.Errorf("failed to listen on %s: %w", r.cfg.Listen, err)
		}
	}
	h1cfg := http1.Config{
		HeaderReadTimeout: r.cfg.HeaderReadTimeout,
		IdleTimeout:       r.cfg.IdleTimeout,
		WriteTimeout:      r.cfg.RequestTimeout,
		BodyReadTimeout:   r.cfg.BodyReadTimeout,
		MaxHeaderBytes:    r.cfg.MaxHeaderBytes,
		Logger:            r.log,
	}
	fr := http1.NewServer(ln, r, h1cfg)
	var ls *loopServer
	if tln, tcp := ln.(*net.TCPListener); r.cfg.EventLoop && !tcp {
		r.log.Warn("the event loop serves a TCP listener only; serving with a goroutine per connection")
	} else if r.cfg.EventLoop {
		var err error
		if ls, err = newLoopServer(r, tln, fr, h1cfg); err != nil {
			ln.Close()
			return fmt.Errorf("failed to start the event loop: %w", err)
		}
	}
	var tfr *http1.Server // HTTPS: HTTP/1.1 connections; HTTP/2 ones go to serveH2
	var tln *tlsListener
	var h2ln *h2Listener
	if r.cfg.https() {
		raw := r.cfg.TLSListener
		if raw == nil {
			var err error
			if raw, err = (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", r.cfg.TLSListen); err != nil {
				ln.Close()
				return fmt.Errorf("failed to listen for HTTPS on %s: %w", r.cfg.TLSListen, err)
			}
		}
		ta := raw.Addr().String()
		r.tlsAddr.Store(&ta)
		if _, p, err := net.SplitHostPort(ta); err == nil {
			r.tlsLport.Store(&p)
		}
		h2ln = newH2Listener(raw.Addr())
		tln = newTLSListener(raw, r.tlsConfig(), r.cfg.HeaderReadTimeout, h2ln.hand, r.handshakeFailed)
		tfr = http1.NewServer(tln, r, h1cfg)
		defer tln.Close() // on an early return; Shutdown closes it otherwise
	}
	var msrv *http.Server
	var mln net.Listener
	if r.cfg.MetricsListener != nil || r.cfg.MetricsListen != "" {
		mln = r.cfg.MetricsListener
		if mln == nil {
			var err error
			if mln, err = net.Listen("tcp", r.cfg.MetricsListen); err != nil {
				ln.Close()
				return fmt.Errorf("failed to listen for metrics on %s: %w", r.cfg.MetricsListen, err)
			}
		}
		msrv = &http.Server{Handler: r.metricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	lln := r.cfg.LogsListener
	if lln == nil && r.cfg.LogsListen != "" {
		var err error
		if lln, err = net.Listen("tcp", r.cfg.LogsListen); err != nil {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			return fmt.Errorf("failed to listen for logs on %s: %w", r.cfg.LogsListen, err)
		}
	}
	var lsrv *http.Server
	if lln != nil {
		lsrv = &http.Server{Handler: r.logsHandler(), ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	}

	// Consul is followed until the clients are drained, so the table stays current
	// during a graceful shutdown.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	addr := ln.Addr().String()
	r.addr.Store(&addr)
	if _, p, err := net.SplitHostPort(addr); err == nil {
		r.lport.Store(&p)
	}
	var tableReady <-chan struct{}
	if r.cfg.ConsulAddr != "" {
		w, err := newWatcher(r)
		if err != nil {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			if lln != nil {
				lln.Close()
			}
			return err
		}
		if r.cfg.Cluster {
			r.cluster = newCluster(r, w.client)
			wg.Add(1)
			go func() { defer wg.Done(); r.cluster.run(wctx) }()
		}
		r.mu.Lock()
		r.domains = newDomainRegistry(r, w.client)
		r.mu.Unlock()
		wg.Add(2)
		go func() { defer wg.Done(); r.domains.watch(wctx) }()
		go func() { defer wg.Done(); r.domains.run(wctx) }()
		wg.Add(1)
		go func() { defer wg.Done(); w.run(wctx) }()
		tableReady = bothClosed(wctx, w.tableReady(wctx), r.domains.read)
	}
	if r.nomad != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.watchNomadApps(wctx) }()
	}
	if r.nomad != nil && tln != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.watchCerts(wctx) }()
	}
	if r.acme != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.runACME(wctx) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Connections wait in the listen backlog until the first table is in.
		r.awaitTable(ctx, tableReady)
		if tfr != nil {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if err := tfr.Serve(); err != nil {
					errc <- fmt.Errorf("failed to serve HTTPS clients: %w", err)
				}
			}()
			go func() {
				defer wg.Done()
				if err := r.h2srv.Serve(h2ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					errc <- fmt.Errorf("failed to serve HTTP/2 clients: %w", err)
				}
			}()
		}
		serve := fr.Serve
		if ls != nil {
			serve = ls.Serve
		}
		if err := serve(); err != nil {
			errc <- fmt.Errorf("failed to serve clients: %w", err)
		}
	}()
	if msrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := msrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("failed to serve metrics: %w", err)
			}
		}()
	}
	if lsrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lsrv.Serve(lln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("failed to serve logs: %w", err)
			}
		}()
	}
	r.readyOne.Do(func() { close(r.ready) })
	r.log.Info("router listening", "addr", addr, "https", r.TLSAddr(), "domain", r.cfg.Domain, "consul", r.cfg.ConsulAddr)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	r.log.Info("router shutting down", "timeout", r.cfg.ShutdownTimeout)
	sctx, scancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer scancel()
	if r.cluster != nil {
		r.cluster.stepDown(sctx)
	}
	http1.DrainAcceptQueue(ln, time.Second)
	if tfr != nil {
		http1.DrainAcceptQueue(tln.Listener, time.Second)
		go func() { _ = tfr.Shutdown(sctx) }()
	}
	shutdown := fr.Shutdown
	if ls != nil {
		shutdown = ls.Shutdown
	}
	if err := shutdown(sctx); err != nil {
		r.log.Warn("requests still running at the end of the shutdown timeout; closing them", "error", err)
	}
	if tfr != nil {
		if err := tfr.Shutdown(sctx); err != nil {
			r.log.Warn("HTTPS requests still running at the end of the shutdown timeout; closing them", "error", err)
		}
		// Every HTTP/2 connection is told to go away and finishes its streams.
		if err := r.h2srv.Shutdown(sctx); err != nil {
			r.log.Warn("HTTP/2 requests still running at the end of the shutdown timeout; closing them", "error", err)
			r.h2srv.Close()
		}
	}
	r.closeTracked(sctx)
	if msrv != nil {
		msrv.Close()
	}
	if lsrv != nil {
		lsrv.Close()
	}
	wcancel()
	wg.Wait()
	r.bg.Wait()
	r.closeIdle()
	r.peerTransport.CloseIdleConnections()
	return runErr
}

// track registers a connection that lives beyond its handler (upgraded, or draining
// after H12) so that shutdown can close it. It says false once shutdown has begun.
func (r *Router) track(c net.Conn) bool {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.closing {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Router) untrack(c net.Conn) {
	r.connMu.Lock()
	delete(r.conns, c)
	r.connMu.Unlock()
}

// closeTracked waits for tracked connections to end on their own until ctx ends, then
// closes the rest.
func (r *Router) closeTracked(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r.connMu.Lock()
		n := len(r.conns)
		if n == 0 || ctx.Err() != nil {
			r.closing = true
			for c := range r.conns {
				c.Close()
			}
			r.connMu.Unlock()
			return
		}
		r.connMu.Unlock()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// closeIdle closes every kept-alive dyno connection.
func (r *Router) closeIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.apps {
		a.mu.Lock()
		for _, d := range a.dynos {
			if !d.busy {
				d.closeConnLocked()
			}
		}
		a.mu.Unlock()
	}
}

// finish logs the request's line and counts it, once.
func (r *Router) finish(rec *record) {
	if rec.logged {
		return
	}
	rec.logged = true
	if rec.handedBack {
		r.log.Debug("handed a request back to the router that forwarded it", "app", rec.app.name, "request_id", rec.requestID)
		return
	}
	if rec.status == 0 && rec.code == nil {
		rec.status = http.StatusOK
	}
	r.metrics.response(rec)
	failed := rec.code != nil && rec.code.Name != ""
	name := rec.appName
	if rec.app != nil {
		name = rec.app.name
	}
	// Lines are kept only when the logs endpoint serves them. A request forwarded to
	// the app's owner in cluster mode is the owner's line to keep.
	keep := r.keepLines.Load() && name != "" && !(rec.code == nil && strings.HasPrefix(rec.dyno, "router:"))
	if !failed && !keep && !r.access.IsInfo() {
		return
	}
	line := rec.line()
	if failed {
		r.access.Error(line)
	} else if r.access.IsInfo() {
		r.access.Info(line)
	}
	if keep {
		r.logRings.add(name, time.Now(), line)
	}
}

// setStale records whether the table may be out of date.
func (r *Router) setStale(stale bool, err error) {
	if r.stale.Swap(stale) == stale {
		return
	}
	r.metrics.setStale(stale)
	if stale {
		r.staleSince.Store(time.Now().Unix())
		r.log.Error("consul unreachable; serving the last routing table", "error", err)
	} else {
		r.staleSince.Store(0)
		r.log.Info("consul reachable again; routing table is current")
	}
}

// advertise is the address other routers forward to: Config.Advertise, or the listen
// address.
func (r *Router) advertise() string {
	if r.cfg.Advertise != "" {
		return r.cfg.Advertise
	}
	return r.Addr()
}

// port is the router port requests come in on.
func (r *Router) port() string {
	if p := r.lport.Load(); p != nil {
		return *p
	}
	return ""
}

// Stale says whether the router serves a table it could not refresh.
func (r *Router) Stale() bool { return r.stale.Load() }

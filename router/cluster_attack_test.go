package router

// Attacks on cluster mode (several routers behaving as one). Each test reproduces one
// defect; see the comment on each for the sequence. Tests that need Consul start one
// through e2e/harness (DYNO_BIN_DIR must point at the built binaries).

import (
	"bufio"
	"context"
	"fmt"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/policies"
	"github.com/hashicorp/go-hclog"
)

// fakeCluster makes tr a cluster member "me" that knows app has a passing dyno in
// Consul but owns none of it, with the live routers members at addrs. No Consul: the
// test changes the members itself (setMembers) and runs reconcile as the members watch
// would.
func fakeCluster(tr *testRouter, app string, members []string, addrs map[string]string) *cluster {
	c := &cluster{r: tr.Router, id: "me", log: hclog.NewNullLogger(), kick: make(chan struct{}, 1),
		members: members, addrs: addrs, insts: map[string][]Instance{app: {{ID: "x"}}},
		holders: map[string]string{}, mine: map[string]bool{}, leaving: map[string]bool{},
		routable: map[string]int{}, appOf: map[string]string{}, owners: map[string]string{},
		membersSeen: make(chan struct{}), ready: make(chan struct{}), tableIn: make(chan struct{})}
	tr.cluster = c
	tr.SetApp(app, nil)
	c.reconcile(context.Background())
	return c
}

func (c *cluster) setMembers(members []string) {
	c.mu.Lock()
	c.members = members
	c.mu.Unlock()
	c.reconcile(context.Background())
}

// rawUpgrade sends a WebSocket-style upgrade request for host to addr and returns the
// status line of the answer.
func rawUpgrade(t *testing.T, addr, host string, wait time.Duration) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", host)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// A dyno's 101 Switching Protocols answer is relayed with all its headers (upgrade.go
// writes resp.Header as is), so a dyno CAN make its answer carry X-Dyno-Router-Not-Owner,
// contrary to docs/router.md. The forwarding router's ModifyResponse looks for the
// header on any status, 101 included, and takes the answer for a hand-back: the
// upgrade request, already served by the dyno, is sent to the owner again up to
// maxBounces more times, and then held and answered H10.
//
// Sequence: client -> forwarder (owns no dyno) -> owner -> dyno answers 101 with
// X-Dyno-Router-Not-Owner -> forwarder: errNotOwner -> resend (x8) -> hold -> H10.
func TestAttackUpgradeNotOwnerFromDynoReplays(t *testing.T) {
	t.Parallel()
	var upgrades atomic.Int32
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		upgrades.Add(1)
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			NotOwnerHeader + ": evil\r\n\r\n")
		brw.Flush()
		io.Copy(io.Discard, c) // until the router closes the connection
		c.Close()
	})
	owner := startRouter(t, func(cfg *Config) {
		cfg.Static = map[string][]Instance{"ws": {b.instance("web.1")}}
	})
	fwd := startRouter(t, func(cfg *Config) { cfg.MaxQueueWait = 2 * time.Second })
	forwardApp(fwd, "ws", owner.Addr())

	// Directly through the owner (one router): 101, one upgrade.
	if got := rawUpgrade(t, owner.Addr(), "ws.localhost", 5*time.Second); !strings.Contains(got, " 101 ") {
		t.Fatalf("upgrade through the owner: %q", got)
	}
	waitFor(t, "the first upgrade ends", func() bool { _, _, _, busy, _ := owner.appStats2("ws"); return busy == 0 })
	upgrades.Store(0)

	got := rawUpgrade(t, fwd.Addr(), "ws.localhost", 15*time.Second)
	if n := upgrades.Load(); n != 1 || !strings.Contains(got, " 101 ") {
		t.Errorf("an upgrade through a forwarding router reached the dyno %d times and the client got %q; "+
			"want once, 101 (as through one router)", n, got)
	}
}

func (tr *testRouter) appStats2(name string) (dynos, up, idle, busy, waiting int) {
	a := tr.appRef(name)
	if a == nil {
		return
	}
	return a.stats()
}

// Requests forwarded by a router reach the dyno with X-Dyno-Router-Hop (the forwarding
// router's ID, by default its host name and port), which a request through one router
// never carries; an app that proxies to another app on the grid copying the headers it
// got (a common pattern) then sends a request marked as forwarded, and a router that
// does not own that other app answers it 503 H10 with X-Dyno-Router-Not-Owner (its ID)
// instead of forwarding it. Any client can do the same.
func TestAttackHopHeaderFromOutside(t *testing.T) {
	t.Parallel()
	var hop atomic.Pointer[string]
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get(HopHeader)
		hop.Store(&h)
		io.WriteString(w, "ok")
	})
	owner := startRouter(t, func(cfg *Config) {
		cfg.Static = map[string][]Instance{"hop": {b.instance("web.1")}}
	})
	fwd := startRouter(t, nil)
	forwardApp(fwd, "hop", owner.Addr())

	t.Run("dyno sees the hop header", func(t *testing.T) {
		resp, body := fwd.do(t, "GET", "hop.localhost", "/", nil, nil)
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("forwarded request: %d %q", resp.StatusCode, body)
		}
		if h := hop.Load(); h == nil || *h != "" {
			t.Errorf("the dyno got %s: %q; one router never sends it", HopHeader, *h)
		}
	})
	t.Run("client sends the hop header", func(t *testing.T) {
		resp, body := fwd.do(t, "GET", "hop.localhost", "/", nil, http.Header{HopHeader: {"anything"}})
		if resp.StatusCode != 200 || body != "ok" {
			t.Errorf("a client request with %s through a router that forwards it got %d (%s=%q); "+
				"one router serves it", HopHeader, resp.StatusCode, NotOwnerHeader, resp.Header.Get(NotOwnerHeader))
		}
	})
}

// A request is held in the forwarding router (the owner refused it, or died before
// answering an idempotent one) on the view of the members it read before it was sent;
// when the members change while it is on its way, reconcile redirects the app's queue
// before the request is in it, and nothing wakes it later: it waits out takeoverWait (or
// -max-queue-wait) and gets H10 while the new owner is live.
//
// Sequence (3 routers, "me" forwarding): me reads owner=peer1 -> forward -> [members
// change to peer2; reconcile: owner moved, redirect() of an empty queue] -> peer1's
// connection ends without an answer -> routeHold -> acquire(hold) -> ... -> H10.
func TestAttackHeldRequestMissesOwnerChange(t *testing.T) {
	t.Parallel()
	peer2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "peer2")
	}))
	defer peer2.Close()
	tr := startRouter(t, func(cfg *Config) { cfg.MaxQueueWait = 3 * time.Second })
	var c *cluster
	peer1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// peer1 leaves the cluster as the request reaches it; the forwarder's members
		// watch shows it at once; then peer1's connection ends (it was killed).
		c.setMembers([]string{"peer2"})
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer peer1.Close()
	c = fakeCluster(tr, "held", []string{"peer1"},
		map[string]string{"peer1": peer1.Listener.Addr().String(), "peer2": peer2.Listener.Addr().String()})

	start := time.Now()
	resp, body := tr.do(t, "GET", "held.localhost", "/", nil, nil)
	if resp.StatusCode != 200 || body != "peer2" {
		t.Errorf("request held across an owner change got %d %q after %s; want it sent on to the new owner (200 peer2)",
			resp.StatusCode, body, time.Since(start).Round(time.Millisecond))
	}
}

// The peer transport gives up on the owner's answer after -timeout + -max-queue-wait
// (ResponseHeaderTimeout), whatever the app's own timeout (meta "timeout"): a request
// that one router serves (the dyno answers within the app's timeout) gets H10 through a
// forwarding router, and the forwarding router does not even know the app's timeout
// (its table has none of the app's dynos, so their settings are not in it).
func TestAttackForwardTimeoutIgnoresAppTimeout(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		io.WriteString(w, "slow ok")
	})
	in := b.instance("web.1")
	in.Timeout = 5 * time.Second
	short := func(cfg *Config) { cfg.RequestTimeout, cfg.MaxQueueWait = 300*time.Millisecond, 300*time.Millisecond }
	owner := startRouter(t, func(cfg *Config) {
		short(cfg)
		cfg.Static = map[string][]Instance{"slow": {in}}
	})
	if resp, body := owner.do(t, "GET", "slow.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "slow ok" {
		t.Fatalf("through the owner alone: %d %q", resp.StatusCode, body)
	}
	fwd := startRouter(t, short)
	forwardApp(fwd, "slow", owner.Addr())
	start := time.Now()
	if resp, body := fwd.do(t, "GET", "slow.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "slow ok" {
		t.Errorf("through a forwarding router: %d after %s (one router: 200); log: %s", resp.StatusCode,
			time.Since(start).Round(time.Millisecond), lastLines(fwd.logs.String(), 2))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// consulProxy stands between a router and Consul: it can fail or slow down chosen
// requests, as a sick agent or a Consul leader election would.
type consulProxy struct {
	srv *httptest.Server
	// fail, when set, answers a request with its status instead of passing it on.
	fail atomic.Pointer[func(*http.Request) int]
	// delay holds back Consul's answers (not blocking queries) by this many ns: Consul has
	// done the work, the router hears of it late.
	delay atomic.Int64
	// renews counts session renewals answered late.
	renews atomic.Int32
	mu     sync.Mutex
	seen   []string
}

func newConsulProxy(t *testing.T, consulAddr string) *consulProxy {
	p := &consulProxy{}
	u, _ := url.Parse("http://" + consulAddr)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		if d := p.delay.Load(); d > 0 && !resp.Request.URL.Query().Has("index") {
			time.Sleep(time.Duration(d))
			if strings.HasPrefix(resp.Request.URL.Path, "/v1/session/renew/") {
				p.renews.Add(1)
			}
		}
		return nil
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := p.fail.Load(); f != nil {
			if code := (*f)(r); code != 0 {
				p.mu.Lock()
				p.seen = append(p.seen, r.Method+" "+r.URL.String())
				p.mu.Unlock()
				http.Error(w, "injected failure", code)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *consulProxy) addr() string { return p.srv.Listener.Addr().String() }

func (p *consulProxy) failed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func clusterRouter(t *testing.T, consulAddr, token, id string, more func(*Config)) *testRouter {
	return startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = consulAddr, token
		cfg.Cluster = true
		cfg.RouterID = id
		if more != nil {
			more(cfg)
		}
	})
}

// When the old owner's release of a dyno's lock fails once (a Consul hiccup: a leader
// election, a 500, a timeout), handOver logs a warning and forgets the dyno: the lock
// stays with the old owner's session, which lives on, so the new owner never gets the
// dyno and holds (then H10s) the app's requests for as long as the old owner runs.
//
// Sequence: A owns the dyno -> B joins and owns the app -> A: handOver -> KV release
// fails (injected 500) -> A: delete(mine) -> B waits for a lock nobody will release.
func TestAttackFailedReleaseStrandsDyno(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	token := harness.Tokens(t, g).Consul[policies.ConsulCluster]
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	register(t, c, "strand", "web.1", b, nil, false)
	px := newConsulProxy(t, g.Options.ConsulAddr())
	ra := clusterRouter(t, px.addr(), token, "ra", nil)
	testutil.WaitFor(t, 20*time.Second, "router a owns the dyno", func() bool { return ra.appStats("strand").Dynos == 1 })

	var once atomic.Bool
	fail := func(r *http.Request) int {
		if r.Method == "PUT" && strings.Contains(r.URL.Path, "/v1/kv/"+locksPrefix) && r.URL.Query().Has("release") &&
			once.CompareAndSwap(false, true) {
			return http.StatusInternalServerError
		}
		return 0
	}
	px.fail.Store(&fail)
	rb := clusterRouter(t, g.Options.ConsulAddr(), token, routerIDOwning("ra", "rb", "strand"),
		func(cfg *Config) { cfg.MaxQueueWait = 2 * time.Second })
	testutil.WaitFor(t, 20*time.Second, "the release fails once", func() bool { return len(px.failed()) == 1 })
	testutil.WaitFor(t, 15*time.Second, "the new owner to get the dyno after one failed release", func() error {
		if rb.appStats("strand").Dynos == 1 {
			return nil
		}
		return fmt.Errorf("failed releases %v; a owns %d of its dynos", px.failed(), ra.appStats("strand").Dynos)
	})
	if resp, body := rb.do(t, "GET", "strand.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("via the new owner: %d %q", resp.StatusCode, body)
	}
}

// An owner whose Consul agent answers slowly (here 300 ms a call; Consul does the work,
// the answer is late) fails every heartbeat (two calls in heartbeatEvery = 500 ms) and
// fences itself, yet its check is passed and its session renewed, so it stays a member
// and keeps owning its apps in every router's view: the others forward to it, it hands
// back (it is fenced), they hand back to each other... Nobody routes the app's dynos
// for as long as the agent is slow. One router with a slow Consul serves on.
func TestAttackSlowAgentFencesOwnerForever(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	token := harness.Tokens(t, g).Consul[policies.ConsulCluster]
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	register(t, c, "slowagent", "web.1", b, nil, false)
	px := newConsulProxy(t, g.Options.ConsulAddr())
	short := func(cfg *Config) { cfg.MaxQueueWait = 3 * time.Second }
	rb := clusterRouter(t, g.Options.ConsulAddr(), token, "fast-0", short)
	ra := clusterRouter(t, px.addr(), token, routerIDOwning("fast-0", "slow", "slowagent"), short)
	testutil.WaitFor(t, 20*time.Second, "the slow router owns the dyno and the other forwards to it", func() bool {
		return ra.appStats("slowagent").Dynos == 1 && routes(rb, "slowagent.localhost") == 200
	})
	px.delay.Store(int64(300 * time.Millisecond))
	// Six renewals answered late: at least 3 s of a slow agent, past fenceAfter.
	testutil.WaitFor(t, 20*time.Second, "six late session renewals", func() bool { return px.renews.Load() >= 6 })
	t.Logf("slow router fenced: %v", ra.logHas("cannot reach Consul"))
	for _, tr := range []*testRouter{rb, ra} {
		start := time.Now()
		if resp, body := tr.do(t, "GET", "slowagent.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "ok" {
			t.Errorf("with the owner's agent slow (300 ms), a request via %s got %d after %s",
				tr.cluster.id, resp.StatusCode, time.Since(start).Round(time.Millisecond))
		}
	}
}

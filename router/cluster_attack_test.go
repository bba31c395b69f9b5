package router

// Attacks on cluster mode (several routers behaving as one): from a dyno, from a client,
// and from a sick Consul agent. The comment on each test gives the sequence that it
// drives and what must hold. Tests that need Consul start one through e2e/harness (the
// agent tier: DYNO_E2E=1, DYNO_BIN_DIR pointing at the built binaries).

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/hashicorp/go-hclog"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
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
	tr.setCluster(c)
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

// A dyno cannot make a forwarding router send its request again. A 101 Switching
// Protocols answer is relayed with the dyno's own headers, so it may carry
// X-Dyno-Router-Not-Owner; the forwarder takes only its peer's 503 naming it for a
// hand-back.
//
// Sequence: client -> forwarder (owns no dyno) -> owner -> dyno answers 101 with
// X-Dyno-Router-Not-Owner -> the client gets the 101, and the dyno saw one upgrade.
func TestAttackUpgradeNotOwnerFromDynoReplays(t *testing.T) {
	t.Parallel()
	var upgrades atomic.Int32
	var b *backend
	b = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
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
		// Counted out as it closes: the router frees the dyno once it sees the close.
		b.closeHijacked(r, c)
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
	waitFor(t, "the first upgrade ends", func() bool { return owner.appStats("ws").Busy == 0 })
	upgrades.Store(0)

	got := rawUpgrade(t, fwd.Addr(), "ws.localhost", 15*time.Second)
	if n := upgrades.Load(); n != 1 || !strings.Contains(got, " 101 ") {
		t.Errorf("an upgrade through a forwarding router reached the dyno %d times and the client got %q; "+
			"want once, 101 (as through one router)", n, got)
	}
}

// X-Dyno-Router-Hop never reaches a dyno (it would leak router IDs to apps), and a
// client that sends it (an app proxying to another app on the grid with the headers it
// got, say) is served as any client: the header counts only when it names a live member.
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

// A request whose owner fails it while the members change is sent on to the new owner,
// not held in a queue that reconcile redirected before the request was in it (it would
// wait out takeoverWait and get H10 while the new owner is live).
//
// Sequence (3 routers, "me" forwarding): me reads owner=peer1 -> forward -> [members
// change to peer2; reconcile: owner moved, redirect() of an empty queue] -> peer1's
// connection ends without an answer -> the request goes to peer2: 200.
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

// A forwarding router waits for the owner's answer as long as the app's own timeout
// (meta "timeout") allows, which it does not know (its table has none of the app's
// dynos): a request that one router serves within the app's timeout is served through
// a forwarding router too, though the router's -timeout is shorter.
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

// consulWithDyno starts Consul with one passing dyno of app that answers "ok", and
// returns the agent and the cluster routers' token.
func consulWithDyno(t *testing.T, app string) (*devgrid.Grid, string) {
	t.Helper()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	register(t, c, app, "web.1", b, nil, false)
	return g, harness.Tokens(t, g).Consul[policies.ConsulCluster]
}

// A handover whose release of a dyno's lock fails (a Consul hiccup: a leader election,
// a 500, a timeout) tries again until it succeeds, so the new owner gets the dyno. A
// handover that forgot the lock would leave it with the old owner's session, which lives
// on: the new owner would hold, then H10, the app's requests for as long as the old
// owner runs.
//
// Sequence: A owns the dyno -> B joins and owns the app -> A: handOver -> KV release
// fails once (injected 500) -> A releases again -> B owns the dyno and serves.
func TestAttackFailedReleaseStrandsDyno(t *testing.T) {
	t.Parallel()
	g, token := consulWithDyno(t, "strand")
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
	testutil.WaitFor(t, 15*time.Second, "the new owner has the dyno after one failed release", func() error {
		if rb.appStats("strand").Dynos != 1 {
			return fmt.Errorf("failed calls %v; a owns %d, b owns %d", px.failed(), ra.appStats("strand").Dynos, rb.appStats("strand").Dynos)
		}
		return nil
	})
	if resp, body := rb.do(t, "GET", "strand.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("via the new owner: %d %q", resp.StatusCode, body)
	}
}

// An owner whose Consul agent answers slowly (here 300 ms a call; Consul does the work,
// the answer is late) keeps routing: a heartbeat may take until fenceAfter, so its check
// and session, which Consul keeps alive, and its own view agree. Were it to fence itself
// while it stays a member in every router's view, the others would forward to it, it
// would hand back, and nobody would route the app's dynos for as long as the agent is
// slow. One router with a slow Consul serves on; so must a cluster.
func TestAttackSlowAgentFencesOwnerForever(t *testing.T) {
	t.Parallel()
	g, token := consulWithDyno(t, "slowagent")
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

// The forwarding headers of a request are believed only from a peer router that proves
// it is one with its peer key, which only routers can read in Consul: a client or a
// dyno that names a member in the hop header, even from the member's own address, has
// its address appended and its -Proto and -Port replaced.
func TestAttackForwardedHeadersOnlyFromPeers(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "ok")
	})
	owner := startRouter(t, nil)
	owner.setCluster(&cluster{id: "me", members: []string{"peer"}, addrs: map[string]string{"peer": "127.0.0.1:1"},
		keys: map[string]string{"peer": peerKey}})
	owner.SetApp("xff", []Instance{b.instance("web.1")})
	send := func(key string) http.Header {
		t.Helper()
		c, err := net.Dial("tcp", owner.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: xff.localhost\r\n"+HopHeader+": peer\r\n"+PeerKeyHeader+": "+key+"\r\n"+
			"X-Forwarded-For: 10.0.0.1, 10.0.0.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("with key %q: %v %v", key, resp, err)
		}
		return <-seen
	}
	h := send(peerKey) // a forward
	if got := h.Get("X-Forwarded-For"); got != "10.0.0.1, 10.0.0.9" {
		t.Errorf("a forward's X-Forwarded-For reached the dyno as %q, want the peer's as is", got)
	}
	if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Port") != "443" {
		t.Errorf("a forward reached the dyno with X-Forwarded-Proto %q and -Port %q, want the peer's",
			h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Port"))
	}
	if h.Get(PeerKeyHeader) != "" || h.Get(HopHeader) != "" {
		t.Errorf("the dyno got the peer key %q or hop header %q", h.Get(PeerKeyHeader), h.Get(HopHeader))
	}
	for _, forged := range []string{"", "a-guess", peerKey + "x", peerKey[:len(peerKey)-1]} {
		h = send(forged)
		if got := h.Get("X-Forwarded-For"); got != "10.0.0.1, 10.0.0.9, 127.0.0.1" {
			t.Errorf("key %q: a client naming a member got X-Forwarded-For %q to the dyno, want its address appended", forged, got)
		}
		if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Port") == "443" {
			t.Errorf("key %q: a client naming a member set X-Forwarded-Proto %q and -Port %q", forged, h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Port"))
		}
	}
}

// A client that forges the hop header of a peer gets the hand-back a peer would, but
// without the peer's key it is logged and counted: only a real peer's hand-back is
// served, logged and counted by that peer instead.
func TestAttackForgedHopHeaderIsLogged(t *testing.T) {
	t.Parallel()
	tr := startRouter(t, nil)
	forwardApp(tr, "forged", "127.0.0.1:1")
	c, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /forged HTTP/1.1\r\nHost: forged.localhost\r\n"+HopHeader+": peer\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a forged hop header from outside: %v %v, want the 503 hand-back", resp, err)
	}
	waitFor(t, "the forged request logged", func() bool { return tr.logHas(`path="/forged"`, "code=H10") })
}

package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
)

func TestRendezvousOwnerSpreadsAndMovesLittle(t *testing.T) {
	t.Parallel()
	two := []string{"a", "b"}
	three := []string{"a", "b", "c"}
	count := map[string]int{}
	moved := 0
	for i := 0; i < 3000; i++ {
		id := fmt.Sprintf("app-web-%d", i)
		o2, o3 := owner(two, id), owner(three, id)
		count[o3]++
		if o2 != o3 && o3 != "c" {
			moved++
		}
	}
	for _, m := range three {
		if count[m] < 800 || count[m] > 1200 {
			t.Errorf("router %s owns %d of 3000 dynos, want about 1000", m, count[m])
		}
	}
	if moved != 0 {
		t.Errorf("%d dynos moved between the old routers when a third joined", moved)
	}
	if owner(nil, "x") != "" {
		t.Errorf("owner with no routers")
	}
}

// routerProcess runs the dyno-router binary (built by `make build`) in cluster mode.
type routerProcess struct {
	cmd     *exec.Cmd
	addr    string
	metrics string
}

func startRouterProcess(t *testing.T, g *devgrid.Grid, id string) *routerProcess {
	t.Helper()
	bin := filepath.Join(harness.BinDir(t), "dyno-router")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("dyno-router not built in %s (run `make build`): %v", filepath.Dir(bin), err)
	}
	ln, ml := listen(t), listen(t)
	p := &routerProcess{addr: ln.Addr().String(), metrics: ml.Addr().String()}
	ln.Close()
	ml.Close()
	p.cmd = exec.Command(bin, "-cluster", "-id", id, "-listen", p.addr, "-metrics-listen", p.metrics,
		"-consul", g.Options.ConsulAddr(), "-log-level", "warn")
	p.cmd.Env = append(os.Environ(), "CONSUL_HTTP_TOKEN="+harness.Tokens(t, g).Consul[policies.ConsulCluster])
	logs := &syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("router %s output:\n%s", id, logs.String())
		}
	})
	return p
}

func (p *routerProcess) status() (Status, error) {
	var s Status
	resp, err := http.Get("http://" + p.metrics + "/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// routerIDOwning returns an ID, with prefix, under which a router joining other owns app.
func routerIDOwning(other, prefix, app string) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if Owner([]string{other, id}, app) == id {
			return id
		}
	}
}

// Under load through two routers, the app's queue moves to a router that joins, back when
// it stops cleanly, to it again when it restarts, and back when it is killed; no request
// fails except those the killed router itself held, and no dyno ever holds two.
func TestClusterOneRequestPerDynoAcrossRouters(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	const dynos = 6
	var backends []*backend
	var overlaps atomic.Int32
	for i := 1; i <= dynos; i++ {
		var inflight atomic.Int32
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			if inflight.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer inflight.Add(-1)
			time.Sleep(time.Millisecond) // service time
			io.WriteString(w, "ok")
		})
		backends = append(backends, b)
		register(t, c, "load", fmt.Sprintf("web.%d", i), b, nil, false)
	}
	a := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulCluster]
		cfg.Cluster = true
		cfg.RouterID = "router-a"
	})
	waitFor(t, "router a owns every dyno", func() bool { return a.appStats("load").Dynos == dynos })
	bID := routerIDOwning("router-a", "router-b", "load")

	// Load through router a, and through router b while it is up (requests that find it
	// down go to router a, as a load balancer in front of them would send them).
	var stop atomic.Bool
	var okA, failA, okB, failB atomic.Int64
	var bAddr atomic.Pointer[string]
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for !stop.Load() {
				target, viaB := a.url, false
				if p := bAddr.Load(); p != nil && i%2 == 1 {
					target, viaB = "http://"+*p, true
				}
				req, _ := http.NewRequest("GET", target+"/", nil)
				req.Host = "load.localhost"
				resp, err := client.Do(req)
				if err != nil && viaB {
					var oe *net.OpError
					if errors.As(err, &oe) && oe.Op == "dial" {
						continue // b is down: the load balancer's next try goes to a
					}
				}
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				switch {
				case ok && viaB:
					okB.Add(1)
				case ok:
					okA.Add(1)
				case viaB:
					failB.Add(1)
				default:
					failA.Add(1)
					t.Logf("request through router a failed: %v %v", err, resp)
				}
			}
		}(i)
	}
	defer func() { stop.Store(true); wg.Wait() }()
	servedBoth := func(what string) {
		t.Helper()
		a0, b0 := okA.Load(), okB.Load()
		testutil.WaitFor(t, 20*time.Second, what, func() bool { return okA.Load() > a0+200 && okB.Load() > b0+200 })
	}

	// b joins: the app's queue and all its dynos move to b as their requests end.
	b := startRouterProcess(t, g, bID)
	bAddr.Store(&b.addr)
	testutil.WaitFor(t, 20*time.Second, "router b owns every dyno", func() bool {
		s, err := b.status()
		return err == nil && s.Apps["load"].Dynos == dynos && a.appStats("load").Dynos == 0
	})
	servedBoth("requests through both routers with b owning the app")

	// b stops cleanly and starts again: the queue moves to a and back, and no request
	// through either router fails.
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("router b did not stop cleanly: %v", err)
	}
	if n := failB.Load(); n != 0 {
		t.Errorf("%d requests through router b failed while it stopped", n)
	}
	testutil.WaitFor(t, 20*time.Second, "router a owns every dyno after b stopped", func() bool { return a.appStats("load").Dynos == dynos })
	b = startRouterProcess(t, g, bID)
	bAddr.Store(&b.addr)
	testutil.WaitFor(t, 20*time.Second, "router b owns every dyno again", func() bool {
		s, err := b.status()
		return err == nil && s.Apps["load"].Dynos == dynos && a.appStats("load").Dynos == 0
	})
	servedBoth("requests through both routers after b restarted")
	if n := failA.Load() + failB.Load(); n != 0 {
		t.Errorf("%d requests failed while router b stopped and restarted", n)
	}

	// Kill b: its session ends and a takes the dynos back; a's requests wait meanwhile.
	killed := time.Now()
	b.cmd.Process.Signal(syscall.SIGKILL)
	testutil.WaitFor(t, 40*time.Second, "router a owns every dyno again", func() bool { return a.appStats("load").Dynos == dynos })
	t.Logf("router a took the app back %s after b was killed", time.Since(killed).Round(time.Millisecond))
	before := okA.Load()
	waitFor(t, "requests through router a after the kill", func() bool { return okA.Load() > before+200 })
	stop.Store(true)
	wg.Wait()
	if n := failA.Load(); n != 0 {
		t.Errorf("%d requests through router a failed", n)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("a dyno held two requests at once %d times", n)
	}
	var served int32
	for _, b := range backends {
		served += b.served.Load()
	}
	t.Logf("served %d requests (%d via a, %d via b, %d via b failed when b was killed); no dyno ever held two",
		served, okA.Load(), okB.Load(), failB.Load())
}

// Requests for one app through two routers wait in one FIFO queue: the router that does
// not own the app forwards them to the one that does, where they are served in the
// order they arrived, whichever router they came through.
func TestClusterOneQueueAcrossRouters(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	started := make(chan struct{}, 1)
	var mu sync.Mutex
	var order []string
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n := r.URL.Query().Get("n")
		if n == "" {
			io.WriteString(w, "ok")
			return
		}
		mu.Lock()
		order = append(order, n)
		mu.Unlock()
		if n == "0" {
			started <- struct{}{}
			<-gate
		}
		io.WriteString(w, n)
	})
	register(t, c, "fifo", "web.1", b, nil, false)
	var routers []*testRouter
	for _, id := range []string{"ra", "rb"} {
		routers = append(routers, startRouter(t, func(cfg *Config) {
			cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulCluster]
			cfg.Cluster = true
			cfg.RouterID = id
		}))
	}
	waitFor(t, "one router owns the dyno and both route the app", func() bool {
		return routers[0].appStats("fifo").Dynos+routers[1].appStats("fifo").Dynos == 1 &&
			routes(routers[0], "fifo.localhost") == 200 && routes(routers[1], "fifo.localhost") == 200
	})
	owner := routers[0]
	if owner.appStats("fifo").Dynos == 0 {
		owner = routers[1]
	}
	const n = 7
	got := make(chan string, n)
	send := func(i int) {
		go func() {
			resp, body := routers[i%2].do(t, "GET", "fifo.localhost", fmt.Sprintf("/?n=%d", i), nil, nil)
			got <- fmt.Sprintf("%d:%d:%s", i, resp.StatusCode, body)
		}()
	}
	send(0)
	<-started
	for i := 1; i < n; i++ {
		send(i)
		waitFor(t, fmt.Sprintf("request %d waits in the owner's queue", i), func() bool { return owner.waiting("fifo") == i })
	}
	close(gate)
	for i := 0; i < n; i++ {
		r := <-got
		var idx, status int
		var body string
		fmt.Sscanf(strings.ReplaceAll(r, ":", " "), "%d %d %s", &idx, &status, &body)
		if status != 200 || body != fmt.Sprint(idx) {
			t.Errorf("request %s", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"0", "1", "2", "3", "4", "5", "6"}; !slices.Equal(order, want) {
		t.Errorf("the dyno served %v, want the arrival order %v", order, want)
	}
}

func TestClusterForwardsAppsWithoutOwnedDynos(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		if got := r.Header.Get("X-Forwarded-For"); r.URL.Path == "/xff" && got != "10.0.0.1, 127.0.0.1" {
			t.Errorf("the dyno got X-Forwarded-For %q, want the client's chain and its address only", got)
		}
		io.WriteString(w, "ok")
	})
	register(t, c, "solo", "web.1", b, map[string]string{"domains": "www.solo.test"}, false)
	ra := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulCluster]
		cfg.Cluster = true
		cfg.RouterID = "ra"
	})
	rb := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulCluster]
		cfg.Cluster = true
		cfg.RouterID = "rb"
	})
	knows := func(tr *testRouter) bool { _, ok := tr.Status().Apps["solo"]; return ok }
	waitFor(t, "both routers know the app and one owns its dyno", func() bool {
		return knows(ra) && knows(rb) && ra.appStats("solo").Dynos+rb.appStats("solo").Dynos == 1 &&
			routes(ra, "solo.localhost") == 200 && routes(rb, "solo.localhost") == 200
	})
	// The app's custom domain routes at both: the router without the app's dyno knows
	// the domain all the same, and forwards its requests.
	for _, tr := range []*testRouter{ra, rb} {
		if code := routes(tr, "www.solo.test"); code != 200 {
			t.Errorf("router %s answered the app's custom domain with %d, want 200", tr.cluster.id, code)
		}
	}
	// Both routers serve the app; the one without its dyno forwards to the other, and the
	// dyno never holds two requests.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tr := ra
			if i%2 == 1 {
				tr = rb
			}
			for j := 0; j < 20; j++ {
				xff := http.Header{"X-Forwarded-For": {"10.0.0.1"}}
				if resp, body := tr.do(t, "GET", "solo.localhost", "/xff", nil, xff); resp.StatusCode != 200 || body != "ok" {
					t.Errorf("router %d: %d %q", i%2, resp.StatusCode, body)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	fwd, owner := ra, rb
	if ra.appStats("solo").Dynos == 1 {
		fwd, owner = rb, ra
	}
	waitFor(t, "forward logged", func() bool { return fwd.logHas("dyno=router:", "status=200") })

	// A request forwarded to the router that owns none of the dynos (ownership moved
	// while it was on its way) is handed back at once, not held.
	start := time.Now()
	resp, _ := fwd.do(t, "GET", "solo.localhost", "/", nil, http.Header{HopHeader: {owner.cluster.id}, PeerKeyHeader: {owner.cluster.key}})
	if resp.StatusCode != 503 || resp.Header.Get(NotOwnerHeader) == "" || time.Since(start) > 2*time.Second {
		t.Fatalf("forwarded request to the non-owner: %d, %s %q after %s; want 503 with it at once",
			resp.StatusCode, NotOwnerHeader, resp.Header.Get(NotOwnerHeader), time.Since(start))
	}
	// The router it came from serves, logs and counts it: the hand-back is no error.
	if fwd.logHas("Dynos owned by another router") {
		t.Errorf("the hand-back was logged as an error:\n%s", fwd.logs.String())
	}
}

// When the router owning all of an app's dynos dies, the live router holds the app's
// requests until it has taken the dynos over, instead of answering H10 meanwhile.
func TestClusterHoldsRequestsDuringTakeover(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	register(t, c, "heldapp", "web.1", b, nil, false)
	// Router IDs such that the router about to die owns the dyno.
	live := "live-0"
	dying := routerIDOwning(live, "dying", "heldapp")
	ra := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulCluster]
		cfg.Cluster = true
		cfg.RouterID = live
	})
	rb := startRouterProcess(t, g, dying)
	testutil.WaitFor(t, 30*time.Second, "the dying router owns the dyno and the live one forwards to it", func() bool {
		s, err := rb.status()
		return err == nil && s.Apps["heldapp"].Dynos == 1 && routes(ra, "heldapp.localhost") == 200 && ra.appStats("heldapp").Dynos == 0
	})

	killed := time.Now()
	rb.cmd.Process.Signal(syscall.SIGKILL)
	rb.cmd.Wait()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, body := ra.do(t, "GET", "heldapp.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "ok" {
				t.Errorf("a request during the takeover got %d %q", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	t.Logf("requests sent as the owning router died were served %s after the kill", time.Since(killed).Round(time.Millisecond))
	if ra.appStats("heldapp").Dynos != 1 {
		t.Errorf("the live router does not own the dyno after serving through the takeover")
	}
}

// A peer that turns out to own none of an app's dynos hands a forwarded request back;
// the router then serves it itself once it has the dynos.
func TestBouncedForwardServedHere(t *testing.T) {
	t.Parallel()
	bounced := make(chan struct{}, 1)
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(NotOwnerHeader, "peer")
		w.WriteHeader(http.StatusServiceUnavailable)
		select {
		case bounced <- struct{}{}:
		default:
		}
	}))
	defer peer.Close()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served here") })
	tr := startRouter(t, nil)
	forwardApp(tr, "fw", peer.Listener.Addr().String())
	got := make(chan string, 1)
	go func() {
		resp, body := tr.do(t, "GET", "fw.localhost", "/", nil, nil)
		got <- fmt.Sprint(resp.StatusCode, " ", body)
	}()
	select {
	case <-bounced:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the peer")
	}
	waitFor(t, "the bounced request waits here", func() bool { return tr.waiting("fw") == 1 })
	tr.SetApp("fw", []Instance{b.instance("web.1")})
	select {
	case s := <-got:
		if s != "200 served here" {
			t.Fatalf("bounced request got %q, want 200 from the local dyno", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bounced request not served")
	}
}

// A request whose body is streamed (longer than the prefetch) survives a hand-back too:
// it goes to the peer with "Expect: 100-continue", the peer hands it back without the
// body, and the router serves it itself once it has the dynos, body whole.
func TestBouncedStreamedBodyServedHere(t *testing.T) {
	t.Parallel()
	atPeer := make(chan string, 1)
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(NotOwnerHeader, "peer")
		w.WriteHeader(http.StatusServiceUnavailable)
		select {
		case atPeer <- r.Header.Get("Expect"):
		default:
		}
	}))
	defer peer.Close()
	b, records := recordingBackend(t)
	tr := startRouter(t, func(c *Config) { c.BodyPrefetch = 16 })
	forwardApp(tr, "fws", peer.Listener.Addr().String())
	body := strings.Repeat("0123456789", 100)
	got := make(chan string, 1)
	go func() {
		resp, _ := tr.do(t, "POST", "fws.localhost", "/up", strings.NewReader(body), nil)
		got <- fmt.Sprint(resp.StatusCode)
	}()
	select {
	case expect := <-atPeer:
		if expect != "100-continue" {
			t.Errorf("the streamed request reached the peer with Expect %q, want 100-continue", expect)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the peer")
	}
	waitFor(t, "the bounced request waits here", func() bool { return tr.waiting("fws") == 1 })
	tr.SetApp("fws", []Instance{b.instance("web.1")})
	select {
	case s := <-got:
		if s != "200" {
			t.Fatalf("bounced streamed request got %s, want 200 from the local dyno", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bounced streamed request not served")
	}
	if recs := records(); len(recs) != 1 || recs[0] != "POST /up="+body {
		t.Errorf("the dyno got %d requests, want the upload whole once", len(recs))
	}
}

// A router that owns neither an app's queue nor any of its dynos hands a peer's request
// back before it reads the body: it answers a request that expects 100 Continue with
// the hand-back, never with the 100.
func TestHandBackBeforeBody(t *testing.T) {
	t.Parallel()
	tr := startRouter(t, nil)
	forwardApp(tr, "hb", "127.0.0.1:1")
	c, br := clientConnTo(t, tr.Addr())
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: hb.localhost\r\n"+HopHeader+": peer\r\n"+PeerKeyHeader+": "+peerKey+"\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n")
	resp, _ := readResp(t, br, "POST")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(NotOwnerHeader) != "me" {
		t.Fatalf("got %d with %s %q; want the hand-back (503 naming this router) before the body",
			resp.StatusCode, NotOwnerHeader, resp.Header.Get(NotOwnerHeader))
	}
	if tr.logHas("code=H10") {
		t.Errorf("the hand-back was logged as an error:\n%s", tr.logs.String())
	}
}

// A request held on a view of the owners that a move has made old routes again at once:
// the move (redirect) may come between its last look at the owner and its joining the
// queue, when no redirect can reach it.
func TestHoldAfterAMoveRoutesAgain(t *testing.T) {
	t.Parallel()
	rig := newLeaseRig(t)
	h := rig.a.holdHere()
	rig.a.redirect() // the app moved to another router, its queue empty
	start := time.Now()
	_, _, qe := rig.a.acquire(context.Background(), false, h, time.Minute, nil, nil)
	if qe == nil || qe.code != H10 || !qe.moved {
		t.Fatalf("a hold taken before the move: %+v, want H10 moved at once", qe)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("it waited %s", waited)
	}
	// A hold taken after the move waits (here until its wait runs out: H10, not moved).
	_, _, qe = rig.a.acquire(context.Background(), false, rig.a.holdHere(), 10*time.Millisecond, nil, nil)
	if qe == nil || qe.code != H10 || qe.moved {
		t.Fatalf("a hold taken after the move: %+v, want it to wait (H10 when the wait runs out)", qe)
	}
}

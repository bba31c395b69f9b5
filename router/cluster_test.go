package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
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

func TestClusterOneRequestPerDynoAcrossRouters(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	const dynos = 6
	var backends []*backend
	for i := 1; i <= dynos; i++ {
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond)
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

	// Load through router a while router b joins, takes its share, and is killed.
	var stop atomic.Bool
	var okA, failA, okB atomic.Int64
	var bAddr atomic.Pointer[string]
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
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
				if err != nil {
					if !viaB {
						failA.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200 && viaB:
					okB.Add(1)
				case resp.StatusCode == 200:
					okA.Add(1)
				case !viaB:
					failA.Add(1)
				}
			}
		}(i)
	}
	defer func() { stop.Store(true); wg.Wait() }()

	b := startRouterProcess(t, g, "router-b")
	waitFor(t, "routers share the dynos", func() bool {
		s, err := b.status()
		return err == nil && s.Apps["load"].Dynos > 0 && s.Apps["load"].Dynos+a.appStats("load").Dynos == dynos
	})
	bAddr.Store(&b.addr)
	waitFor(t, "requests through router b", func() bool { return okB.Load() > 200 })
	before := okA.Load()
	waitFor(t, "requests through router a", func() bool { return okA.Load() > before+200 })

	// Kill b: its session expires and a takes its dynos back.
	killed := time.Now()
	b.cmd.Process.Signal(syscall.SIGKILL)
	waitFor2(t, 40*time.Second, "router a owns every dyno again", func() bool { return a.appStats("load").Dynos == dynos })
	t.Logf("router a took router b's dynos back %s after b was killed", time.Since(killed).Round(time.Millisecond))
	before = okA.Load()
	waitFor(t, "requests through router a after the kill", func() bool { return okA.Load() > before+200 })
	stop.Store(true)
	wg.Wait()
	if n := failA.Load(); n != 0 {
		t.Errorf("%d requests through router a failed", n)
	}
	var served int32
	for _, b := range backends {
		served += b.served.Load()
	}
	t.Logf("served %d requests (%d via a, %d via b); no dyno ever held two", served, okA.Load(), okB.Load())
}

func waitFor2(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = context.Background

func TestClusterForwardsAppsWithoutOwnedDynos(t *testing.T) {
	t.Parallel()
	g := harness.Consul(t)
	c, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		io.WriteString(w, "ok")
	})
	register(t, c, "solo", "web.1", b, nil, false)
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
				if resp, body := tr.do(t, "GET", "solo.localhost", "/", nil, nil); resp.StatusCode != 200 || body != "ok" {
					t.Errorf("router %d: %d %q", i%2, resp.StatusCode, body)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	fwd := ra
	if ra.appStats("solo").Dynos == 1 {
		fwd = rb
	}
	waitFor(t, "forward logged", func() bool { return fwd.logHas("dyno=router:", "status=200") })

	// A request forwarded to the router that owns none of the dynos (ownership moved
	// while it was on its way) is handed back at once, not held.
	start := time.Now()
	resp, _ := fwd.do(t, "GET", "solo.localhost", "/", nil, http.Header{HopHeader: {"peer"}})
	if resp.StatusCode != 503 || resp.Header.Get(NotOwnerHeader) == "" || time.Since(start) > 2*time.Second {
		t.Fatalf("forwarded request to the non-owner: %d, %s %q after %s; want 503 with it at once",
			resp.StatusCode, NotOwnerHeader, resp.Header.Get(NotOwnerHeader), time.Since(start))
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
	id := register(t, c, "heldapp", "web.1", b, nil, false)
	// Router IDs such that the router about to die owns the dyno.
	live, dying := "live-0", "dying-0"
	for i := 1; Owner([]string{live, dying}, id) != dying; i++ {
		dying = fmt.Sprintf("dying-%d", i)
	}
	ra := startRouter(t, func(cfg *Config) {
		cfg.ConsulAddr, cfg.ConsulToken = g.Options.ConsulAddr(), harness.Tokens(t, g).Consul[policies.ConsulCluster]
		cfg.Cluster = true
		cfg.RouterID = live
	})
	rb := startRouterProcess(t, g, dying)
	waitFor2(t, 30*time.Second, "the dying router owns the dyno and the live one forwards to it", func() bool {
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

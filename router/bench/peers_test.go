package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router/loadgen"
)

// proc is a proxy process under test.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func addrs(bs []*loadgen.Backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Addr)
	}
	return out
}

func start(tb testing.TB, name string, cmd *exec.Cmd, addr string) *proc {
	tb.Helper()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("failed to start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, addr: addr}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testutil.WaitFor(tb, 30*time.Second, name+" to listen on "+addr, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	return p
}

// startRouter builds and runs dyno-router with a static route to the backends.
func startRouter(tb testing.TB, bs []*loadgen.Backend) *proc { return startRouterOn(tb, bs, -1) }

// startRouterOn is startRouter with the router pinned to one core (none when core < 0).
func startRouterOn(tb testing.TB, bs []*loadgen.Backend, core int) *proc {
	return startRouterWith(tb, bs, core)
}

// startRouterWith is startRouterOn with extra flags.
func startRouterWith(tb testing.TB, bs []*loadgen.Backend, core int, extra ...string) *proc {
	tb.Helper()
	bin := buildBin(tb, "github.com/dynogrid/dynogrid/cmd/dyno-router")
	return startRouterBin(tb, "dyno-router", bin, bs, core, extra...)
}

// startGoroutineRouterOn is startRouterOn with the router serving a goroutine per
// connection instead of on its event loop (-event-loop=false).
func startGoroutineRouterOn(tb testing.TB, bs []*loadgen.Backend, core int) *proc {
	tb.Helper()
	bin := buildBin(tb, "github.com/dynogrid/dynogrid/cmd/dyno-router")
	return startRouterBin(tb, "dyno-router -event-loop=false", bin, bs, core, "-event-loop=false")
}

// buildBin builds the command pkg and returns its path.
func buildBin(tb testing.TB, pkg string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), path.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		tb.Fatalf("failed to build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startEpollPeerOn runs the benchmark peer epollpeer (a minimal queueing proxy on an
// epoll loop of its own, waiting in epoll_pwait on its thread) in front of the
// backends, pinned to core (none when core < 0).
func startEpollPeerOn(tb testing.TB, bs []*loadgen.Backend, core int) *proc {
	return startEpollPeerWith(tb, "Go epoll peer", "raw", bs, core)
}

// startEvloopPeerOn is startEpollPeerOn with the peer's loop on package evloop, which
// waits parked in Go's poller and holds no thread meanwhile: the loop a router whose
// other goroutines need the same core can use.
func startEvloopPeerOn(tb testing.TB, bs []*loadgen.Backend, core int) *proc {
	return startEpollPeerWith(tb, "Go evloop peer", "go", bs, core)
}

func startEpollPeerWith(tb testing.TB, name, wait string, bs []*loadgen.Backend, core int) *proc {
	tb.Helper()
	bin := buildBin(tb, "github.com/dynogrid/dynogrid/router/bench/epollpeer")
	addr := freeAddr(tb)
	argv := pinned(core, bin, "-wait", wait, "-listen", addr, "-backends", strings.Join(addrs(bs), ","))
	return start(tb, name, exec.Command(argv[0], argv[1:]...), addr)
}

// startRouterBin runs the dyno-router binary bin (as name) with a static route to the
// backends, pinned to one core (none when core < 0), with extra flags.
func startRouterBin(tb testing.TB, name, bin string, bs []*loadgen.Backend, core int, extra ...string) *proc {
	tb.Helper()
	addr := freeAddr(tb)
	argv := []string{bin, "-listen", addr, "-consul", "", "-log-level", "warn",
		"-static", "bench=" + strings.Join(addrs(bs), ","), "-max-queue", "100000", "-max-queue-wait", "60s"}
	argv = pinned(core, append(argv, extra...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	if v := os.Getenv("BENCH_ROUTER_GOMAXPROCS"); v != "" {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+v)
	}
	return start(tb, name, cmd, addr)
}

const haproxyBin = "/usr/sbin/haproxy"

// requireHAProxy puts a benchmark against HAProxy in the agent tier (see
// internal/testutil): it needs the Debian package haproxy.
func requireHAProxy(tb testing.TB) {
	tb.Helper()
	testutil.E2E(tb, "runs haproxy (Debian package haproxy)", testutil.Program(haproxyBin))
}

// startHAProxy runs HAProxy with balance (and maxconn 1 per server when single).
func startHAProxy(tb testing.TB, bs []*loadgen.Backend, balance string, single bool) *proc {
	return startHAProxyOn(tb, bs, balance, single, -1)
}

// startHAProxyOn is startHAProxy pinned to one core (none when core < 0).
func startHAProxyOn(tb testing.TB, bs []*loadgen.Backend, balance string, single bool, core int) *proc {
	return startHAProxyWith(tb, "haproxy "+balance, bs, balance, single, core, "", "")
}

// routerHeaders are HAProxy frontend lines that give each request the headers
// dyno-router adds (docs/router.md, Headers): X-Request-Id (the client's when it is
// well formed, else a new UUID), X-Request-Start in Unix microseconds, and
// X-Forwarded-For, -Proto and -Port.
const routerHeaders = `    http-request set-header X-Request-Id %[uuid()] unless { req.hdr(X-Request-Id) -m reg ^[A-Za-z0-9+/=-]{20,200}$ }
    http-request set-header X-Request-Start t=%[date(0,us)]
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port %[dst_port]
`

// startHAProxyAsRouter is startHAProxyOn (leastconn, maxconn 1) adding the router's
// headers to every request, as an operator would configure HAProxy in the router's
// place: the same work per request as the router's, apart from its checks and metrics.
func startHAProxyAsRouter(tb testing.TB, bs []*loadgen.Backend, core int) *proc {
	return startHAProxyWith(tb, "haproxy with the router's headers", bs, "leastconn", true, core, "", routerHeaders)
}

// startHAProxyWith is startHAProxyOn with the frontend's bind line ending in bind (TLS
// settings, for example) and the frontend lines frontend after it.
func startHAProxyWith(tb testing.TB, name string, bs []*loadgen.Backend, balance string, single bool, core int, bind, frontend string) *proc {
	tb.Helper()
	bin := haproxyBin
	requireHAProxy(tb)
	addr := freeAddr(tb)
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout queue 120s
    option http-keep-alive
    http-reuse always
frontend fe
    bind %s%s
%s    default_backend be
backend be
    balance %s
`, addr, bind, frontend, balance)
	for i, a := range addrs(bs) {
		fmt.Fprintf(&b, "    server s%d %s", i+1, a)
		if single {
			b.WriteString(" maxconn 1")
		}
		b.WriteString("\n")
	}
	cfg := filepath.Join(tb.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	argv := pinned(core, bin, "-db", "-f", cfg)
	return start(tb, name, exec.Command(argv[0], argv[1:]...), addr)
}

// cpuTime is the CPU a process used so far (user+system), to the nanosecond: the sum of
// its threads' run time (/proc/PID/task/TID/schedstat). A thread that ended is not
// counted; neither proxy ends one while it serves. Without schedstat it is read from
// /proc/PID/stat, in clock ticks (10 ms).
func cpuTime(pid int) (time.Duration, error) {
	if d, err := runTime(pid); err == nil {
		return d, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// runTime is the sum of the run times of a process's threads, from schedstat.
func runTime(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if os.IsNotExist(err) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat: empty", dir, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", dir, t.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

var _ = http.StatusOK

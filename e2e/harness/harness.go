// Package harness starts real Consul and Nomad agents for one test and tears them down
// with t.Cleanup, also when the test fails or panics. It builds on internal/devgrid, the
// same code that runs `dyno dev up`.
package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// StartTimeout bounds how long a grid may take to become healthy.
const StartTimeout = 2 * time.Minute

// BinDir is the folder that holds the agents and the project's binaries: $DYNO_BIN_DIR,
// or build/bin at the top of the repository. A test that runs them belongs to the agent
// tier (see internal/testutil): BinDir skips it unless DYNO_E2E=1, and fails it when
// nomad or consul is missing there, since `make test` builds them first.
func BinDir(t testing.TB) string {
	t.Helper()
	testutil.E2E(t, "runs the binaries in build/bin")
	dir := os.Getenv("DYNO_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "build", "bin")
	}
	for _, b := range []string{"nomad", "consul"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("harness: %s not built in %s (run `make agents build`): %v", b, dir, err)
		}
	}
	return dir
}

// RepoRoot is the top of the repository this package was built from.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("harness: cannot find the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RequireRoot puts a test that needs root in the agent tier (see internal/testutil): it
// skips the test unless DYNO_E2E=1, and with DYNO_E2E=1 fails it unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	testutil.E2E(t, "needs root", testutil.Root)
}

// Grid starts Consul and a Nomad server+client on loopback with free ports, its own data
// directory and the project's plugins from BinDir, and returns once both are healthy. It
// is for tests of the agent tier: without DYNO_E2E=1 it skips the test, and with it, it
// fails the test unless it runs as root (the Nomad client isolates tasks). A grid of
// Consul alone (Options.ConsulOnly) needs no root.
func Grid(t testing.TB, opts ...func(*devgrid.Options)) *devgrid.Grid {
	t.Helper()
	var o devgrid.Options
	for _, f := range opts {
		f(&o)
	}
	if o.ConsulOnly {
		testutil.E2E(t, "starts a Consul agent")
	} else {
		testutil.E2E(t, "starts Nomad and Consul agents as root", testutil.Root)
	}
	return start(t, opts...)
}

// start starts the grid that opts describe; see Grid.
func start(t testing.TB, opts ...func(*devgrid.Options)) *devgrid.Grid {
	t.Helper()
	var g *devgrid.Grid
	var err error
	// Free ports are found, then taken: another test may take one in between. A grid
	// whose agent could not bind, or whose ports overlap those given in opts, is started
	// again on other ports.
	for attempt := 1; ; attempt++ {
		// One run for both agents: two runs looked up one after the other can overlap,
		// since each lookup frees its ports again.
		consulPort := freePortRun(t, 7)
		nomadPort := consulPort + 4
		o := devgrid.Options{
			DataDir:    dataDir(t),
			BinDir:     BinDir(t),
			ConsulPort: consulPort,
			NomadPort:  nomadPort,
			// Grids of tests that run at once keep out of each other's cgroups.
			CgroupParent: fmt.Sprintf("dynogrid-e2e-%d", nomadPort),
		}
		for _, f := range opts {
			f(&o)
		}
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		g, err = devgrid.Up(ctx, o)
		cancel()
		if err == nil {
			break
		}
		retry := strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "asked for twice")
		if attempt == 3 || !retry {
			t.Fatalf("harness: grid did not start: %v", err)
		}
		t.Logf("harness: a port was taken meanwhile, starting again: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range g.Agents {
				t.Logf("harness: last lines of %s log:\n%s", a.Name, devgrid.Tail(a.Log, 40))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), devgrid.StopTimeout+10*time.Second)
		defer cancel()
		if err := g.Down(ctx); err != nil {
			t.Errorf("harness: grid did not stop cleanly: %v", err)
		}
	})
	return g
}

// Consul starts a Consul agent alone (for tests that need no Nomad), which needs no root.
// Like Grid, it is for tests of the agent tier.
func Consul(t testing.TB) *devgrid.Grid {
	t.Helper()
	return Grid(t, func(o *devgrid.Options) { o.ConsulOnly = true })
}

// dataDir is a fresh directory outside t.TempDir, because the grid removes its own data
// directory after unmounting what Nomad mounted there.
func dataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dynogrid-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Port runs for agents come from [portsFrom, portsTo): below Nomad's dynamic ports
// (internal/devgrid: 20000 and up) and the kernel's ephemeral ones (32768 and up), so
// that neither dynos nor the many client connections of a load test crowd them out.
const portsFrom, portsTo = 10000, 20000

// handedOut holds the ports freePortRun has returned in this process: a port handed out
// but not yet listened on (a grid's, before it starts) is free to the kernel, and must
// not go to a second caller.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePortRun finds n consecutive free ports on 127.0.0.1, none handed out before in
// this process, and returns the first.
func freePortRun(t testing.TB, n int) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for attempt := 0; attempt < 200; attempt++ {
		base := portsFrom + rand.IntN(portsTo-portsFrom-n)
		ok := true
		for p := base; p < base+n; p++ {
			if handedOut.ports[p] || !portFree(p) {
				ok = false
				break
			}
		}
		if ok {
			for p := base; p < base+n; p++ {
				handedOut.ports[p] = true
			}
			return base
		}
	}
	t.Fatal(fmt.Errorf("harness: no run of %d free ports in [%d, %d)", n, portsFrom, portsTo))
	return 0
}

func portFree(p int) bool {
	for _, network := range []string{"tcp", "udp"} {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if network == "tcp" {
			l, err := net.Listen(network, addr)
			if err != nil {
				return false
			}
			l.Close()
		} else {
			c, err := net.ListenPacket(network, addr)
			if err != nil {
				return false
			}
			c.Close()
		}
	}
	return true
}

// FreePorts returns the first of n consecutive free ports on 127.0.0.1.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	return freePortRun(t, n)
}

// WithRouter runs the grid's router on free ports (see devgrid.Options.RouterPort).
func WithRouter(t testing.TB) func(*devgrid.Options) {
	port := freePortRun(t, 4)
	return func(o *devgrid.Options) { o.RouterPort = port }
}

// CopyExample copies the example Thin app (examples/thin) into a fresh directory named
// name, so that a test can change it or deploy it under its own name.
func CopyExample(t testing.TB, name string) string {
	t.Helper()
	return CopyDir(t, filepath.Join(RepoRoot(t), "examples", "thin"), name)
}

// CopyDir copies the directory src into a fresh directory named name.
func CopyDir(t testing.TB, src, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// Tokens returns the grid's ACL tokens: its management tokens and each component's
// least-privilege token, by the name of its policy file in policies/.
func Tokens(t testing.TB, g *devgrid.Grid) *devgrid.Tokens {
	t.Helper()
	tok, err := g.Tokens()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return tok
}

// WithACME runs the grid's ACME server (Pebble, see devgrid.Options.ACMEPort) on free
// ports, issuing certificates valid for validity (0: Pebble's default).
func WithACME(t testing.TB, validity time.Duration) func(*devgrid.Options) {
	port := freePortRun(t, 4)
	return func(o *devgrid.Options) { o.ACMEPort, o.ACMEValidity = port, validity }
}

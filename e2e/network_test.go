package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/driver/dynonet"
	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/plugins/memcached"
	"golang.org/x/sys/unix"
)

// TestDynoNetworkIsolation runs two apps on a grid and checks, from inside a dyno of
// the first (dyno run), what its network namespace and the driver's firewall let
// through: the router still serves both apps; a server on an "internet" host (a network
// namespace of the test's own, on 198.18.<k>.0/24 behind the machine's routing) is
// reached; the agents' ports on 127.0.0.1 and on the host's addresses, a service on the
// host's addresses, and the other app's dyno (by its bridge address, and by the host's
// addresses and its mapped port) are not; its PostgreSQL and memcached add-ons are.
func TestDynoNetworkIsolation(t *testing.T) {
	pgPort := harness.FreePorts(t, 1)
	g := harness.Grid(t, harness.WithRouter(t), func(o *devgrid.Options) {
		o.PostgresPort = pgPort
		o.ExtraNomadConfig += memcached.NomadClientConfig("")
	})
	o := g.Options
	if o.Network == nil {
		t.Fatal("the grid made no dyno network")
	}
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	inetAddr, inetSeen, hostSide := internetHost(t)

	// Services on the host's addresses that stand for an agent bound there.
	gwService := listen(t, o.Network.Gateway+":0")
	hostService := listen(t, hostSide+":0")

	other := newCLI(t, g, "other")
	otherDir := copyApp(t)
	writeSpec(t, otherDir, webSpec("other", ""))
	other.must("deploy", otherDir)

	c := newCLI(t, g, "hello")
	dir := copyApp(t)
	probe, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "e2e", "testdata", "netprobe.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "netprobe.sh"), probe, 0o755); err != nil {
		t.Fatal(err)
	}
	c.must("deploy", "--addon-dir", o.BinDir, "--addon-config", o.AddonConfig(), dir)
	passingDynos(t, consul, "hello", 2, time.Minute)
	otherDyno := passingDynos(t, consul, "other", 2, time.Minute)["web.1"]

	// (a) The router reaches both apps' dynos.
	for _, app := range []string{"hello", "other"} {
		if code, body := through(t, "http://"+o.RouterAddr(), app+"."+o.RouterDomain, "/health"); code != 200 {
			t.Errorf("GET %s /health through the router = %d %q, want 200", app, code, body)
		}
	}

	// The other app's dyno: its address on the bridge and its port (the same number
	// inside the dyno and on the host).
	otherIP := bridgeAddr(t, g, "other", otherDyno.Service.Port)
	mapped := otherDyno.Service.Port

	open := map[string]string{"internet": inetAddr}
	closed := map[string]string{
		"host-service-on-gateway":     gwService,
		"host-service-on-host-addr":   hostService,
		"other-dyno-bridge":           fmt.Sprintf("%s:%d", otherIP, mapped),
		"other-dyno-via-gateway":      fmt.Sprintf("%s:%d", o.Network.Gateway, mapped),
		"other-dyno-via-host-addr":    fmt.Sprintf("%s:%d", hostSide, mapped),
		"other-dyno-via-loopback":     fmt.Sprintf("127.0.0.1:%d", mapped),
		"router-port-via-gateway":     fmt.Sprintf("%s:%d", o.Network.Gateway, o.RouterPort),
		"postgres-admin-via-loopback": fmt.Sprintf("127.0.0.1:%d", pgPort),
	}
	agentPorts := map[string]int{
		"nomad-http": o.NomadPort, "nomad-rpc": o.NomadPort + 1, "nomad-serf": o.NomadPort + 2,
		"consul-http": o.ConsulPort, "consul-serf-lan": o.ConsulPort + 1, "consul-serf-wan": o.ConsulPort + 2, "consul-server": o.ConsulPort + 3,
	}
	for name, port := range agentPorts {
		for where, addr := range map[string]string{"loopback": "127.0.0.1", "gateway": o.Network.Gateway, "host-addr": hostSide} {
			closed[name+"-via-"+where] = fmt.Sprintf("%s:%d", addr, port)
		}
	}
	// Control: from the host, what stands in for the host's services answers, so a
	// closed connection from the dyno is the firewall's doing.
	for _, addr := range []string{gwService, hostService, inetAddr} {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("control: the host cannot reach %s: %v", addr, err)
		}
		conn.Close()
	}
	before := len(inetSeen())
	args := []string{"run", "--", "bash", "/app/netprobe.sh"}
	for name, addr := range open {
		args = append(args, name+"="+addr)
	}
	for name, addr := range closed {
		args = append(args, name+"="+addr)
	}
	code, out, errOut := c.run(args[0], args[1:]...)
	if code != 0 {
		t.Fatalf("dyno run netprobe: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("netprobe in a dyno of hello:\n%s", out)
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	// (b) outbound to the internet host, which saw the connection.
	for name, addr := range open {
		if !lines[name+" open"] {
			t.Errorf("the dyno could not connect to %s (%s)", name, addr)
		}
	}
	if seen := inetSeen(); len(seen) <= before {
		t.Error("the internet host saw no connection from the dyno")
	} else {
		t.Logf("the internet host saw the dyno's connection from %v (masqueraded to the host's address)", seen[before:])
	}
	// (c), (d) the agents, the host and the other app's dyno.
	for name, addr := range closed {
		if !lines[name+" closed"] {
			t.Errorf("the dyno connected to %s (%s); the firewall must stop it", name, addr)
		}
	}
	// (e) its add-ons.
	if !lines["postgres says 42"] {
		t.Errorf("the dyno did not reach its PostgreSQL add-on:\n%s", out)
	}
	if !lines["memcached says STORED"] {
		t.Errorf("the dyno did not reach its memcached add-on:\n%s", out)
	}
}

// listen accepts and closes connections on addr for the test's duration, and returns
// the address it took.
func listen(t *testing.T, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// bridgeAddr is the bridge address of the app's allocation whose web port is port.
func bridgeAddr(t *testing.T, g *devgrid.Grid, app string, port int) string {
	t.Helper()
	nomad := appNomad(t, g, app)
	stubs, _, err := nomad.Jobs().Allocations(app, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stubs {
		a, _, err := nomad.Allocations().Info(s.ID, nil)
		if err != nil || a.ClientStatus != "running" || a.AllocatedResources == nil {
			continue
		}
		for _, p := range a.AllocatedResources.Shared.Ports {
			if p.Value != port {
				continue
			}
			addr, err := dynonet.Addr(dynonet.DefaultStoreDir, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			return addr.String()
		}
	}
	t.Fatalf("no running allocation of %s with port %d", app, port)
	return ""
}

// internetHost makes a network namespace standing for a host on the internet: a veth
// pair to it, 198.18.<k>.1 on the machine's side and 198.18.<k>.2 inside, where a
// server greets whoever connects. It returns the server's address, a function that
// lists the peers it saw, and the machine's address on the link.
func internetHost(t *testing.T) (string, func() []string, string) {
	t.Helper()
	k := os.Getpid() % 250
	ns := fmt.Sprintf("dginet%d", k)
	host, peer := fmt.Sprintf("dgi%d", k), fmt.Sprintf("dgi%dp", k)
	hostAddr, inetAddr := fmt.Sprintf("198.18.%d.1", k), fmt.Sprintf("198.18.%d.2", k)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	})
	ip("netns", "add", ns)
	ip("link", "add", host, "type", "veth", "peer", "name", peer)
	ip("link", "set", peer, "netns", ns)
	ip("addr", "add", hostAddr+"/24", "dev", host)
	ip("link", "set", host, "up")
	ip("-n", ns, "addr", "add", inetAddr+"/24", "dev", peer)
	ip("-n", ns, "link", "set", peer, "up")
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "route", "add", "default", "via", hostAddr)

	l := listenIn(t, "/var/run/netns/"+ns, inetAddr+":0")
	var mu sync.Mutex
	var seen []string
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, c.RemoteAddr().String())
			mu.Unlock()
			c.Close()
		}
	}()
	return l.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}, hostAddr
}

// listenIn opens a TCP listener in the network namespace at nsPath.
func listenIn(t *testing.T, nsPath, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	l, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		panic(fmt.Sprintf("failed to return to the test's network namespace: %v", err))
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

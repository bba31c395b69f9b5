package dynonet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dynogrid/dynogrid/driver/internal/xtables"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// A namespace as Nomad makes it for a group in mode "none" gets its interface, address
// and host port; a second task of the allocation keeps them; a rule left for the same
// host port is replaced; Detach leaves nothing; a namespace Nomad's bridge mode set up
// is left alone.
func TestAttachPutsANamespaceOnTheBridge(t *testing.T) {
	n, k := testNetwork(t, "dnt", 214, 24)
	bridge := n.Bridge
	if err := n.Install(); err != nil {
		t.Fatalf("a second install: %v", err)
	}
	gateway := fmt.Sprintf("10.214.%d.1", k)
	mac := func() string {
		b, err := os.ReadFile("/sys/class/net/" + bridge + "/address")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	bridgeMAC := mac()
	// A port with a lower MAC address than any random one: a bridge that had not fixed
	// its own would take it.
	low := fmt.Sprintf("dntl%d", k)
	if out, err := exec.Command("ip", "link", "add", low, "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", low+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", low).Run() })
	if out, err := exec.Command("ip", "link", "set", low, "master", bridge, "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set master: %v: %s", err, out)
	}

	nsA, srvA := namespaceWithServer(t, bridge+"a")
	nsB, srvB := namespaceWithServer(t, bridge+"b")
	hostPort := freePort(t)
	allocA, allocB := "aaaaaaaa-0000-4000-8000-"+bridge, "bbbbbbbb-0000-4000-8000-"+bridge

	attached, err := n.Attach(allocA, nsA, []Port{{HostIP: "127.0.0.1", HostPort: hostPort, DynoPort: srvA.port}})
	if err != nil || !attached {
		t.Fatalf("Attach = %v, %v", attached, err)
	}
	addrA, err := Addr(n.StoreDir, allocA)
	if err != nil {
		t.Fatal(err)
	}
	if from := srvA.dial(t, fmt.Sprintf("127.0.0.1:%d", hostPort)); from != gateway {
		t.Errorf("the host port on 127.0.0.1 reached the dyno from %s, want the gateway %s", from, gateway)
	}
	if from := srvA.dial(t, fmt.Sprintf("%s:%d", addrA, srvA.port)); from != gateway {
		t.Errorf("the dyno's own address reached it from %s, want %s", from, gateway)
	}
	// No IPv6 on either end of the veth pair.
	if out, err := exec.Command("ip", "-n", filepath.Base(nsA), "-6", "addr", "show", "dev", "eth0").CombinedOutput(); err != nil || strings.Contains(string(out), "inet6") {
		t.Errorf("the dyno's eth0 has IPv6: %v: %s", err, out)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + HostLink(allocA) + "/disable_ipv6"); err == nil && strings.TrimSpace(string(b)) != "1" {
		t.Errorf("IPv6 is on on the bridge's end %s", HostLink(allocA))
	}

	// Another task of the allocation: same address, the port mapped once.
	if attached, err := n.Attach(allocA, nsA, []Port{{HostIP: "127.0.0.1", HostPort: hostPort, DynoPort: srvA.port}}); err != nil || !attached {
		t.Fatalf("Attach again = %v, %v", attached, err)
	}
	if again, _ := Addr(n.StoreDir, allocA); again != addrA {
		t.Errorf("a second Attach changed the address from %s to %s", addrA, again)
	}
	if rules := portRules(t, bridge); strings.Count(rules, fmt.Sprintf("--dport %d ", hostPort)) != 1 {
		t.Errorf("rules after a second Attach:\n%s", rules)
	}

	// B gets the same host port (A's driver died before it could detach): B's rule
	// replaces A's.
	if _, err := n.Attach(allocB, nsB, []Port{{HostPort: hostPort, DynoPort: srvB.port}}); err != nil {
		t.Fatal(err)
	}
	srvB.dial(t, fmt.Sprintf("127.0.0.1:%d", hostPort))
	if rules := portRules(t, bridge); strings.Contains(rules, allocA) {
		t.Errorf("A's rule for a host port now B's stayed:\n%s", rules)
	}

	for _, id := range []string{allocA, allocB} {
		if err := n.Detach(id); err != nil {
			t.Fatal(err)
		}
		if _, err := Addr(n.StoreDir, id); err == nil {
			t.Errorf("%s keeps its address after Detach", id)
		}
		if _, err := netlink.LinkByName(HostLink(id)); err == nil {
			t.Errorf("%s's veth stayed after Detach", id)
		}
		if err := n.Detach(id); err != nil {
			t.Errorf("a second Detach: %v", err)
		}
	}
	if rules := portRules(t, bridge); strings.Contains(rules, "DNAT") {
		t.Errorf("port rules after Detach:\n%s", rules)
	}
	// Ports came and went: the gateway's MAC address, which dynos keep in their
	// neighbour cache, stayed.
	if now := mac(); now != bridgeMAC {
		t.Errorf("the bridge's MAC address went from %s to %s as dynos came and went", bridgeMAC, now)
	}

	// A namespace with an interface of someone else's (Nomad's CNI plugins) is left alone.
	nsC, _ := namespaceWithServer(t, bridge+"c")
	name := filepath.Base(nsC)
	if out, err := exec.Command("ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add veth: %v: %s", err, out)
	}
	if attached, err := n.Attach("cccccccc-0000-4000-8000-"+bridge, nsC, nil); err != nil || attached {
		t.Errorf("Attach to a namespace set up by another = %v, %v; want false, nil", attached, err)
	}
}

type server struct {
	port  int
	peers chan string
}

// dial connects to addr and returns the address the server saw the connection from.
func (s *server) dial(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	select {
	case p := <-s.peers:
		return p
	case <-time.After(5 * time.Second):
		t.Fatalf("dial %s: the server in the namespace saw no connection", addr)
		return ""
	}
}

// namespaceWithServer makes a network namespace (ip netns add, as Nomad's are, with
// only lo) with a TCP server in it, and returns its path.
func namespaceWithServer(t *testing.T, name string) (string, *server) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	path := "/var/run/netns/" + name
	ln := listenIn(t, path)
	s := &server{port: ln.Addr().(*net.TCPAddr).Port, peers: make(chan string, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			s.peers <- host
			c.Close()
		}
	}()
	return path, s
}

// listenIn listens on every address of the namespace at path.
func listenIn(t *testing.T, path string) net.Listener {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var ln net.Listener
	if err := InNamespace(ns, func() error {
		var lerr error
		ln, lerr = net.Listen("tcp4", "0.0.0.0:0")
		return lerr
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func portRules(t *testing.T, bridge string) string {
	t.Helper()
	chain, _, _ := natChains(bridge)
	out, err := xtables.Output("iptables", "-t", "nat", "-S", chain)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A dyno given the address of one just gone is reached at once: the host does not send
// its packets to the gone dyno's link address, which its neighbour cache held.
func TestAnAddressGivenAgainIsReachedAtOnce(t *testing.T) {
	// A /30: the gateway and one address for a dyno.
	n, k := testNetwork(t, "dnr", 215, 30)
	bridge := n.Bridge
	// Another port keeps the bridge up as dynos come and go (a bridge left without a
	// port loses its carrier, and its neighbour entries with it).
	other := fmt.Sprintf("dnro%d", k)
	if out, err := exec.Command("ip", "link", "add", other, "type", "veth", "peer", "name", other+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", other).Run() })
	for _, args := range [][]string{{"link", "set", other, "master", bridge, "up"}, {"link", "set", other + "p", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	for i, name := range []string{"a", "b"} {
		ns, srv := namespaceWithServer(t, bridge+name)
		id := fmt.Sprintf("%08d-0000-4000-8000-%s", i, bridge)
		if _, err := n.Attach(id, ns, nil); err != nil {
			t.Fatal(err)
		}
		addr, err := Addr(n.StoreDir, id)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		srv.dial(t, fmt.Sprintf("%s:%d", addr, srv.port))
		// A port just made may lose a first SYN (resent after 1 s); a stale neighbour
		// entry loses every packet for 5 s and more, and the dial times out at 3 s.
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("dyno %s at %s answered after %s", name, addr, took)
		}
		if err := n.Detach(id); err != nil {
			t.Fatal(err)
		}
	}
}

// A second task of an allocation whose ports cannot be mapped fails alone: the dyno of
// the first keeps its interface, address and host port.
func TestAFailedSecondAttachLeavesTheFirstTasksNetwork(t *testing.T) {
	n, _ := testNetwork(t, "dnf", 216, 30)
	bridge := n.Bridge
	ns, srv := namespaceWithServer(t, bridge+"a")
	id := "aaaaaaaa-0000-4000-8000-" + bridge
	hostPort := freePort(t)
	t.Cleanup(func() { _ = n.Detach(id) })
	if _, err := n.Attach(id, ns, []Port{{HostIP: "127.0.0.1", HostPort: hostPort, DynoPort: srv.port}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Attach(id, ns, []Port{{HostIP: "127.0.0.1", HostPort: 0, DynoPort: srv.port}}); err == nil {
		t.Fatal("Attach with host port 0 succeeded")
	}
	if _, err := Addr(n.StoreDir, id); err != nil {
		t.Errorf("the first task's address is gone: %v", err)
	}
	if _, err := netlink.LinkByName(HostLink(id)); err != nil {
		t.Errorf("the first task's veth is gone: %v", err)
	}
	srv.dial(t, fmt.Sprintf("127.0.0.1:%d", hostPort))
}

// Install removes the port rules of an allocation whose network namespace is gone (its
// driver was killed before it detached it).
func TestInstallRemovesTheRulesOfAllocationsGone(t *testing.T) {
	n, _ := testNetwork(t, "dno", 217, 30)
	bridge := n.Bridge
	// Nomad names an allocation's namespace after it; this one's is named otherwise,
	// so as far as Install can tell, the allocation is gone.
	ns, srv := namespaceWithServer(t, bridge+"a")
	id := "aaaaaaaa-0000-4000-8000-" + bridge
	t.Cleanup(func() { _ = n.Detach(id) })
	hostPort := freePort(t)
	if _, err := n.Attach(id, ns, []Port{{HostIP: "127.0.0.1", HostPort: hostPort, DynoPort: srv.port}}); err != nil {
		t.Fatal(err)
	}
	if rules := portRules(t, bridge); !strings.Contains(rules, id) {
		t.Fatalf("no rule of %s after Attach:\n%s", id, rules)
	}
	if err := n.Install(); err != nil {
		t.Fatal(err)
	}
	if rules := portRules(t, bridge); strings.Contains(rules, "DNAT") {
		t.Errorf("the rule of an allocation without a namespace stayed:\n%s", rules)
	}
}

// testNetwork installs a network of a bridge of the test's own, named prefix and a
// number k, with the subnet 10.<second>.<k>.0/<bits>, and removes both at the end.
func testNetwork(t *testing.T, prefix string, second, bits int) (*Network, int) {
	t.Helper()
	testutil.E2E(t, "makes a bridge, network namespaces and iptables rules, as root", testutil.Root, testutil.Program("iptables"), testutil.Program("ip"))
	k := rand.IntN(200) + 20
	bridge := fmt.Sprintf("%s%d%03d", prefix, k, rand.IntN(1000))
	n := &Network{Bridge: bridge, Subnet: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/%d", second, k, bits)), StoreDir: t.TempDir()}
	t.Cleanup(func() {
		_ = netlink.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}})
		if err := Remove(bridge); err != nil {
			t.Error(err)
		}
	})
	if err := n.Install(); err != nil {
		t.Fatal(err)
	}
	return n, k
}

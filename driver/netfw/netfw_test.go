package netfw

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/dynogrid/dynogrid/driver/dynonet"

	"github.com/dynogrid/dynogrid/driver/internal/xtables"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"10.0.0.1":                     "10.0.0.1",
		"10.0.0.1:5432":                "10.0.0.1:5432",
		"10.0.0.1:20000-32000":         "10.0.0.1:20000-32000",
		"10.1.0.0/16:11211":            "10.1.0.0/16:11211",
		"10.1.0.0/16":                  "10.1.0.0/16",
		"10.0.0.1:5432,max_conns=20":   "10.0.0.1:5432,max_conns=20",
		"10.1.0.0/16,max_conns=0":      "10.1.0.0/16,max_conns=0",
		"10.0.0.1:1-2,max_conns=65535": "10.0.0.1:1-2,max_conns=65535",
	}
	for in, want := range good {
		e, err := ParseEndpoint(in)
		if err != nil || e.String() != want {
			t.Errorf("ParseEndpoint(%q) = %v, %v; want %s", in, e, err, want)
		}
	}
	bad := map[string]string{
		"":                              "is not ADDR",
		"db.internal":                   "is not ADDR",
		"10.1.0.1/16":                   "host bits set (the network is 10.1.0.0/16)",
		"10.0.0.1:0":                    "is not a port",
		"10.0.0.1:70000":                "is not a port",
		"10.0.0.1:9-8":                  "is not a port or a range",
		"10.0.0.1:x":                    "is not a port",
		"10.0.0.1:5432,max_conns=":      "is not max_conns=N",
		"10.0.0.1:5432,max_conns=65536": "is not max_conns=N",
		"10.0.0.1:5432,conns=5":         "is not max_conns=N",
	}
	for in, want := range bad {
		if _, err := ParseEndpoint(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEndpoint(%q) = %v; want an error with %q", in, err, want)
		}
	}
}

// TestRules checks the order that makes the policy: answers first, then (FORWARD) any
// dyno, then the allowed endpoints (each first refused to a dyno past its cap) and
// nameservers, then the host (INPUT) or the
// internal networks (FORWARD); what is left, the internet, returns to the chains that
// called.
func TestRules(t *testing.T) {
	t.Parallel()
	db, _ := ParseEndpoint("10.9.0.1:5432,max_conns=20")
	mc, _ := ParseEndpoint("10.9.0.1:20000-32000,max_conns=64")
	other, _ := ParseEndpoint("10.8.0.0/16")
	c := Config{
		Bridge:           "dg0",
		InternalNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16")},
		Allowed:          []Endpoint{db, mc, other},
		Nameservers:      []netip.Addr{netip.MustParseAddr("10.255.255.53")},
	}
	want := `*filter
:DYNO-IN-dg0 - [0:0]
:DYNO-FWD-dg0 - [0:0]
-A DYNO-IN-dg0 -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
-A DYNO-IN-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 5432:5432 -m connlimit --connlimit-above 20 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-IN-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 5432:5432 -j RETURN
-A DYNO-IN-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 20000:32000 -m connlimit --connlimit-above 64 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-IN-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 20000:32000 -j RETURN
-A DYNO-IN-dg0 -d 10.8.0.0/16 -p tcp -j RETURN
-A DYNO-IN-dg0 -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN
-A DYNO-IN-dg0 -d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN
-A DYNO-IN-dg0 -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-FWD-dg0 -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
-A DYNO-FWD-dg0 -o dg0 -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-FWD-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 5432:5432 -m connlimit --connlimit-above 20 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-FWD-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 5432:5432 -j RETURN
-A DYNO-FWD-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 20000:32000 -m connlimit --connlimit-above 64 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-FWD-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 20000:32000 -j RETURN
-A DYNO-FWD-dg0 -d 10.8.0.0/16 -p tcp -j RETURN
-A DYNO-FWD-dg0 -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN
-A DYNO-FWD-dg0 -d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN
-A DYNO-FWD-dg0 -d 10.0.0.0/8 -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-FWD-dg0 -d 169.254.0.0/16 -j REJECT --reject-with icmp-admin-prohibited
COMMIT
`
	if got := c.Rules(); got != want {
		t.Errorf("rules:\n%s\nwant:\n%s", got, want)
	}
	if got := c.Rules6(); !strings.Contains(got, "-A DYNO-IN-dg0 -j REJECT --reject-with icmp6-adm-prohibited") ||
		!strings.Contains(got, "-A DYNO-FWD-dg0 -j REJECT --reject-with icmp6-adm-prohibited") {
		t.Errorf("IPv6 rules do not reject new connections from the bridge:\n%s", got)
	}
}

func TestNameservers(t *testing.T) {
	t.Parallel()
	p := t.TempDir() + "/resolv.conf"
	if err := writeFile(p, "# x\nnameserver 10.0.0.2\nnameserver ::1\nsearch example\nnameserver 127.0.0.53\n"); err != nil {
		t.Fatal(err)
	}
	ns, err := Nameservers(p)
	if err != nil || len(ns) != 2 || ns[0].String() != "10.0.0.2" || ns[1].String() != "127.0.0.53" {
		t.Errorf("Nameservers = %v, %v; want the two IPv4 ones", ns, err)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }

// TestInstallKeepsTheJumpsFirst installs the chains of a bridge of its own for real,
// puts a rule above their jumps as the CNI firewall plugin does, and checks that
// EnsureFirst moves them back to the top and Remove leaves nothing.
func TestInstallKeepsTheJumpsFirst(t *testing.T) {
	testutil.E2E(t, "changes iptables, as root", testutil.Root, testutil.Program("iptables"))
	bridge := fmt.Sprintf("dgfw%d", os.Getpid()%100000)
	in, fwd := Chains(bridge)
	t.Cleanup(func() {
		_ = exec.Command("iptables", "-w", "5", "-D", "FORWARD", "-i", bridge, "-j", "ACCEPT").Run()
		_ = Remove(bridge)
	})
	c := Config{Bridge: bridge, InternalNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if err := Install(c); err != nil {
		t.Fatal(err)
	}
	if err := Install(c); err != nil {
		t.Fatalf("a second Install failed: %v", err)
	}
	// first is the chain's first rule, other bridges' jumps aside: tests and dynos of
	// other packages install theirs on this host at the same time, at the top too.
	first := func(cmd, chain string) string {
		out, err := xtables.Output(cmd, "-S", chain)
		if err != nil {
			t.Fatal(err)
		}
		for _, rule := range strings.Split(out, "\n")[1:] {
			if strings.Contains(rule, " -j DYNO-") && !strings.Contains(rule, " -i "+bridge+" ") {
				continue
			}
			return rule
		}
		return ""
	}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		if got, want := first(cmd, "INPUT"), "-A INPUT -i "+bridge+" -j "+in; got != want {
			t.Errorf("%s: INPUT starts with %q, want %q", cmd, got, want)
		}
		if got, want := first(cmd, "FORWARD"), "-A FORWARD -i "+bridge+" -j "+fwd; got != want {
			t.Errorf("%s: FORWARD starts with %q, want %q", cmd, got, want)
		}
	}
	if out, _ := xtables.Output("iptables", "-S", fwd); !strings.Contains(out, "-A "+fwd+" -d 10.0.0.0/8 -j REJECT") {
		t.Errorf("the FORWARD chain lacks the internal network:\n%s", out)
	}
	if err := xtables.Run("iptables", "", "-I", "FORWARD", "1", "-i", bridge, "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}
	if err := EnsureFirst(bridge); err != nil {
		t.Fatal(err)
	}
	if got, want := first("iptables", "FORWARD"), "-A FORWARD -i "+bridge+" -j "+fwd; got != want {
		t.Errorf("after EnsureFirst FORWARD starts with %q, want %q", got, want)
	}
	out, _ := xtables.Output("iptables", "-S", "FORWARD")
	if n, _ := countRule(out, "-A FORWARD -i "+bridge+" -j "+fwd); n != 1 {
		t.Errorf("the jump stands %d times in FORWARD:\n%s", n, out)
	}
	if err := xtables.Run("iptables", "", "-D", "FORWARD", "-i", bridge, "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(bridge); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		if out, _ := xtables.Output(cmd, "-S"); strings.Contains(out, bridge+" ") || strings.Contains(out, in) {
			t.Errorf("%s: rules of %s remain after Remove:\n%s", cmd, bridge, out)
		}
	}
}

func TestCountRuleLetsOtherBridgesJumpsStandAbove(t *testing.T) {
	rule := "-A FORWARD -i br1 -j DYNO-FWD-br1"
	for _, tc := range []struct {
		listing string
		n       int
		first   bool
	}{
		{"-P FORWARD ACCEPT\n" + rule + "\n-A FORWARD -j CNI-FORWARD", 1, true},
		{"-P FORWARD ACCEPT\n-A FORWARD -i br2 -j DYNO-FWD-br2\n-A FORWARD -i br3 -j DYNO-FWD-br3\n" + rule, 1, true},
		{"-P FORWARD ACCEPT\n-A FORWARD -j CNI-FORWARD\n" + rule, 1, false},
		{"-P FORWARD ACCEPT\n-A FORWARD -i br2 -j ACCEPT\n" + rule, 1, false},
		{"-P FORWARD ACCEPT\n" + rule + "\n" + rule, 2, true},
		{"-P FORWARD ACCEPT\n-A FORWARD -j CNI-FORWARD", 0, false},
	} {
		if n, first := countRule(tc.listing, rule); n != tc.n || first != tc.first {
			t.Errorf("countRule(%q) = %d, %v; want %d, %v", tc.listing, n, first, tc.n, tc.first)
		}
	}
}

// TestEachDynoIsCappedAtAnEndpoint makes a bridge with two dynos' network namespaces on
// it, a server on the bridge's gateway allowed with max_conns=3, and opens connections
// for real: the first dyno gets 3 and its fourth is refused at once, while the second
// dyno still gets its own; a connection closed frees its slot. Without the cap, one dyno
// holds every slot of a server other apps share (PostgreSQL's max_connections,
// memcached's -c) before it logs in.
func TestEachDynoIsCappedAtAnEndpoint(t *testing.T) {
	testutil.E2E(t, "makes a bridge, network namespaces and iptables rules, as root",
		testutil.Root, testutil.Program("iptables"), testutil.Program("ip"))
	k := os.Getpid()%200 + 20
	bridge := fmt.Sprintf("dgcl%d", os.Getpid()%100000)
	gateway := fmt.Sprintf("10.216.%d.1", k)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("link", "add", bridge, "type", "bridge")
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", bridge).Run()
		_ = Remove(bridge)
	})
	ip("addr", "add", gateway+"/24", "dev", bridge)
	ip("link", "set", bridge, "up")
	dyno := func(name string, host int) string {
		ns := bridge + name
		ip("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ip("link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ip("link", "set", ns, "master", bridge, "up")
		ip("-n", ns, "addr", "add", fmt.Sprintf("10.216.%d.%d/24", k, host), "dev", "eth0")
		ip("-n", ns, "link", "set", "eth0", "up")
		ip("-n", ns, "link", "set", "lo", "up")
		return "/var/run/netns/" + ns
	}
	nsA, nsB := dyno("a", 2), dyno("b", 3)

	// The add-on: it holds every connection open until its client closes it.
	ln, err := net.Listen("tcp4", gateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	addr := ln.Addr().String()
	e, err := ParseEndpoint(addr + ",max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	if err := Install(Config{Bridge: bridge, Allowed: []Endpoint{e}, InternalNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}); err != nil {
		t.Fatal(err)
	}

	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := 1; i <= 3; i++ {
		c, err := dialIn(t, nsA, addr)
		if err != nil {
			t.Fatalf("dyno A's connection %d of 3: %v", i, err)
		}
		held = append(held, c)
	}
	if c, err := dialIn(t, nsA, addr); err == nil {
		c.Close()
		t.Fatalf("dyno A opened a 4th connection to %s, past max_conns=3", addr)
	} else if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("dyno A's 4th connection failed with %v, want the firewall's rejection (no route to host)", err)
	}
	c, err := dialIn(t, nsB, addr)
	if err != nil {
		t.Fatalf("dyno B, while A holds its 3: %v", err)
	}
	held = append(held, c)

	// A closes one: once the server has closed its end, A may open another.
	held[0].Close()
	testutil.WaitFor(t, 10*time.Second, "dyno A to get a slot back after closing a connection", func() bool {
		c, err := dialIn(t, nsA, addr)
		if err != nil {
			return false
		}
		held = append(held, c)
		return true
	})
}

// dialIn connects to addr from the network namespace at path.
func dialIn(t *testing.T, path, addr string) (net.Conn, error) {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var c net.Conn
	err = dynonet.InNamespace(ns, func() error {
		var derr error
		c, derr = net.DialTimeout("tcp4", addr, 5*time.Second)
		return derr
	})
	return c, err
}

package netfw

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/dynogrid/dynogrid/driver/internal/xtables"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"10.0.0.1":             "10.0.0.1",
		"10.0.0.1:5432":        "10.0.0.1:5432",
		"10.0.0.1:20000-32000": "10.0.0.1:20000-32000",
		"10.1.0.0/16:11211":    "10.1.0.0/16:11211",
		"10.1.0.0/16":          "10.1.0.0/16",
	}
	for in, want := range good {
		e, err := ParseEndpoint(in)
		if err != nil || e.String() != want {
			t.Errorf("ParseEndpoint(%q) = %v, %v; want %s", in, e, err, want)
		}
	}
	bad := map[string]string{
		"":               "is not ADDR",
		"db.internal":    "is not ADDR",
		"10.1.0.1/16":    "host bits set (the network is 10.1.0.0/16)",
		"10.0.0.1:0":     "is not a port",
		"10.0.0.1:70000": "is not a port",
		"10.0.0.1:9-8":   "is not a port or a range",
		"10.0.0.1:x":     "is not a port",
	}
	for in, want := range bad {
		if _, err := ParseEndpoint(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEndpoint(%q) = %v; want an error with %q", in, err, want)
		}
	}
}

// TestRules checks the order that makes the policy: answers first, then (FORWARD) any
// dyno, then the allowed endpoints and nameservers, then the host (INPUT) or the
// internal networks (FORWARD); what is left, the internet, returns to the chains that
// called.
func TestRules(t *testing.T) {
	t.Parallel()
	db, _ := ParseEndpoint("10.9.0.1:5432")
	mc, _ := ParseEndpoint("10.9.0.1:20000-32000")
	c := Config{
		Bridge:           "dg0",
		InternalNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16")},
		Allowed:          []Endpoint{db, mc},
		Nameservers:      []netip.Addr{netip.MustParseAddr("10.255.255.53")},
	}
	want := `*filter
:DYNO-IN-dg0 - [0:0]
:DYNO-FWD-dg0 - [0:0]
-A DYNO-IN-dg0 -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
-A DYNO-IN-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 5432:5432 -j RETURN
-A DYNO-IN-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 20000:32000 -j RETURN
-A DYNO-IN-dg0 -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN
-A DYNO-IN-dg0 -d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN
-A DYNO-IN-dg0 -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-FWD-dg0 -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
-A DYNO-FWD-dg0 -o dg0 -j REJECT --reject-with icmp-admin-prohibited
-A DYNO-FWD-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 5432:5432 -j RETURN
-A DYNO-FWD-dg0 -d 10.9.0.1/32 -p tcp -m tcp --dport 20000:32000 -j RETURN
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

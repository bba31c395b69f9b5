// Package netfw is the dyno driver's firewall: iptables rules that limit what a dyno, in
// its own network namespace on a Nomad bridge, may connect to. New connections from the
// bridge to the host itself, to another dyno on the bridge (also through a host port
// that Nomad's CNI portmap sends back onto the bridge) and to the grid's internal
// networks are rejected, except to the endpoints the operator allows (the add-ons) and
// to the host's DNS servers. Every other destination (the internet) is allowed.
//
// The rules live in chains of their own, one pair per bridge (DYNO-IN-<bridge> from
// INPUT and DYNO-FWD-<bridge> from FORWARD, with IPv6 counterparts that reject every new
// connection from the bridge), and are replaced atomically with iptables-restore.
package netfw

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/dynogrid/dynogrid/driver/internal/xtables"
)

// DefaultInternalNetworks are the networks a dyno may not reach unless allowed: the
// private (RFC 1918), shared (RFC 6598) and link-local (cloud metadata) ranges.
var DefaultInternalNetworks = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"}

// Endpoint is a TCP destination dynos may open connections to: an address or network
// and a port range (0-65535 when the rule names no port), and how many connections one
// dyno may hold open to it at once.
type Endpoint struct {
	Net      netip.Prefix
	From, To uint16
	// MaxConns is how many connections one dyno (one source address) may hold open to
	// the endpoint at once; a new one past it is rejected. 0: no cap. Unset (-1 from
	// ParseEndpoint): the driver's default.
	MaxConns int
}

// UnsetMaxConns is an Endpoint's MaxConns when its rule names none.
const UnsetMaxConns = -1

// MaxConnsLimit is the highest cap an endpoint may name.
const MaxConnsLimit = 65535

func (e Endpoint) String() string {
	s := e.Net.String()
	if e.Net.IsSingleIP() {
		s = e.Net.Addr().String()
	}
	switch {
	case e.From == 0 && e.To == 65535:
	case e.From == e.To:
		s = fmt.Sprintf("%s:%d", s, e.From)
	default:
		s = fmt.Sprintf("%s:%d-%d", s, e.From, e.To)
	}
	if e.MaxConns >= 0 {
		s += fmt.Sprintf(",max_conns=%d", e.MaxConns)
	}
	return s
}

// ParseEndpoint reads "ADDR", "ADDR:PORT", "ADDR:FROM-TO", or the same with a CIDR
// network ("10.1.0.0/16:5432") in place of the address, each optionally followed by
// ",max_conns=N": the connections one dyno may hold open to it at once (0: no cap;
// without it, MaxConns is UnsetMaxConns). IPv4 only: the Nomad bridge gives dynos no
// IPv6 address.
func ParseEndpoint(s string) (Endpoint, error) {
	e := Endpoint{MaxConns: UnsetMaxConns}
	dest, opt, hasOpt := strings.Cut(s, ",")
	if hasOpt {
		v, ok := strings.CutPrefix(opt, "max_conns=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || n > MaxConnsLimit {
			return e, fmt.Errorf("%q: %q is not max_conns=N with N from 0 (no cap) to %d", s, opt, MaxConnsLimit)
		}
		e.MaxConns = n
	}
	addr, ports, hasPort := strings.Cut(dest, ":")
	var err error
	if strings.Contains(addr, "/") {
		e.Net, err = netip.ParsePrefix(addr)
		if err == nil && e.Net != e.Net.Masked() {
			err = fmt.Errorf("%s has host bits set (the network is %s)", addr, e.Net.Masked())
		}
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(addr); err == nil {
			e.Net = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		return e, fmt.Errorf("%q is not ADDR[/PREFIX][:PORT[-PORT]][,max_conns=N]: %v", s, err)
	}
	if !e.Net.Addr().Is4() {
		return e, fmt.Errorf("%q: only IPv4 endpoints are supported", s)
	}
	e.From, e.To = 0, 65535
	if hasPort {
		lo, hi, isRange := strings.Cut(ports, "-")
		from, err1 := strconv.ParseUint(lo, 10, 16)
		to := from
		var err2 error
		if isRange {
			to, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || from == 0 || to < from {
			return e, fmt.Errorf("%q: %q is not a port or a range of ports like 20000-32000", s, ports)
		}
		e.From, e.To = uint16(from), uint16(to)
	}
	return e, nil
}

// Config is what the rules are made of.
type Config struct {
	// Bridge is the Nomad client's bridge (bridge_network_name), "nomad" by default.
	Bridge string
	// InternalNetworks may not be reached from a dyno, except Allowed endpoints.
	InternalNetworks []netip.Prefix
	// Allowed endpoints (TCP) are reachable from dynos on the host and in internal
	// networks: the add-ons. One dyno may hold at most an endpoint's MaxConns
	// connections to it at once (counted per rule, so over the whole port range of
	// the endpoint), so that it cannot take every connection slot of a server other
	// apps share, before it even logs in.
	Allowed []Endpoint
	// Nameservers may be asked (port 53, UDP and TCP) on the host and in internal
	// networks: the host's resolvers, which dynos share (their /etc/resolv.conf).
	Nameservers []netip.Addr
}

var bridgeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// Validate reports what cannot make rules.
func (c Config) Validate() error {
	if !bridgeNameRE.MatchString(c.Bridge) {
		return fmt.Errorf("bridge: %q is not a network interface name", c.Bridge)
	}
	return nil
}

// Chains are the names of the bridge's chains: INPUT, FORWARD.
func Chains(bridge string) (in, fwd string) { return "DYNO-IN-" + bridge, "DYNO-FWD-" + bridge }

const reject = "REJECT --reject-with icmp-admin-prohibited"

// Rules is the iptables-restore input (filter table, IPv4) that defines the bridge's
// two chains; it leaves every other chain as it is.
func (c Config) Rules() string {
	in, fwd := Chains(c.Bridge)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("*filter")
	w(":%s - [0:0]", in)
	w(":%s - [0:0]", fwd)
	for _, chain := range []string{in, fwd} {
		// Answers to connections made to a dyno (by the router, a health check) and
		// the rest of connections the rules let through.
		w("-A %s -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN", chain)
		if chain == fwd {
			// Another dyno on the bridge, directly or through a host port that the
			// portmap plugin sends back onto the bridge.
			w("-A %s -o %s -j %s", chain, c.Bridge, reject)
		}
		for _, e := range c.Allowed {
			match := fmt.Sprintf("-d %s -p tcp", e.Net)
			if e.From != 0 || e.To != 65535 {
				match += fmt.Sprintf(" -m tcp --dport %d:%d", e.From, e.To)
			}
			if e.MaxConns > 0 {
				// Only new connections get here (answers returned above): past the
				// cap, one source address, that is one dyno, is refused the next.
				w("-A %s %s -m connlimit --connlimit-above %d --connlimit-mask 32 --connlimit-saddr -j %s", chain, match, e.MaxConns, reject)
			}
			w("-A %s %s -j RETURN", chain, match)
		}
		for _, ns := range c.Nameservers {
			for _, proto := range []string{"udp", "tcp"} {
				w("-A %s -d %s/32 -p %s -m %s --dport 53 -j RETURN", chain, ns, proto, proto)
			}
		}
		if chain == in {
			// The host itself: its agents, its other services, its other addresses.
			w("-A %s -j %s", chain, reject)
		} else {
			for _, n := range c.InternalNetworks {
				w("-A %s -d %s -j %s", chain, n, reject)
			}
		}
	}
	w("COMMIT")
	return b.String()
}

// Rules6 rejects every new IPv6 connection from the bridge: dynos have only link-local
// IPv6 addresses, which must not reach the host or each other.
func (c Config) Rules6() string {
	in, fwd := Chains(c.Bridge)
	var b strings.Builder
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n:%s - [0:0]\n", in, fwd)
	for _, chain := range []string{in, fwd} {
		fmt.Fprintf(&b, "-A %s -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n", chain)
		fmt.Fprintf(&b, "-A %s -j REJECT --reject-with icmp6-adm-prohibited\n", chain)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// brNetfilter are the switches that make traffic between ports of a bridge pass
// through iptables; without them dynos on one bridge reach each other unfiltered.
var brNetfilter = []string{"/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"}

// Install makes bridged traffic pass iptables, replaces the bridge's chains with the
// rules of c, and puts the jumps to them first in INPUT and FORWARD (before the CNI
// firewall plugin's CNI-FORWARD, which accepts everything a container sends). It is
// idempotent: the driver calls it at start and before each dyno starts.
func Install(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for _, p := range brNetfilter {
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("failed to make bridged traffic pass iptables (%s; is the br_netfilter module loaded?): %w", p, err)
		}
	}
	for _, fam := range []struct{ cmd, rules string }{{"iptables", c.Rules()}, {"ip6tables", c.Rules6()}} {
		if err := xtables.Run(fam.cmd+"-restore", fam.rules, "--noflush"); err != nil {
			return err
		}
		if err := ensureFirst(fam.cmd, c.Bridge); err != nil {
			return err
		}
	}
	return nil
}

// EnsureFirst puts the jumps to the bridge's chains back at the top of INPUT and
// FORWARD if another rule was inserted above them. The jumps of other bridges' chains
// may stand above them: each matches its own bridge only, and several grids (or
// drivers of several clients) on one host each keep theirs on top.
func EnsureFirst(bridge string) error {
	for _, cmd := range []string{"iptables", "ip6tables"} {
		if err := ensureFirst(cmd, bridge); err != nil {
			return err
		}
	}
	return nil
}

// ensureMu makes the dynos started side by side check and move the jumps one at a time.
var ensureMu sync.Mutex

func ensureFirst(cmd, bridge string) error {
	ensureMu.Lock()
	defer ensureMu.Unlock()
	in, fwd := Chains(bridge)
	for _, j := range []struct{ chain, target string }{{"INPUT", in}, {"FORWARD", fwd}} {
		jump := []string{"-i", bridge, "-j", j.target}
		out, err := xtables.Output(cmd, "-S", j.chain)
		if err != nil {
			return err
		}
		want := "-A " + j.chain + " " + strings.Join(jump, " ")
		if n, first := countRule(out, want); n == 1 && first {
			continue
		}
		for n, _ := countRule(out, want); n > 0; n, _ = countRule(out, want) {
			// Another process (a second driver on the host) may have moved it just now:
			// what counts is the listing after.
			_ = xtables.Run(cmd, "", append([]string{"-D", j.chain}, jump...)...)
			if out, err = xtables.Output(cmd, "-S", j.chain); err != nil {
				return err
			}
		}
		if err := xtables.Run(cmd, "", append([]string{"-I", j.chain, "1"}, jump...)...); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the bridge's jumps and chains (a grid that removes its bridge).
// Missing rules and chains are not an error.
func Remove(bridge string) error {
	in, fwd := Chains(bridge)
	var errs []error
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, j := range []struct{ chain, target string }{{"INPUT", in}, {"FORWARD", fwd}} {
			for i := 0; i < 10 && xtables.Run(cmd, "", "-D", j.chain, "-i", bridge, "-j", j.target) == nil; i++ {
			}
		}
		for _, chain := range []string{in, fwd} {
			out, err := xtables.Output(cmd, "-S")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !strings.Contains(out, "-N "+chain+"\n") {
				continue
			}
			if err := xtables.Run(cmd, "", "-F", chain); err != nil {
				errs = append(errs, err)
			}
			if err := xtables.Run(cmd, "", "-X", chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Nameservers are the IPv4 nameservers of a resolv.conf.
func Nameservers(path string) ([]netip.Addr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// countRule says how often rule stands in the output of iptables -S CHAIN, and whether
// its first stands above every other rule but other bridges' jumps to their DYNO-
// chains.
func countRule(listing, rule string) (n int, first bool) {
	above := true
	for _, l := range strings.Split(strings.TrimSpace(listing), "\n")[1:] {
		switch {
		case l == rule:
			n++
			first = first || (n == 1 && above)
		case !isDynoJump(l):
			above = false
		}
	}
	return n, first
}

// isDynoJump says whether an iptables -S line is a bridge's jump to its DYNO- chain.
func isDynoJump(l string) bool {
	f := strings.Fields(l)
	return len(f) == 6 && f[0] == "-A" && f[2] == "-i" && f[4] == "-j" && strings.HasPrefix(f[5], "DYNO-")
}

package dynonet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/dynogrid/dynogrid/driver/internal/xtables"
)

// The bridge's chains, beside the firewall's (driver/netfw):
//   - nat DYNO-PORTS-<bridge>, jumped to from PREROUTING and OUTPUT for packets to the
//     host's own addresses: one DNAT rule per mapped host port, commented with its
//     allocation's ID;
//   - nat DYNO-MASQ-<bridge>, from POSTROUTING: dynos' connections out of the subnet
//     leave with the host's address, and the host's connections from 127.0.0.1 to a
//     host port reach the dyno from the gateway's;
//   - filter DYNO-ACCEPT-<bridge>, appended to FORWARD: what the firewall let through
//     from the bridge, and connections to dynos' host ports from other hosts, are
//     forwarded whatever FORWARD's policy.
func natChains(bridge string) (ports, masq, accept string) {
	return "DYNO-PORTS-" + bridge, "DYNO-MASQ-" + bridge, "DYNO-ACCEPT-" + bridge
}

// jumps are the rules that lead to the chains, by table and chain.
func jumps(bridge string) []jump {
	ports, masq, accept := natChains(bridge)
	local := []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", ports}
	return []jump{
		{"nat", "PREROUTING", local},
		{"nat", "OUTPUT", local},
		{"nat", "POSTROUTING", []string{"-j", masq}},
		{"filter", "FORWARD", []string{"-j", accept}},
	}
}

type jump struct {
	table, chain string
	rule         []string
}

// installNAT replaces the masquerade and accept chains, makes the ports chain if it
// is missing (its rules are the running dynos'), and appends the jumps that are
// missing.
func installNAT(bridge string, subnet netip.Prefix) error {
	ports, masq, accept := natChains(bridge)
	if err := xtables.Run("iptables", "", "-t", "nat", "-S", ports); err != nil {
		if err := xtables.Run("iptables", "", "-t", "nat", "-N", ports); err != nil {
			return err
		}
	}
	rules := fmt.Sprintf(`*nat
:%[1]s - [0:0]
-A %[1]s -s %[3]s ! -d %[3]s -j MASQUERADE
-A %[1]s -s 127.0.0.0/8 -o %[4]s -j MASQUERADE
COMMIT
*filter
:%[2]s - [0:0]
-A %[2]s -i %[4]s -j ACCEPT
-A %[2]s -o %[4]s -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
COMMIT
`, masq, accept, subnet, bridge)
	if err := xtables.Run("iptables-restore", rules, "--noflush"); err != nil {
		return err
	}
	for _, j := range jumps(bridge) {
		if xtables.Run("iptables", "", append([]string{"-t", j.table, "-C", j.chain}, j.rule...)...) == nil {
			continue
		}
		if err := xtables.Run("iptables", "", append([]string{"-t", j.table, "-A", j.chain}, j.rule...)...); err != nil {
			return err
		}
	}
	return nil
}

// removeNAT deletes the jumps and the chains. What is missing is no error.
func removeNAT(bridge string) error {
	for _, j := range jumps(bridge) {
		for i := 0; i < 10 && xtables.Run("iptables", "", append([]string{"-t", j.table, "-D", j.chain}, j.rule...)...) == nil; i++ {
		}
	}
	ports, masq, accept := natChains(bridge)
	var errs []error
	for _, c := range []struct{ table, chain string }{{"nat", ports}, {"nat", masq}, {"filter", accept}} {
		if xtables.Run("iptables", "", "-t", c.table, "-S", c.chain) != nil {
			continue
		}
		if err := xtables.Run("iptables", "", "-t", c.table, "-F", c.chain); err != nil {
			errs = append(errs, err)
		}
		if err := xtables.Run("iptables", "", "-t", c.table, "-X", c.chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// comment marks an allocation's port rules.
func comment(allocID string) string { return "dyno " + allocID }

// mapPorts replaces the allocation's port rules, and any other rule of the same host
// ports: Nomad gives a host port to one allocation at a time, so such a rule is left
// from an allocation whose driver could not remove it.
func mapPorts(bridge, allocID string, addr netip.Addr, ports []Port) error {
	chain, _, _ := natChains(bridge)
	listing, err := xtables.Output("iptables", "-t", "nat", "-S", chain)
	if err != nil {
		return err
	}
	if err := checkPorts(ports); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, rule := range replacedRules(listing, chain, allocID, ports) {
		b.WriteString(deletion(rule))
	}
	for _, p := range ports {
		dst := ""
		if d := p.dst(); d != "" {
			dst = " -d " + d
		}
		fmt.Fprintf(&b, "-A %s%s -p tcp -m tcp --dport %d -m comment --comment %q -j DNAT --to-destination %s:%d\n",
			chain, dst, p.HostPort, comment(allocID), addr, p.DynoPort)
	}
	b.WriteString("COMMIT\n")
	return xtables.Run("iptables-restore", b.String(), "--noflush")
}

// checkPorts reports a port that is not a TCP port.
func checkPorts(ports []Port) error {
	for _, p := range ports {
		if p.HostPort < 1 || p.HostPort > 65535 || p.DynoPort < 1 || p.DynoPort > 65535 {
			return fmt.Errorf("port %d to %d: not a TCP port", p.HostPort, p.DynoPort)
		}
	}
	return nil
}

// replacedRules are the rules of iptables -S CHAIN that mapping ports for allocID
// replaces: the allocation's own, and those of its host ports on the same address. Nomad
// gives a port to one allocation per host address, so a rule of the same port on
// another address is another allocation's, and stays.
func replacedRules(listing, chain, allocID string, ports []Port) []string {
	return rulesOf(listing, chain, func(r string) bool {
		if strings.Contains(r, strconv.Quote(comment(allocID))) {
			return true
		}
		rd := dst(r)
		for _, p := range ports {
			if p.HostPort == dport(r) && (rd == "" || p.dst() == "" || rd == p.dst()) {
				return true
			}
		}
		return false
	})
}

// dst is the address a port's rule matches ("a.b.c.d/32"), or "": every address.
func (p Port) dst() string {
	if ip, err := netip.ParseAddr(p.HostIP); err == nil && ip.Is4() && !ip.IsUnspecified() {
		return ip.String() + "/32"
	}
	return ""
}

// dst is the -d of a rule, or "".
func dst(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-d" {
			return f[i+1]
		}
	}
	return ""
}

// pruneOrphans removes the port rules of allocations whose network namespace is gone:
// a driver killed before it could detach them, or a Nomad client that removed them while
// the driver was down. Such a rule would send the host port's connections to an address
// that may be another allocation's by now.
func pruneOrphans(bridge string) error {
	chain, _, _ := natChains(bridge)
	listing, err := xtables.Output("iptables", "-t", "nat", "-S", chain)
	if err != nil {
		return err
	}
	rules := orphanRules(listing, chain, func(allocID string) bool {
		_, err := os.Stat(filepath.Join(netnsDir, allocID))
		return !errors.Is(err, os.ErrNotExist)
	})
	return deleteRules(rules)
}

var ruleOwnerRE = regexp.MustCompile(`--comment "dyno ([A-Za-z0-9-]{1,64})"`)

// orphanRules are the allocations' rules of iptables -S CHAIN whose allocation has no
// network namespace (exists says false).
func orphanRules(listing, chain string, exists func(allocID string) bool) []string {
	return rulesOf(listing, chain, func(r string) bool {
		m := ruleOwnerRE.FindStringSubmatch(r)
		return m != nil && !exists(m[1])
	})
}

// deletion is the iptables-restore line that deletes rule, a line of iptables -S.
func deletion(rule string) string { return "-D" + strings.TrimPrefix(rule, "-A") + "\n" }

// deleteRules deletes rules (lines of iptables -S) from the nat table in one restore.
func deleteRules(rules []string) error {
	if len(rules) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, r := range rules {
		b.WriteString(deletion(r))
	}
	b.WriteString("COMMIT\n")
	return xtables.Run("iptables-restore", b.String(), "--noflush")
}

// unmapPorts removes the allocation's port rules.
func unmapPorts(bridge, allocID string) error {
	chain, _, _ := natChains(bridge)
	listing, err := xtables.Output("iptables", "-t", "nat", "-S", chain)
	if err != nil {
		return nil // no chain: no rules
	}
	rules := rulesOf(listing, chain, func(r string) bool { return strings.Contains(r, strconv.Quote(comment(allocID))) })
	return deleteRules(rules)
}

// rulesOf are the rules of iptables -S CHAIN for which keep is true.
func rulesOf(listing, chain string, keep func(string) bool) []string {
	var out []string
	for _, l := range strings.Split(listing, "\n") {
		if strings.HasPrefix(l, "-A "+chain+" ") && keep(l) {
			out = append(out, l)
		}
	}
	return out
}

// dport is the --dport of a rule, or 0.
func dport(rule string) int {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "--dport" {
			n, _ := strconv.Atoi(f[i+1])
			return n
		}
	}
	return 0
}

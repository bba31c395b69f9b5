// Package dynonet puts a dyno's network namespace on the dynos' bridge: a veth pair
// (eth0 in the namespace, its other end on the bridge), an address of the bridge's
// subnet, a default route through the bridge's gateway address, and for each of the
// dyno's host ports a DNAT rule to the dyno. It does, in one process and a few system
// calls, what Nomad's bridge networking does with the CNI plugins (bridge, host-local,
// firewall, portmap) under a lock that every allocation of the host takes in turn: a
// dyno's network is ready in milliseconds, and new dynos get theirs side by side.
//
// Nomad makes the namespace (a task group in network mode "none"); this package gives
// it its interface. Addresses are reserved in the host-local plugin's store, so dynos
// and Nomad's own bridge networking can share one bridge and subnet.
package dynonet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// DefaultSubnet is the subnet of a bridge the driver makes itself: Nomad's default
// bridge_network_subnet.
const DefaultSubnet = "172.26.64.0/20"

// DefaultStoreDir is where the host-local IPAM plugin records the addresses of Nomad's
// CNI network "nomad", and where dynos' addresses are reserved too.
const DefaultStoreDir = "/var/lib/cni/networks/nomad"

// dynoIfName is the dyno's interface in its namespace.
const dynoIfName = "eth0"

// Network is the dynos' network on one host.
type Network struct {
	// Bridge is the bridge dynos are put on.
	Bridge string
	// Subnet is the bridge's subnet when the bridge has to be made; a bridge that
	// exists keeps its own IPv4 address and prefix.
	Subnet netip.Prefix
	// StoreDir holds the address reservations.
	StoreDir string

	// gateway is the bridge's address, and its prefix the dynos' subnet (Install).
	gateway netip.Prefix
}

// Port is a host port mapped to a port in the dyno.
type Port struct {
	// HostIP is the host address the port is on; empty or 0.0.0.0: every address.
	HostIP   string
	HostPort int
	DynoPort int
}

var bridgeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// allocIDRE is what an allocation ID may be: it names files, links and rule comments.
var allocIDRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// Install makes sure the bridge exists, is up and has its gateway address, that the
// host forwards IPv4 and routes 127.0.0.1 onto the bridge (for host ports on the
// loopback address), and installs the NAT rules. It is idempotent: the port rules of
// dynos whose network namespace exists stay; the others are removed.
func (n *Network) Install() error {
	if !bridgeNameRE.MatchString(n.Bridge) {
		return fmt.Errorf("bridge: %q is not a network interface name", n.Bridge)
	}
	gw, err := n.ensureBridge()
	if err != nil {
		return err
	}
	n.gateway = gw
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/" + n.Bridge + "/route_localnet"} {
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("failed to set %s: %w", p, err)
		}
	}
	if err := installNAT(n.Bridge, gw.Masked()); err != nil {
		return err
	}
	// Best effort: a rule that stays is replaced when its host port is given again.
	_ = pruneOrphans(n.Bridge)
	return nil
}

// ensureBridge returns the bridge's IPv4 address and prefix, making the bridge with the
// first address of Subnet when it does not exist.
func (n *Network) ensureBridge() (netip.Prefix, error) {
	link, err := netlink.LinkByName(n.Bridge)
	if _, missing := err.(netlink.LinkNotFoundError); missing {
		if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 30 {
			return netip.Prefix{}, fmt.Errorf("bridge %s does not exist, and %q is not an IPv4 subnet of at least 4 addresses to make it with", n.Bridge, n.Subnet)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, os.ErrExist) {
			return netip.Prefix{}, fmt.Errorf("failed to make bridge %s: %w", n.Bridge, err)
		}
		if link, err = netlink.LinkByName(n.Bridge); err != nil {
			return netip.Prefix{}, fmt.Errorf("failed to find bridge %s: %w", n.Bridge, err)
		}
		gw := netip.PrefixFrom(n.Subnet.Masked().Addr().Next(), n.Subnet.Bits())
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(gw)}); err != nil && !errors.Is(err, os.ErrExist) {
			return netip.Prefix{}, fmt.Errorf("failed to give bridge %s its address %s: %w", n.Bridge, gw, err)
		}
	} else if err != nil {
		return netip.Prefix{}, fmt.Errorf("failed to find bridge %s: %w", n.Bridge, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return netip.Prefix{}, fmt.Errorf("%s is a %s link, not a bridge", n.Bridge, link.Type())
	}
	// A bridge whose address was not set takes the lowest of its ports' as they come
	// and go, and dynos whose neighbour cache holds the gateway's old one lose their
	// answers for up to half a minute. Setting it (to what it is) keeps it.
	if err := netlink.LinkSetHardwareAddr(link, link.Attrs().HardwareAddr); err != nil {
		return netip.Prefix{}, fmt.Errorf("failed to fix bridge %s's MAC address: %w", n.Bridge, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return netip.Prefix{}, fmt.Errorf("failed to bring bridge %s up: %w", n.Bridge, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("failed to read bridge %s's addresses: %w", n.Bridge, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		if ok && ones <= 30 {
			return netip.PrefixFrom(ip, ones), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("bridge %s has no IPv4 address with a subnet of at least 4 addresses: give it one", n.Bridge)
}

// HostLink is the name of the bridge's end of an allocation's veth pair.
func HostLink(allocID string) string {
	id := strings.ReplaceAll(allocID, "-", "")
	if len(id) > 12 {
		id = id[:12]
	}
	return "dyn" + id
}

// Attach gives the allocation's network namespace (at nsPath) its interface on the
// bridge, and maps ports to it. A namespace that has an interface besides lo which
// is not the driver's (Nomad's bridge mode put it there) is left as it is: attached
// reports whether the driver did anything. A namespace the driver attached already
// (another task of the allocation) keeps its address; its ports are mapped again.
func (n *Network) Attach(allocID, nsPath string, ports []Port) (attached bool, err error) {
	if !n.gateway.IsValid() {
		return false, errors.New("the dynos' network is not installed")
	}
	if !allocIDRE.MatchString(allocID) {
		return false, fmt.Errorf("%q is not an allocation ID", allocID)
	}
	if err := checkPorts(ports); err != nil {
		return false, err
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return false, fmt.Errorf("failed to open network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false, fmt.Errorf("failed to enter network namespace %s: %w", nsPath, err)
	}
	defer h.Close()

	hostName := HostLink(allocID)
	_, hostErr := netlink.LinkByName(hostName)
	ours := hostErr == nil
	links, err := h.LinkList()
	if err != nil {
		return false, fmt.Errorf("failed to list the interfaces of %s: %w", nsPath, err)
	}
	var addr netip.Addr
	for _, l := range links {
		if l.Attrs().Name == "lo" {
			continue
		}
		if !ours {
			return false, nil // Nomad's bridge networking: its CNI plugins set it up
		}
		if l.Attrs().Name == dynoIfName {
			addr = firstV4(h, l)
		}
	}
	fresh := !addr.IsValid()
	if fresh {
		if ours {
			_ = deleteLink(hostName)
		}
		if addr, err = n.attach(allocID, h, ns, hostName); err != nil {
			return false, err
		}
	}
	if err := mapPorts(n.Bridge, allocID, addr, ports); err != nil {
		if fresh {
			_ = n.Detach(allocID)
		} // else another task of the allocation runs on it, with its rules
		return false, err
	}
	return true, nil
}

// attach makes the veth pair and addresses the dyno's end; on failure it undoes it.
func (n *Network) attach(allocID string, h *netlink.Handle, ns netns.NsHandle, hostName string) (netip.Addr, error) {
	addr, err := reserve(n.StoreDir, n.gateway, allocID)
	if err != nil {
		return netip.Addr{}, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = deleteLink(hostName)
			_ = release(n.StoreDir, allocID)
		}
	}()
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to find bridge %s: %w", n.Bridge, err)
	}
	// Dynos get no IPv6 (the firewall rejects it from the bridge anyway): no link-local
	// address, no duplicate address detection or multicast reports for the kernel to do
	// for each new dyno.
	if err := InNamespace(ns, func() error { return disableIPv6("default") }); err != nil {
		return netip.Addr{}, fmt.Errorf("failed to turn IPv6 off in the dyno's network namespace: %w", err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostName, MTU: br.Attrs().MTU, MasterIndex: br.Attrs().Index},
		PeerName:      dynoIfName,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return netip.Addr{}, fmt.Errorf("failed to make the dyno's veth pair %s: %w", hostName, err)
	}
	host, err := netlink.LinkByName(hostName)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to find %s: %w", hostName, err)
	}
	if err := disableIPv6(hostName); err != nil {
		return netip.Addr{}, fmt.Errorf("failed to turn IPv6 off on %s: %w", hostName, err)
	}
	// The host's neighbour cache may still give the address the link address of the
	// dyno that had it before, and would send this one's packets there until the entry
	// is checked again, up to half a minute later.
	forgetNeighbour(br, addr)
	if err := netlink.LinkSetUp(host); err != nil {
		return netip.Addr{}, fmt.Errorf("failed to bring %s up: %w", hostName, err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to find the dyno's lo: %w", err)
	}
	eth, err := h.LinkByName(dynoIfName)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to find the dyno's %s: %w", dynoIfName, err)
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"bring lo up", func() error { return h.LinkSetUp(lo) }},
		{"address " + dynoIfName, func() error {
			return h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(addr, n.gateway.Bits()))})
		}},
		{"bring " + dynoIfName + " up", func() error { return h.LinkSetUp(eth) }},
		{"route through the gateway", func() error {
			return h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.IP(n.gateway.Addr().AsSlice())})
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return netip.Addr{}, fmt.Errorf("failed to %s in the dyno's network namespace: %w", s.what, err)
		}
	}
	ok = true
	return addr, nil
}

// Detach removes the allocation's port rules, the bridge's end of its veth pair (and
// with it the dyno's) and its address reservation. What is gone already is no error.
func (n *Network) Detach(allocID string) error {
	if !allocIDRE.MatchString(allocID) {
		return fmt.Errorf("%q is not an allocation ID", allocID)
	}
	var errs []error
	if err := unmapPorts(n.Bridge, allocID); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLink(HostLink(allocID)); err != nil {
		errs = append(errs, err)
	}
	if err := release(n.StoreDir, allocID); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// forgetNeighbour drops the host's neighbour entry of addr on the bridge, if any.
func forgetNeighbour(br netlink.Link, addr netip.Addr) {
	_ = netlink.NeighDel(&netlink.Neigh{LinkIndex: br.Attrs().Index, Family: netlink.FAMILY_V4, IP: net.IP(addr.AsSlice())})
}

// disableIPv6 turns IPv6 off on the interface (or "default": those made from now on) of
// the calling thread's network namespace. A kernel without IPv6 has nothing to turn off.
func disableIPv6(ifName string) error {
	err := os.WriteFile("/proc/sys/net/ipv6/conf/"+ifName+"/disable_ipv6", []byte("1"), 0o644)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// InNamespace runs f on a thread of its own in the network namespace ns. A thread that
// could not come back to the process's namespace is never used again.
func InNamespace(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the locked thread ends with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// deleteLink deletes the host's link name (and a veth's peer with it), if it exists.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if _, missing := err.(netlink.LinkNotFoundError); missing {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(l)
	}
	if err != nil {
		return fmt.Errorf("failed to remove %s: %w", name, err)
	}
	return nil
}

// Remove deletes the bridge's NAT chains (a grid that removes its bridge).
func Remove(bridge string) error { return removeNAT(bridge) }

func firstV4(h *netlink.Handle, l netlink.Link) netip.Addr {
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(addrs[0].IP.To4())
	return a
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// storePath is the reservation file of addr.
func storePath(dir string, addr netip.Addr) string { return filepath.Join(dir, addr.String()) }

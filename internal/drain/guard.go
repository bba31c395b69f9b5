package drain

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// NewDialer returns the dialer of drain connections. A drain's URL is the tenant's: it
// may not reach the grid's own services, so addresses that are not public (loopback,
// private, shared, link-local, reserved, multicast, and the IPv6 forms that carry an
// IPv4 address: IPv4-compatible, NAT64, 6to4, Teredo) are refused unless allow holds
// them. The check is made on the address connected to, after name resolution.
func NewDialer(allow []netip.Prefix) *net.Dialer {
	return &net.Dialer{
		Timeout:   ioTimeout,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("drain address %s: %w", address, err)
			}
			return checkAddr(ap.Addr().Unmap(), allow)
		},
	}
}

// notPublic are the special-purpose ranges of IANA's registries that a drain may not
// reach, besides those netip's predicates name (loopback, private, link-local,
// unspecified, multicast).
var notPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8",       // "this network": 0.x.y.z reaches the host itself on Linux
		"100.64.0.0/10",   // shared address space (carrier-grade NAT, some clouds' metadata)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.88.99.0/24",  // 6to4 relays
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved, and the broadcast address
		"::/96",           // IPv4-compatible (::127.0.0.1)
		"64:ff9b::/96",    // NAT64: an IPv4 address behind a translator
		"64:ff9b:1::/48",  // local NAT64
		"100::/64",        // discard
		"2001::/23",       // IETF protocol assignments, Teredo among them
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: an IPv4 address in an IPv6 one
		"fec0::/10",       // site-local
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

func checkAddr(a netip.Addr, allow []netip.Prefix) error {
	for _, p := range allow {
		if p.Contains(a) {
			return nil
		}
	}
	refused := a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast()
	for _, p := range notPublic {
		refused = refused || p.Contains(a)
	}
	if refused {
		return fmt.Errorf("drain address %s is not public: drains may not reach the grid's own network", a)
	}
	return nil
}

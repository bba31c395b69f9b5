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
// private, link-local, unspecified, multicast) are refused unless allow holds them. The
// check is made on the address connected to, after name resolution.
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

func checkAddr(a netip.Addr, allow []netip.Prefix) error {
	for _, p := range allow {
		if p.Contains(a) {
			return nil
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return fmt.Errorf("drain address %s is not public: drains may not reach the grid's own network", a)
	}
	return nil
}

package dynonet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// netnsDir is where Nomad keeps allocations' network namespaces, named after them.
const netnsDir = "/var/run/netns"

// staleAfter is how old a reservation must be before an address whose allocation has
// no network namespace any more may be taken back.
const staleAfter = time.Minute

// lastReserved is the store's record of the address reserved last, which the host-local
// plugin keeps too (range 0).
const lastReserved = "last_reserved_ip.0"

// reserve takes a free address of the gateway's subnet for allocID, as the host-local
// IPAM plugin does: a file named after the address, created exclusively, whose first
// line is the owner's ID (the plugin writes "ID\r\nIFNAME"). Like the plugin, it goes
// round the subnet from the address reserved last, so that an address given up is not
// given again before every other has been (the host's neighbour cache and connection
// tracking may still hold the dyno that had it). When every address is taken, it takes
// back one whose allocation's namespace is gone.
func reserve(dir string, gateway netip.Prefix, allocID string) (netip.Addr, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return netip.Addr{}, fmt.Errorf("failed to make the address store %s: %w", dir, err)
	}
	n := hostCount(gateway)
	if n == 0 {
		return netip.Addr{}, fmt.Errorf("subnet %s has no address for dynos", gateway.Masked())
	}
	start := uint32(0)
	if b, err := os.ReadFile(filepath.Join(dir, lastReserved)); err == nil {
		if last, err := netip.ParseAddr(strings.TrimSpace(string(b))); err == nil && gateway.Masked().Contains(last) {
			start = (hostIndex(gateway, last) + 1) % n
		}
	}
	for pass := 0; pass < 2; pass++ {
		for i := uint32(0); i < n; i++ {
			a := hostAddr(gateway, (start+i)%n)
			if a == gateway.Addr() {
				continue
			}
			p := storePath(dir, a)
			if pass == 1 {
				if !stale(p) {
					continue
				}
				_ = os.Remove(p)
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, os.ErrExist) {
				continue
			}
			if err != nil {
				return netip.Addr{}, fmt.Errorf("failed to reserve %s: %w", a, err)
			}
			_, werr := f.WriteString(allocID + "\r\n" + dynoIfName)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				_ = os.Remove(p)
				return netip.Addr{}, fmt.Errorf("failed to reserve %s: %w", a, werr)
			}
			// A hint only: dynos reserving at once may each write theirs.
			_ = os.WriteFile(filepath.Join(dir, lastReserved), []byte(a.String()), 0o644)
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address for a dyno in %s (all in use, see %s)", gateway.Masked(), dir)
}

// maxHosts bounds the addresses tried in a large subnet.
const maxHosts = 1 << 16

// hostCount is the number of addresses tried in the gateway's subnet: all but its
// network and broadcast addresses, at most maxHosts.
func hostCount(gateway netip.Prefix) uint32 {
	bits := 32 - gateway.Bits()
	if bits < 2 || bits > 16 {
		if bits > 16 {
			return maxHosts
		}
		return 0
	}
	return 1<<bits - 2
}

// hostIndex is i of the subnet's address a, number i+1 (hostAddr's inverse).
func hostIndex(gateway netip.Prefix, a netip.Addr) uint32 {
	return u32(a) - u32(gateway.Masked().Addr()) - 1
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// hostAddr is the subnet's address number i+1.
func hostAddr(gateway netip.Prefix, i uint32) netip.Addr {
	b := gateway.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += i + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// owner is the first line of a reservation file.
func owner(p string) (string, time.Time, bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", time.Time{}, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", time.Time{}, false
	}
	id, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(id), fi.ModTime(), true
}

// stale says whether a reservation belongs to an allocation that has no network
// namespace any more, and was made long enough ago not to be one being set up.
func stale(p string) bool {
	id, made, ok := owner(p)
	if !ok || time.Since(made) < staleAfter || id == "" || strings.ContainsAny(id, "/\x00") {
		return false
	}
	_, err := os.Stat(filepath.Join(netnsDir, id))
	return errors.Is(err, os.ErrNotExist)
}

// release removes allocID's reservations.
func release(dir, allocID string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("failed to read the address store %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if id, _, ok := owner(p); ok && id == allocID {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("failed to release %s: %w", e.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Addr is the address reserved for allocID in dir.
func Addr(dir, allocID string) (netip.Addr, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to read the address store %s: %w", dir, err)
	}
	for _, e := range entries {
		a, err := netip.ParseAddr(e.Name())
		if err != nil {
			continue
		}
		if id, _, ok := owner(filepath.Join(dir, e.Name())); ok && id == allocID {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no address reserved for %s in %s", allocID, dir)
}

package devgrid

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dynogrid/dynogrid/driver/dynonet"
	"github.com/dynogrid/dynogrid/driver/netfw"
	"golang.org/x/sys/unix"
)

// The grid's dyno network: each dyno has a network namespace of its own, which the dyno
// driver puts on this bridge (driver/dynonet). The grid makes the bridge itself before Nomad
// starts, so that its gateway address exists for the services dynos may reach (the
// add-ons): dynos cannot reach the host's 127.0.0.1, which is their own loopback.
const (
	// CNIPath holds the CNI reference plugins (Debian's containernetworking-plugins).
	CNIPath = "/usr/lib/cni"
	// AddonHostNetwork is the Nomad host network on the bridge's gateway address, where
	// the memcached add-on binds.
	AddonHostNetwork = "addons"
	// bridgePrefix names the grids' bridges: dynogrid0, dynogrid1, ...; the grid of
	// bridge dynogrid<i> takes the subnet 10.209.<i>.0/24.
	bridgePrefix = "dynogrid"
	maxBridges   = 100
	// minDynamicPort and maxDynamicPort are Nomad's default range of dynamic ports:
	// the memcached add-on's ports on the gateway address.
	minDynamicPort, maxDynamicPort = 20000, 32000
)

// Network is a grid's dyno bridge.
type Network struct {
	// Bridge is the bridge's name.
	Bridge string `json:"bridge"`
	// Subnet is the dynos' subnet, "10.209.<i>.0/24".
	Subnet string `json:"subnet"`
	// Gateway is the host's address on the bridge, where the add-ons listen.
	Gateway string `json:"gateway"`
}

// createNetwork makes a bridge for the grid's dynos: the first free name of dynogrid0
// to dynogrid99 (creating the link is what claims a name, so grids started at once
// never share one), with the gateway address of its subnet.
func createNetwork() (*Network, error) {
	var lastErr error
	for i := 0; i < maxBridges; i++ {
		n := &Network{
			Bridge:  fmt.Sprintf("%s%d", bridgePrefix, i),
			Subnet:  fmt.Sprintf("10.209.%d.0/24", i),
			Gateway: fmt.Sprintf("10.209.%d.1", i),
		}
		out, err := exec.Command("ip", "link", "add", "name", n.Bridge, "type", "bridge").CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "File exists") {
				continue
			}
			return nil, fmt.Errorf("failed to create the dynos' bridge %s: %v: %s", n.Bridge, err, strings.TrimSpace(string(out)))
		}
		for _, args := range [][]string{
			{"addr", "add", n.Gateway + "/24", "dev", n.Bridge},
			{"link", "set", n.Bridge, "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				lastErr = fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
				_ = n.remove(nil)
				return nil, fmt.Errorf("failed to set up the dynos' bridge %s: %w", n.Bridge, lastErr)
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("no free name for the dynos' bridge: %s0 to %s%d all exist (remove those of grids that are gone with `ip link del`)",
		bridgePrefix, bridgePrefix, maxBridges-1)
}

// createNetwork makes the grid's dyno bridge and records it in the grid's state, so
// that Down removes it.
func (g *Grid) createNetwork() error {
	n, err := createNetwork()
	if err != nil {
		return err
	}
	g.Options.Network = n
	return g.save()
}

// remove deletes the network namespaces Nomad left for allocs (when its client was
// killed), the bridge, and the dyno driver's firewall chains for it.
func (n *Network) remove(allocs []string) error {
	var errs []error
	if err := RemoveAllocNetworks(allocs); err != nil {
		errs = append(errs, err)
	}
	if out, err := exec.Command("ip", "link", "del", n.Bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("failed to remove the dynos' bridge %s: %v: %s", n.Bridge, err, strings.TrimSpace(string(out))))
	}
	if err := netfw.Remove(n.Bridge); err != nil {
		errs = append(errs, fmt.Errorf("failed to remove the dynos' firewall of %s: %w", n.Bridge, err))
	}
	if err := dynonet.Remove(n.Bridge); err != nil {
		errs = append(errs, fmt.Errorf("failed to remove the dynos' port and masquerade rules of %s: %w", n.Bridge, err))
	}
	return errors.Join(errs...)
}

// cniIPAMDir is where the CNI host-local plugin records the addresses it gave, for
// Nomad's CNI network "nomad", and where the dyno driver reserves dynos' addresses.
const cniIPAMDir = dynonet.DefaultStoreDir

// RemoveAllocNetworks removes what allocations leave when the Nomad client is killed
// instead of stopping them: their network namespaces (/var/run/netns/<alloc id>;
// deleting one deletes its veth pair) and the addresses reserved for them by the
// driver or the host-local IPAM plugin.
func RemoveAllocNetworks(allocs []string) error {
	if len(allocs) == 0 {
		return nil
	}
	ours := map[string]bool{}
	var errs []error
	for _, id := range allocs {
		ours[id] = true
		p := filepath.Join("/var/run/netns", id)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		_ = unix.Unmount(p, unix.MNT_DETACH)
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("failed to remove the network namespace of allocation %s: %w", id, err))
		}
	}
	entries, _ := os.ReadDir(cniIPAMDir)
	for _, e := range entries {
		p := filepath.Join(cniIPAMDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Each file is named after an address; its first line is the container ID,
		// which Nomad sets to the allocation ID.
		if id, _, _ := strings.Cut(string(b), "\n"); ours[strings.TrimSpace(id)] {
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// nomadClientNetwork is the part of the Nomad client block that puts dynos on the
// bridge and declares the add-ons' host network.
func (n *Network) nomadClientNetwork() string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf(`  # Each dyno in a network namespace of its own on this bridge (CNI).
  cni_path              = %q
  bridge_network_name   = %q
  bridge_network_subnet = %q
  # Add-ons listen on the bridge's gateway address, which dynos reach.
  host_network %q {
    cidr = "%s/32"
  }
`, CNIPath, n.Bridge, n.Subnet, AddonHostNetwork, n.Gateway)
}

// driverFirewall is the part of the dyno driver's configuration that names the bridge
// and the add-on endpoints dynos may reach on the gateway: PostgreSQL's port and the
// dynamic ports of memcached add-ons.
func (n *Network) driverFirewall(postgresPort int) string {
	if n == nil {
		return ""
	}
	allowed := []string{fmt.Sprintf("%q", fmt.Sprintf("%s:%d-%d", n.Gateway, minDynamicPort, maxDynamicPort))}
	if postgresPort != 0 {
		allowed = append(allowed, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", n.Gateway, postgresPort)))
	}
	return fmt.Sprintf("    bridge            = %q\n    allowed_endpoints = [%s]\n", n.Bridge, strings.Join(allowed, ", "))
}

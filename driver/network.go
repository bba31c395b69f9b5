package driver

import (
	"fmt"

	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/dynogrid/dynogrid/driver/dynonet"
)

// dynoNetwork is the dynos' network on this host, installed when the first dyno in a
// network namespace starts (a driver whose dynos all share the host's network makes
// no bridge). A failed install is tried again at the next dyno.
func (d *Driver) dynoNetwork() (*dynonet.Network, error) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if d.net != nil {
		return d.net, nil
	}
	subnet, err := d.config.bridgeSubnet() // validated by decodeConfig
	if err != nil {
		return nil, err
	}
	n := &dynonet.Network{Bridge: d.config.Bridge, Subnet: subnet, StoreDir: dynonet.DefaultStoreDir}
	if err := n.Install(); err != nil {
		return nil, fmt.Errorf("network: failed to set up the dynos' bridge %s: %w", d.config.Bridge, err)
	}
	d.net = n
	return n, nil
}

// attachNetwork puts the dyno's network namespace, made by Nomad for a task group in
// network mode "none", on the bridge, with its host ports mapped to it. A namespace
// that Nomad's bridge mode set up is left as it is.
func (d *Driver) attachNetwork(cfg *drivers.TaskConfig) (attached bool, err error) {
	if cfg.NetworkIsolation == nil || cfg.NetworkIsolation.Path == "" {
		return false, nil
	}
	n, err := d.dynoNetwork()
	if err != nil {
		return false, err
	}
	var ports []dynonet.Port
	if cfg.Resources != nil && cfg.Resources.Ports != nil {
		for _, p := range *cfg.Resources.Ports {
			to := p.To
			if to <= 0 {
				to = p.Value
			}
			ports = append(ports, dynonet.Port{HostIP: p.HostIP, HostPort: p.Value, DynoPort: to})
		}
	}
	// One at a time: the tasks of one allocation share its namespace. Attaching takes
	// milliseconds, most of them in iptables, which takes its own lock anyway.
	d.attachMu.Lock()
	attached, err = n.Attach(cfg.AllocID, cfg.NetworkIsolation.Path, ports)
	d.attachMu.Unlock()
	if err != nil {
		return false, fmt.Errorf("network: %w", err)
	}
	return attached, nil
}

// detachNetwork takes the allocation's dyno off the bridge once no other task of the
// allocation runs in this driver. It needs no install: a driver started again detaches
// the dynos it recovered.
func (d *Driver) detachNetwork(allocID string) error {
	if d.tasks.allocHasTasks(allocID) {
		return nil
	}
	n := dynonet.Network{Bridge: d.config.Bridge, StoreDir: dynonet.DefaultStoreDir}
	if err := n.Detach(allocID); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

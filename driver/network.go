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
	n := &dynonet.Network{Bridge: d.config.Bridge, Subnet: subnet, StoreDir: d.netStore}
	if err := n.Install(); err != nil {
		return nil, fmt.Errorf("network: failed to set up the dynos' bridge %s: %w", d.config.Bridge, err)
	}
	d.net = n
	return n, nil
}

// attachNetwork puts the dyno's network namespace, made by Nomad for a task group in
// network mode "none", on the bridge, with its host ports mapped to it. A namespace
// that Nomad's bridge mode set up is left as it is. Until done is called (the dyno is
// in the task store, or did not start), no other task's end takes the allocation off
// the bridge.
func (d *Driver) attachNetwork(cfg *drivers.TaskConfig) (attached bool, done func(), err error) {
	done = func() {}
	if cfg.NetworkIsolation == nil || cfg.NetworkIsolation.Path == "" {
		return false, done, nil
	}
	n, err := d.dynoNetwork()
	if err != nil {
		return false, done, err
	}
	ports, err := d.dynoPorts(cfg)
	if err != nil {
		return false, done, err
	}
	// One at a time: the tasks of one allocation share its namespace. Attaching takes
	// milliseconds, most of them in iptables, which takes its own lock anyway.
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	attached, err = n.Attach(cfg.AllocID, cfg.NetworkIsolation.Path, ports)
	if err != nil {
		return false, done, fmt.Errorf("network: %w", err)
	}
	if attached {
		done = d.attachingLocked(cfg.AllocID)
	}
	return attached, done, nil
}

// attachingLocked counts a task of the allocation as being put on the bridge until done
// is called. Caller holds d.attachMu.
func (d *Driver) attachingLocked(allocID string) (done func()) {
	if d.attaching == nil {
		d.attaching = map[string]int{}
	}
	d.attaching[allocID]++
	return func() {
		d.attachMu.Lock()
		defer d.attachMu.Unlock()
		if d.attaching[allocID]--; d.attaching[allocID] <= 0 {
			delete(d.attaching, allocID)
		}
	}
}

// maxDynoPorts bounds the host ports of one dyno (a web dyno has one).
const maxDynoPorts = 8

// dynoPorts are the allocation's host ports, mapped to the dyno. Each must be one of the
// client's dynamic ports: a job that asks for a static host port such as the Nomad or
// Consul agent's would otherwise take the host's connections to it.
func (d *Driver) dynoPorts(cfg *drivers.TaskConfig) ([]dynonet.Port, error) {
	if cfg.Resources == nil || cfg.Resources.Ports == nil {
		return nil, nil
	}
	lo, hi, err := d.config.hostPorts() // validated by decodeConfig
	if err != nil {
		return nil, err
	}
	all := *cfg.Resources.Ports
	if len(all) > maxDynoPorts {
		return nil, fmt.Errorf("network: the task group has %d ports; a dyno may have at most %d", len(all), maxDynoPorts)
	}
	var ports []dynonet.Port
	for _, p := range all {
		if p.Value < lo || p.Value > hi {
			return nil, fmt.Errorf("network: port %q is host port %d, outside the dynamic ports %d-%d (host_port_range): dynos take dynamic ports only", p.Label, p.Value, lo, hi)
		}
		to := p.To
		if to <= 0 {
			to = p.Value
		}
		ports = append(ports, dynonet.Port{HostIP: p.HostIP, HostPort: p.Value, DynoPort: to})
	}
	return ports, nil
}

// detachNetwork takes the allocation's dyno off the bridge once no other task of the
// allocation runs in this driver or is being started. It needs no install: a driver
// started again detaches the dynos it recovered.
func (d *Driver) detachNetwork(allocID string) error {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	if d.tasks.allocHasTasks(allocID) || d.attaching[allocID] > 0 {
		return nil
	}
	n := dynonet.Network{Bridge: d.config.Bridge, StoreDir: d.netStore}
	if err := n.Detach(allocID); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

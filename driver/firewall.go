package driver

import (
	"fmt"

	"github.com/dynogrid/dynogrid/driver/netfw"
)

// resolvConf is the file whose nameservers dynos use (the driver copies it into each
// dyno's /etc), and may reach through the firewall.
const resolvConf = "/etc/resolv.conf"

// installFirewall installs the rules of the plugin's configuration (see netfw).
func (d *Driver) installFirewall() error {
	fw, err := d.config.firewall()
	if err != nil {
		return err
	}
	if fw.Nameservers, err = netfw.Nameservers(resolvConf); err != nil {
		d.logger.Warn("dynos get no DNS server through the firewall", "error", err)
	}
	if err := netfw.Install(fw); err != nil {
		return fmt.Errorf("failed to install the dynos' firewall for bridge %s: %w", fw.Bridge, err)
	}
	d.logger.Info("dynos' firewall installed", "bridge", fw.Bridge, "internal_networks", d.config.InternalNetworks,
		"allowed_endpoints", d.config.AllowedEndpoints, "nameservers", fw.Nameservers)
	return nil
}

// ensureFirewall checks that the firewall was installed and that its jumps are still
// first in INPUT and FORWARD: the CNI firewall plugin inserts its own accepting chain
// at the top of FORWARD when it first runs, which may be after the driver started.
func (d *Driver) ensureFirewall() error {
	if d.firewallErr != nil {
		return fmt.Errorf("network: refusing to start a dyno without its firewall: %w", d.firewallErr)
	}
	if err := netfw.EnsureFirst(d.config.Bridge); err != nil {
		return fmt.Errorf("network: failed to keep the dynos' firewall first: %w", err)
	}
	return nil
}

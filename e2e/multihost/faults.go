package multihost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// KillProcesses SIGKILLs the processes of host h whose command line contains match (for
// example "nomad-driver-dyno" for the driver plugin, "nomad agent" for the Nomad client)
// and returns their pids.
func (g *Grid) KillProcesses(h *Host, match string) ([]int, error) {
	return g.SignalProcesses(h, match, syscall.SIGKILL)
}

// SignalProcesses sends sig to the processes of host h whose command line contains
// match and returns their pids.
func (g *Grid) SignalProcesses(h *Host, match string, sig syscall.Signal) ([]int, error) {
	var killed []int
	for _, p := range pidsInNS(h.NS) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil || !strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), match) {
			continue
		}
		if err := syscall.Kill(p, sig); err == nil {
			killed = append(killed, p)
		}
	}
	if len(killed) == 0 {
		return nil, fmt.Errorf("no process of %s matches %q", h.Name, match)
	}
	return killed, nil
}

// StartNomad starts host h's Nomad client again (after KillProcesses or KillHost), with
// its data directory as it was.
func (g *Grid) StartNomad(h *Host) error {
	return g.startNomad(h, filepath.Join(g.Dir, "plugins"))
}

// pluginPIDs lists host h's dyno driver plugin processes: nomad-driver-dyno run without
// arguments (the dynos' executors run it as `nomad-driver-dyno executor ...`). A
// restarted Nomad client reattaches to the plugin its predecessor started.
func (g *Grid) pluginPIDs(h *Host) []int {
	var pids []int
	for _, p := range pidsInNS(h.NS) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 1 && filepath.Base(args[0]) == "nomad-driver-dyno" {
			pids = append(pids, p)
		}
	}
	return pids
}

// KillPlugin SIGKILLs host h's dyno driver plugin and returns its pids.
func (g *Grid) KillPlugin(h *Host) ([]int, error) {
	pids := g.pluginPIDs(h)
	if len(pids) == 0 {
		return nil, fmt.Errorf("no dyno driver plugin runs on %s", h.Name)
	}
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("failed to kill the plugin of %s: %w", h.Name, err)
		}
	}
	return pids, nil
}

// StartConsul starts host h's Consul agent again (after KillProcesses or KillHost), with
// its data directory as it was.
func (g *Grid) StartConsul(h *Host) error { return g.startConsul(h) }

// CutLink takes host h's link to the bridge down: its packets are dropped both ways,
// with no reset and no ICMP error, as with a pulled cable. Its processes keep running.
func (g *Grid) CutLink(h *Host) error {
	_, err := ip("link", "set", h.Veth, "down")
	return err
}

// RestoreLink brings host h's link to the bridge up again.
func (g *Grid) RestoreLink(h *Host) error {
	_, err := ip("link", "set", h.Veth, "up")
	return err
}

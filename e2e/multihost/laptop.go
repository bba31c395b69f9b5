package multihost

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// RunOnLaptop runs a CLI of the grid's binaries (dyno, nomad, consul) on the laptop host,
// which runs no agent, with only env (and PATH and HOME) in its environment, in dir. It
// returns the command's combined output.
func (g *Grid) RunOnLaptop(ctx context.Context, env []string, dir, bin string, args ...string) (string, error) {
	if g.Laptop == nil {
		return "", fmt.Errorf("multihost: this grid has no laptop host (Options.Laptop)")
	}
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + g.Laptop.NS,
		filepath.Join(g.BinDir, bin)}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + g.Laptop.Dir}, env...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// UseServer points the grid's API clients at server host s (after the one they used
// was lost).
func (g *Grid) UseServer(s *Host) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.Server, g.nomad, g.consul = s, nil, nil
}

// ServerByAddr is the server host with address addr (host:port or host), or nil.
func (g *Grid) ServerByAddr(addr string) *Host {
	for _, s := range g.Servers {
		if addr == s.Addr || len(addr) > len(s.Addr) && addr[:len(s.Addr)+1] == s.Addr+":" {
			return s
		}
	}
	return nil
}

// Leaders returns the Nomad and Consul leaders' addresses as server host h sees them.
func (g *Grid) Leaders(h *Host) (nomad, consul string, err error) {
	nc, err := nomadapi.NewClient(g.nomadConfig(h.Addr + ":4646"))
	if err != nil {
		return "", "", err
	}
	if nomad, err = nc.Status().Leader(); err != nil {
		return "", "", err
	}
	cc, err := consulapi.NewClient(g.consulConfig(h.Addr + ":8501"))
	if err != nil {
		return "", "", err
	}
	consul, err = cc.Status().Leader()
	return nomad, consul, err
}

// MoveConsulLeader makes the Consul server of host h the leader (Raft leadership
// transfer), so that one host can lead both Nomad and Consul.
func (g *Grid) MoveConsulLeader(h *Host) error {
	c := g.ConsulClient()
	conf, err := c.Operator().RaftGetConfiguration(nil)
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		if g.ServerByAddr(s.Address) != h {
			continue
		}
		if s.Leader {
			return nil
		}
		_, err := c.Operator().RaftLeaderTransfer(s.ID, nil)
		return err
	}
	return fmt.Errorf("%s is no Consul Raft peer", h.Name)
}

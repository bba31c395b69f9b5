package multihost

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// agentProc is an agent started from its unit, with what systemd would know of it.
type agentProc struct {
	*proc
	// ready is closed when a Type=notify agent has said READY=1.
	ready chan struct{}
}

// startAgent renders examples/cluster/<file> as host h's /etc/<agent>.d/<agent>.hcl and
// starts the agent with its unit's ExecStart, as systemd does on a real host: nothing
// when the unit's required file is empty, and $NOTIFY_SOCKET for a Type=notify unit.
// One difference: the agents run as root here, where consul.service names User=consul.
func (g *Grid) startAgent(h *Host, name, file string, vars map[string]string) error {
	u := g.units[name]
	if err := os.MkdirAll(u.configDir(h), 0o755); err != nil {
		return err
	}
	if err := g.render(file, filepath.Join(u.configDir(h), name+".hcl"), vars); err != nil {
		return err
	}
	if req := u.required(h); req != "" {
		if st, err := os.Stat(req); err != nil || st.Size() == 0 {
			return fmt.Errorf("%s.service would not start on %s: ConditionFileNotEmpty=%s does not hold", name, h.Name, u.requires)
		}
	}
	a := &agentProc{ready: make(chan struct{})}
	var env []string
	if u.notify {
		sock, err := listenNotify(filepath.Join(h.Dir, name+".notify"), a.ready)
		if err != nil {
			return err
		}
		env = append(env, "NOTIFY_SOCKET="+sock)
	}
	bin, args := u.onHost(g.BinDir, h)
	p, err := g.startEnv(h, env, name, bin, args...)
	if err != nil {
		return err
	}
	a.proc = p
	g.mu.Lock()
	h.agents[name] = a
	g.mu.Unlock()
	return nil
}

// listenNotify listens at path for sd_notify datagrams, as systemd does for a
// Type=notify unit, and closes ready at the first READY=1.
func listenNotify(path string, ready chan struct{}) (string, error) {
	_ = os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return "", fmt.Errorf("notify socket %s: %w", path, err)
	}
	go func() {
		defer conn.Close()
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line == "READY=1" {
					close(ready)
					return
				}
			}
		}
	}()
	return path, nil
}

// waitAgentReady waits until host h's agent of a Type=notify unit has said READY=1.
func (g *Grid) waitAgentReady(ctx context.Context, h *Host, name string) error {
	g.mu.Lock()
	a := h.agents[name]
	g.mu.Unlock()
	if a == nil || !g.units[name].notify {
		return nil
	}
	select {
	case <-a.ready:
		return nil
	case <-a.done:
		return fmt.Errorf("%s's %s agent exited before it said READY=1", h.Name, name)
	case <-ctx.Done():
		return fmt.Errorf("%s's %s agent did not say READY=1 on $NOTIFY_SOCKET: %w", h.Name, name, ctx.Err())
	}
}

// StopAgent stops host h's agent as `systemctl stop` does: the unit's KillSignal to the
// agent's process alone (KillMode=process), then waits for it to exit.
func (g *Grid) StopAgent(h *Host, name string, timeout time.Duration) error {
	u := g.units[name]
	g.mu.Lock()
	a := h.agents[name]
	g.mu.Unlock()
	if a == nil {
		return fmt.Errorf("%s runs no %s agent", h.Name, name)
	}
	if !u.processOnly {
		return fmt.Errorf("%s.service lacks KillMode=process: stopping it would stop the dynos too", name)
	}
	if err := a.cmd.Process.Signal(u.killSignal); err != nil {
		return err
	}
	select {
	case <-a.done:
		return nil
	case <-time.After(timeout):
		_ = a.cmd.Process.Signal(syscall.SIGKILL)
		return fmt.Errorf("%s's %s agent did not exit within %s of %s", h.Name, name, timeout, u.killSignal)
	}
}

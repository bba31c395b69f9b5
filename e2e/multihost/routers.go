package multihost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dynogrid/dynogrid/policies"

	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/router"
)

// The ports of dyno-router on a router host (each host has its own port space).
const (
	routerPort        = "8080"
	routerMetricsPort = "9100"
)

// Router is a router host: its own network namespace and Consul client agent, and
// dyno-router following that agent.
type Router struct {
	Host *Host
	// ID is the router's cluster ID (-id), the host's name unless a test chose another.
	ID string
	// Addr is its client address on the bridge, MetricsAddr its /metrics and /status.
	Addr, MetricsAddr string

	mu     sync.Mutex
	proc   *proc
	starts int
}

// startRouter starts dyno-router on its host and waits until it accepts connections.
func (g *Grid) startRouter(ctx context.Context, r *Router) error {
	r.mu.Lock()
	r.starts++
	name := "dyno-router." + strconv.Itoa(r.starts)
	r.mu.Unlock()
	args := []string{"-listen", r.Addr, "-metrics-listen", r.MetricsAddr,
		"-consul", "127.0.0.1:8500", "-domain", "localhost"}
	if g.cluster {
		args = append(args, "-cluster", "-id", r.ID)
	}
	env := []string{"CONSUL_HTTP_TOKEN=" + g.tokens.Consul[policies.ConsulRouter]}
	if g.cluster {
		env = []string{"CONSUL_HTTP_TOKEN=" + g.tokens.Consul[policies.ConsulCluster]}
	}
	p, err := g.startEnv(r.Host, env, name, filepath.Join(g.BinDir, "dyno-router"), args...)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	err = g.wait(ctx, r.Host.Name+" dyno-router", func(context.Context) error {
		select {
		case <-p.done:
			return errors.New("exited")
		default:
		}
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return fmt.Errorf("%w:\n%s", err, devgrid.Tail(filepath.Join(r.Host.Dir, name+".log"), 20))
	}
	return nil
}

// StartRouter starts router r again (after StopRouter) and returns once it accepts
// connections.
func (g *Grid) StartRouter(r *Router) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return g.startRouter(ctx, r)
}

// SignalRouter sends sig to router r's process.
func (g *Grid) SignalRouter(r *Router, sig syscall.Signal) error {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s runs no router", r.Host.Name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("failed to signal the router of %s: %w", r.Host.Name, err)
	}
	return nil
}

// Exited returns a channel closed once router r's current process has exited.
func (r *Router) Exited() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.done
}

// StopRouter sends sig to router r and waits (within) for it to exit.
func (g *Grid) StopRouter(r *Router, sig syscall.Signal, within time.Duration) error {
	done := r.Exited()
	if err := g.SignalRouter(r, sig); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(within):
		return fmt.Errorf("the router of %s still runs %s after %s", r.Host.Name, within, sig)
	}
}

// Status reads router r's /status document.
func (r *Router) Status() (router.Status, error) {
	var st router.Status
	resp, err := httpClient.Get("http://" + r.MetricsAddr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("failed to read the status of %s: %w", r.Host.Name, err)
	}
	return st, nil
}

// Metric reads one unlabelled metric of router r's /metrics.
func (r *Router) Metric(name string) (float64, error) {
	resp, err := httpClient.Get("http://" + r.MetricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics of %s: %s", r.Host.Name, resp.Status)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s has no metric %s", r.Host.Name, name)
}

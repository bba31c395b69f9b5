package devgrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dynogrid/dynogrid/policies"
)

// Grid is a running local grid. Its state is kept in DataDir/grid.json so that another
// process (`dyno dev down`) can stop it.
type Grid struct {
	Options Options `json:"options"`
	// Agents are the processes Up started, in start order.
	Agents []Agent `json:"agents"`
	// Stopping is set in the saved state by Down before it stops any agent, so that a
	// process that holds the grid (a foreground `dyno dev up`) tells a grid being
	// stopped from an agent that exited on its own; see Gone.
	Stopping bool `json:"stopping,omitempty"`
}

// Agent is one process of the grid.
type Agent struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Log  string `json:"log"`
}

// Agent is the grid's agent called name ("consul", "nomad", "router", ...).
func (g *Grid) Agent(name string) (Agent, error) {
	for _, a := range g.Agents {
		if a.Name == name {
			return a, nil
		}
	}
	return Agent{}, fmt.Errorf("the grid runs no agent %s", name)
}

// ErrRunning means a grid already runs in the data directory.
var ErrRunning = errors.New("a grid is already running")

// Up starts Consul, then Nomad, and returns once both are healthy and the Nomad client
// has fingerprinted the dyno driver, or ctx ends. The agents run in their own session,
// so they outlive the calling process until Down stops them. If Up fails half-way it
// stops what it started and removes the data directory it created.
func Up(ctx context.Context, opts Options) (*Grid, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if g, err := Load(opts.DataDir); err == nil && g.alive() {
		return nil, fmt.Errorf("%w in %s (consul http://%s, nomad http://%s): stop it with `dyno dev down --data-dir %s`",
			ErrRunning, opts.DataDir, g.Options.ConsulAddr(), g.Options.NomadAddr(), opts.DataDir)
	}
	for _, p := range opts.ports() {
		if err := portFree(opts.Bind, p); err != nil {
			return nil, fmt.Errorf("port %d on %s is taken (is another Consul or Nomad agent running? choose other ports with --consul-port and --nomad-port): %w", p, opts.Bind, err)
		}
	}
	nomadBin, consulBin := filepath.Join(opts.BinDir, "nomad"), filepath.Join(opts.BinDir, "consul")
	for _, b := range []string{nomadBin, consulBin} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("missing agent binary (run `make agents`): %w", err)
		}
	}

	g := &Grid{Options: opts}
	ok := false
	defer func() {
		if !ok {
			_ = g.Down(context.Background())
		}
	}()
	if err := os.MkdirAll(opts.pluginDir(), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create data dir: %w", err)
	}
	if !opts.ConsulOnly {
		if err := g.createNetwork(); err != nil {
			return nil, err
		}
		opts = g.Options
	}
	if err := linkPlugins(opts.BinDir, opts.pluginDir()); err != nil {
		return nil, err
	}
	consulCfg := filepath.Join(opts.DataDir, "consul.hcl")
	nomadCfg := filepath.Join(opts.DataDir, "nomad.hcl")
	if err := os.WriteFile(consulCfg, []byte(opts.consulConfig()), 0o644); err != nil {
		return nil, err
	}

	if err := g.start("consul", nil, consulBin, "agent", "-dev", "-config-file", consulCfg); err != nil {
		return nil, err
	}
	if err := g.waitFor(ctx, "consul", g.consulLeader); err != nil {
		return nil, g.withLog("consul", err)
	}
	tokens, err := g.bootstrapConsul(ctx)
	if err != nil {
		return nil, g.withLog("consul", err)
	}
	if err := g.waitFor(ctx, "consul", g.consulHealthy); err != nil {
		return nil, g.withLog("consul", err)
	}
	if opts.ConsulOnly {
		ok = true
		return g, nil
	}
	if err := os.WriteFile(nomadCfg, []byte(opts.nomadConfig(tokens.Consul[policies.ConsulNomad])), 0o600); err != nil {
		return nil, err
	}
	// -dev makes the Nomad client destroy its allocations when it stops, so Down leaves
	// no dyno behind.
	if err := g.start("nomad", nil, nomadBin, "agent", "-dev", "-config", nomadCfg); err != nil {
		return nil, err
	}
	if err := g.waitFor(ctx, "nomad", g.nomadLeader); err != nil {
		return nil, g.withLog("nomad", err)
	}
	if err := g.bootstrapNomad(ctx, tokens); err != nil {
		return nil, g.withLog("nomad", err)
	}
	if err := g.waitFor(ctx, "nomad", g.nomadHealthy); err != nil {
		return nil, g.withLog("nomad", err)
	}
	if err := g.startMeter(tokens); err != nil {
		return nil, err
	}
	if opts.RouterPort != 0 {
		if err := g.startRouter(ctx, tokens); err != nil {
			return nil, g.withLog("router", err)
		}
		if err := g.startAutoscaler(tokens); err != nil {
			return nil, err
		}
	}
	if err := g.startLogDrain(tokens); err != nil {
		return nil, err
	}
	if opts.PostgresPort != 0 {
		if err := g.startPostgres(ctx, tokens); err != nil {
			return nil, err
		}
	}
	ok = true
	return g, nil
}

// start runs an agent with env added to this process's environment: an agent is handed
// its token this way, never on its command line, which every user of the host can read.
func (g *Grid) start(name string, env []string, bin string, args ...string) error {
	logPath := filepath.Join(g.Options.DataDir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = g.Options.DataDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", name, err)
	}
	// The agent is reaped by Down (or by init once this process exits).
	go func() { _ = cmd.Wait() }()
	g.Agents = append(g.Agents, Agent{Name: name, PID: cmd.Process.Pid, Log: logPath})
	return g.save()
}

func (g *Grid) withLog(name string, err error) error {
	for _, a := range g.Agents {
		if a.Name == name {
			return fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, a.Log, Tail(a.Log, 20))
		}
	}
	return err
}

func (g *Grid) save() error {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	tmp := g.Options.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, g.Options.statePath())
}

// Load reads the state of the grid whose data directory is dir.
func Load(dir string) (*Grid, error) {
	b, err := os.ReadFile(filepath.Join(dir, "grid.json"))
	if err != nil {
		return nil, err
	}
	var g Grid
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("corrupt grid state %s: %w", filepath.Join(dir, "grid.json"), err)
	}
	return &g, nil
}

func (g *Grid) alive() bool {
	for _, a := range g.Agents {
		if processAlive(a.PID) {
			return true
		}
	}
	return false
}

func portFree(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// linkPlugins puts every Nomad plugin found in binDir into the agent's plugin directory.
func linkPlugins(binDir, pluginDir string) error {
	matches, err := filepath.Glob(filepath.Join(binDir, "nomad-driver-*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		abs, err := filepath.Abs(m)
		if err != nil {
			return err
		}
		dst := filepath.Join(pluginDir, filepath.Base(m))
		_ = os.Remove(dst)
		if err := os.Symlink(abs, dst); err != nil {
			return fmt.Errorf("failed to install plugin %s: %w", filepath.Base(m), err)
		}
	}
	return nil
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 8<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls ready until it succeeds, the agent called what exits, or ctx ends.
func (g *Grid) waitFor(ctx context.Context, what string, ready func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		for _, a := range g.Agents {
			if a.Name == what && !processAlive(a.PID) {
				return fmt.Errorf("%s exited while starting (last: %v)", what, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become healthy: %w (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

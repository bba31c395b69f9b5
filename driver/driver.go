package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/consul-template/signals"
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/drivers/shared/eventer"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/hashicorp/nomad/plugins/shared/hclspec"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"

	"github.com/dynogrid/dynogrid/driver/dynonet"
	"github.com/dynogrid/dynogrid/driver/sandbox"
)

const (
	// defaultPath is the dyno's PATH when the task sets none.
	defaultPath = "/app/bin:/usr/local/bin:/usr/bin:/bin"
	// cleanupTimeout bounds how long the driver waits for a dyno's leftover processes
	// to die before it removes the dyno's cgroup.
	cleanupTimeout = 10 * time.Second
)

// Driver is the dyno task driver.
type Driver struct {
	eventer *eventer.Eventer
	config  Config
	// firewallErr is why the dynos' firewall could not be installed; the driver is
	// unhealthy and starts no dyno in a network namespace while it is set.
	firewallErr error
	// net is the dynos' network, once installed (dynoNetwork).
	netMu sync.Mutex
	net   *dynonet.Network
	// attachMu serializes putting namespaces on the bridge and taking them off
	// (attachNetwork, detachNetwork); attaching counts the tasks of each allocation
	// put on it that are not in the task store yet.
	attachMu  sync.Mutex
	attaching map[string]int
	// netStore is the dynos' address store: dynonet.DefaultStoreDir.
	netStore string
	// cores books the cores of dynos being started (bindCores).
	cores  coreBook
	slugs  *slugCache
	tasks  *taskStore
	ctx    context.Context
	cancel context.CancelFunc
	logger hclog.Logger
}

var (
	_ drivers.DriverPlugin               = (*Driver)(nil)
	_ drivers.ExecTaskStreamingRawDriver = (*Driver)(nil)
)

// New returns the driver; the plugin's main serves it.
func New(logger hclog.Logger) drivers.DriverPlugin {
	ctx, cancel := context.WithCancel(context.Background())
	logger = logger.Named(Name)
	return &Driver{
		eventer:  eventer.NewEventer(ctx, logger),
		tasks:    newTaskStore(),
		ctx:      ctx,
		cancel:   cancel,
		logger:   logger,
		config:   defaultConfig,
		netStore: dynonet.DefaultStoreDir,
	}
}

func (d *Driver) PluginInfo() (*base.PluginInfoResponse, error) { return pluginInfo, nil }

func (d *Driver) ConfigSchema() (*hclspec.Spec, error) { return configSpec, nil }

func (d *Driver) TaskConfigSchema() (*hclspec.Spec, error) { return taskConfigSpec, nil }

func (d *Driver) Capabilities() (*drivers.Capabilities, error) { return capabilities, nil }

func (d *Driver) SetConfig(cfg *base.Config) error {
	var raw []byte
	if cfg != nil {
		raw = cfg.PluginConfig
	}
	config, err := decodeConfig(raw)
	if err != nil {
		return err
	}
	d.config = config
	store, err := config.slugStore() // validated by decodeConfig
	if err != nil {
		return err
	}
	d.slugs = newSlugCache(config.SlugDir, config.SlugStoreDir, store)
	d.firewallErr = d.installFirewall()
	if d.firewallErr != nil {
		// Reported by the fingerprint, which stays unhealthy until it is installed.
		d.logger.Error("dynos' firewall not installed", "error", d.firewallErr)
	}
	if _, err := lookupUser(config.User); err != nil {
		// Reported by the fingerprint, which stays unhealthy until the user exists.
		d.logger.Warn("dyno user not found", "user", config.User, "error", err)
	}
	return nil
}

func (d *Driver) TaskEvents(ctx context.Context) (<-chan *drivers.TaskEvent, error) {
	return d.eventer.TaskEvents(ctx)
}

func (d *Driver) RecoverTask(handle *drivers.TaskHandle) error {
	if handle == nil {
		return errors.New("failed to recover task: nil handle")
	}
	if _, ok := d.tasks.Get(handle.Config.ID); ok {
		return nil
	}
	if handle.Version != taskHandleVersion {
		return fmt.Errorf("failed to recover task %s: state version %d, this driver reads version %d",
			handle.Config.ID, handle.Version, taskHandleVersion)
	}
	var st taskState
	if err := handle.GetDriverState(&st); err != nil {
		return fmt.Errorf("failed to decode task state: %w", err)
	}
	rc, err := pstructs.ReattachConfigToGoPlugin(st.ReattachConfig)
	if err != nil {
		return fmt.Errorf("failed to read sandbox address from task state: %w", err)
	}
	logger := d.logger.With("alloc_id", st.TaskConfig.AllocID, "task_name", st.TaskConfig.Name)
	exec, pluginClient, err := sandbox.Reattach(logger, rc)
	if err != nil {
		return fmt.Errorf("failed to reattach to the dyno's sandbox: %w", err)
	}
	h := newTaskHandle(logger, exec, pluginClient, st)
	d.tasks.Set(st.TaskConfig.ID, h)
	go h.run()
	logger.Info("dyno recovered", "pid", st.Pid)
	return nil
}

func (d *Driver) WaitTask(ctx context.Context, taskID string) (<-chan *drivers.ExitResult, error) {
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return nil, drivers.ErrTaskNotFound
	}
	ch := make(chan *drivers.ExitResult)
	go func() {
		defer close(ch)
		select {
		case <-ctx.Done():
			return
		case <-d.ctx.Done():
			return
		case <-h.doneCh:
		}
		select {
		case <-ctx.Done():
		case <-d.ctx.Done():
		case ch <- h.result():
		}
	}()
	return ch, nil
}

// StopTask sends the task's kill signal to every process of the dyno and kills what is
// left after timeout.
func (d *Driver) StopTask(taskID string, timeout time.Duration, signal string) error {
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return drivers.ErrTaskNotFound
	}
	if err := h.exec.Shutdown(signal, timeout); err != nil {
		if h.pluginClient.Exited() {
			return nil
		}
		return fmt.Errorf("failed to stop the dyno: %w", err)
	}
	return nil
}

// DestroyTask removes every trace of the dyno: processes, container, cgroup.
func (d *Driver) DestroyTask(taskID string, force bool) error {
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return drivers.ErrTaskNotFound
	}
	if h.IsRunning() && !force {
		return errors.New("cannot destroy a running dyno without force")
	}
	if !h.state.OwnLogs {
		if n := stopNomadLogCollector(h.state.TaskConfig); n > 0 {
			h.logger.Info("stopped the log collector Nomad ran for a dyno of an earlier driver", "processes", n)
		}
	}
	if !h.pluginClient.Exited() {
		if err := h.exec.Shutdown("", 0); err != nil {
			h.logger.Warn("sandbox failed to shut down; killing its cgroup", "error", err)
		}
		h.pluginClient.Kill()
	}
	if err := destroyCgroup(h.state.CgroupPath, cleanupTimeout); err != nil {
		return fmt.Errorf("failed to destroy the dyno: %w", err)
	}
	// Only a dyno of an earlier driver has a PrivateDir: a dyno's ./tmp and ./log are
	// tmpfs now, gone with its mount namespace. RemoveAll does not follow the symlinks a
	// dyno may have planted.
	if h.state.PrivateDir != "" {
		if err := os.RemoveAll(h.state.PrivateDir); err != nil {
			return fmt.Errorf("failed to remove the dyno's tmp and log: %w", err)
		}
	}
	d.tasks.Delete(taskID)
	if h.state.NetworkAttached {
		// What stays is replaced when its host port or address is given again.
		if err := d.detachNetwork(h.state.TaskConfig.AllocID); err != nil {
			h.logger.Warn("failed to take the dyno off the bridge", "error", err)
		}
	}
	return nil
}

func (d *Driver) InspectTask(taskID string) (*drivers.TaskStatus, error) {
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return nil, drivers.ErrTaskNotFound
	}
	return h.TaskStatus(), nil
}

func (d *Driver) TaskStats(ctx context.Context, taskID string, interval time.Duration) (<-chan *drivers.TaskResourceUsage, error) {
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return nil, drivers.ErrTaskNotFound
	}
	return h.exec.Stats(ctx, interval)
}

// SignalTask sends signal to every process of the dyno.
func (d *Driver) SignalTask(taskID string, signal string) error {
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return drivers.ErrTaskNotFound
	}
	sig, ok := signals.SignalLookup[signal]
	if !ok {
		return fmt.Errorf("signal: unknown signal %q", signal)
	}
	return h.exec.Signal(sig)
}

func (d *Driver) ExecTask(taskID string, cmd []string, timeout time.Duration) (*drivers.ExecTaskResult, error) {
	if len(cmd) == 0 {
		return nil, errors.New("exec: command must not be empty")
	}
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return nil, drivers.ErrTaskNotFound
	}
	out, code, err := h.exec.Exec(time.Now().Add(timeout), cmd[0], cmd[1:])
	if err != nil {
		return nil, err
	}
	return &drivers.ExecTaskResult{Stdout: out, ExitResult: &drivers.ExitResult{ExitCode: code}}, nil
}

// ExecTaskStreamingRaw runs an interactive command inside the dyno's sandbox (nomad
// alloc exec).
func (d *Driver) ExecTaskStreamingRaw(ctx context.Context, taskID string, command []string, tty bool, stream drivers.ExecTaskStream) error {
	if len(command) == 0 {
		return errors.New("exec: command must not be empty")
	}
	h, ok := d.tasks.Get(taskID)
	if !ok {
		return drivers.ErrTaskNotFound
	}
	return h.exec.ExecStreaming(ctx, command, tty, stream)
}

// Shutdown stops the driver's background work (the plugin is going away; dynos stay).
func (d *Driver) Shutdown() { d.cancel() }

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/nomad/drivers/shared/executor"
	"github.com/hashicorp/nomad/helper/stats"
	"github.com/hashicorp/nomad/plugins/base"
)

// Start launches a sandbox process for one dyno and returns the executor it serves and
// the go-plugin client that owns the process.
func Start(logger hclog.Logger, opts Options) (executor.Executor, *plugin.Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	if opts.CPUTotalTicks == 0 {
		opts.CPUTotalTicks = stats.CpuTotalTicks()
	}
	enc, err := opts.encode()
	if err != nil {
		return nil, nil, err
	}
	bin, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to find the driver binary: %w", err)
	}
	cmd := exec.Command(bin, Subcommand, enc)
	// Its own session: signals meant for the Nomad client or the plugin do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return connect(true, &plugin.ClientConfig{
		HandshakeConfig:  base.Handshake,
		Plugins:          executor.GetPluginMap(logger, true, opts.CPUTotalTicks),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger.Named("sandbox"),
	})
}

// Reattach connects to the sandbox process of a dyno started by an earlier plugin process.
func Reattach(logger hclog.Logger, rc *plugin.ReattachConfig) (executor.Executor, *plugin.Client, error) {
	return connect(false, &plugin.ClientConfig{
		HandshakeConfig:  base.Handshake,
		Reattach:         rc,
		Plugins:          executor.GetPluginMap(logger, true, stats.CpuTotalTicks()),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger.Named("sandbox"),
	})
}

// connect dispenses the executor; when it fails it kills the process only if it started
// it (a process it failed to reattach to may still hold a running dyno).
func connect(started bool, cfg *plugin.ClientConfig) (executor.Executor, *plugin.Client, error) {
	c := plugin.NewClient(cfg)
	fail := func(err error) (executor.Executor, *plugin.Client, error) {
		if started {
			c.Kill()
		}
		return nil, nil, err
	}
	rpc, err := c.Client()
	if err != nil {
		return fail(fmt.Errorf("failed to connect to the sandbox process: %w", err))
	}
	raw, err := rpc.Dispense("executor")
	if err != nil {
		return fail(fmt.Errorf("failed to dispense the sandbox executor: %w", err))
	}
	e, ok := raw.(executor.Executor)
	if !ok {
		return fail(fmt.Errorf("sandbox process served %T, not an executor", raw))
	}
	return e, c, nil
}

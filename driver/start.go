package driver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/nomad/drivers/shared/executor"
	"github.com/hashicorp/nomad/plugins/drivers"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"

	"github.com/dynogrid/dynogrid/driver/sandbox"
)

// StartTask starts a dyno: it checks the task, prepares the dyno's files (slug, sandbox
// layout), starts the dyno's sandbox process and launches the
// dyno's command in it. When it fails half-way it undoes what it did, last step first.
func (d *Driver) StartTask(cfg *drivers.TaskConfig) (*drivers.TaskHandle, *drivers.DriverNetwork, error) {
	if _, ok := d.tasks.Get(cfg.ID); ok {
		return nil, nil, fmt.Errorf("task with ID %q already started", cfg.ID)
	}
	tc, err := d.taskConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	u, err := lookupUser(d.config.User)
	if err != nil {
		return nil, nil, err
	}
	app, err := d.appDir(cfg, tc)
	if err != nil {
		return nil, nil, err
	}

	var undo []func()
	started := false
	defer func() {
		for i := len(undo) - 1; !started && i >= 0; i-- {
			undo[i]()
		}
	}()
	lay, err := buildLayout(cfg, app, u)
	if err != nil {
		return nil, nil, err
	}
	env := dynoEnv(cfg.Env)
	command, err := lay.resolveCommand(tc.Command, env["PATH"])
	if err != nil {
		return nil, nil, err
	}
	if err := d.networkReady(cfg); err != nil {
		return nil, nil, err
	}
	attached, attachDone, err := d.attachNetwork(cfg)
	if err != nil {
		return nil, nil, err
	}
	defer attachDone() // before the undo: the dyno is in the task store by then, or did not start
	if attached {
		undo = append(undo, func() {
			if err := d.detachNetwork(cfg.AllocID); err != nil {
				d.logger.Warn("failed to take a dyno that did not start off the bridge", "alloc_id", cfg.AllocID, "error", err)
			}
		})
	}
	cpus, booked, err := d.bindCores(cfg)
	if err != nil {
		return nil, nil, err
	}
	defer booked() // the dyno is in the task store by then, or did not start
	opts, err := d.sandboxOptions(cfg, tc, cpus, lay, u)
	if err != nil {
		return nil, nil, err
	}

	logger := d.logger.With("alloc_id", cfg.AllocID, "task_name", cfg.Name)
	began := time.Now()
	exec, pluginClient, err := sandbox.Start(logger, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to start the sandbox: %w", err)
	}
	sandboxUp := time.Since(began)
	undo = append(undo, func() { stopSandbox(exec, pluginClient, opts.CgroupPath) })
	ps, err := exec.Launch(execCommand(cfg, tc, command, env, lay, u))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to launch the dyno: %w", err)
	}
	launched := time.Since(began)
	handle, err := d.track(cfg, logger, exec, pluginClient, ps.Pid, opts, attached)
	if err != nil {
		return nil, nil, err
	}
	started = true
	logger.Info("dyno started", "pid", ps.Pid, "cpuset", opts.Cpuset, "command", command,
		"sandbox_started", sandboxUp.Round(time.Millisecond), "launched", launched.Round(time.Millisecond))
	return handle, nil, nil
}

// taskConfig decodes and checks the task's config block and what the driver needs of
// the rest of the task.
func (d *Driver) taskConfig(cfg *drivers.TaskConfig) (TaskConfig, error) {
	var tc TaskConfig
	if err := cfg.DecodeDriverConfig(&tc); err != nil {
		return tc, fmt.Errorf("failed to decode dyno task config: %w", err)
	}
	if err := tc.validate(); err != nil {
		return tc, fmt.Errorf("invalid dyno task config: %w", err)
	}
	if tc.Slug != "" {
		if err := d.slugs.checkSource(tc.Slug, tc.SlugSHA256); err != nil {
			return tc, fmt.Errorf("invalid dyno task config: %w", err)
		}
	}
	if cfg.User != "" && cfg.User != d.config.User {
		return tc, fmt.Errorf("user: dynos run as %q (plugin config user), the task asks for %q", d.config.User, cfg.User)
	}
	if cfg.Resources == nil || cfg.Resources.NomadResources == nil || cfg.Resources.NomadResources.Memory.MemoryMB <= 0 {
		return tc, errors.New("resources: a dyno needs a memory limit")
	}
	return tc, nil
}

// appDir is the host directory mounted read-only at /app: the unpacked slug, shared by
// the release's dynos on this host, or, for a task without a slug, an empty directory
// (never its local/, where Nomad puts the job's artifacts: see buildLayout).
func (d *Driver) appDir(cfg *drivers.TaskConfig, tc TaskConfig) (string, error) {
	if tc.Slug != "" {
		return d.slugs.Ensure(d.ctx, tc.Slug, tc.SlugSHA256)
	}
	app := filepath.Join(cfg.TaskDir().Dir, "dyno", "app")
	for _, sub := range []string{"tmp", "log"} {
		if err := os.MkdirAll(filepath.Join(app, sub), 0o755); err != nil {
			return "", fmt.Errorf("failed to prepare app dir: %w", err)
		}
	}
	return app, nil
}

// networkReady checks that a dyno in a network namespace, which is on the bridge, gets
// its firewall: installed, and first in INPUT and FORWARD; and that a dyno in the host's
// network is allowed.
func (d *Driver) networkReady(cfg *drivers.TaskConfig) error {
	if cfg.NetworkIsolation == nil {
		if !d.config.AllowHostNetwork {
			return errHostNetwork
		}
		return nil // the host's network: no firewall applies
	}
	return d.ensureFirewall()
}

// errHostNetwork refuses a dyno in the host's network, where the firewall does not
// apply and the host's loopback services (the agents' APIs, a database's admin port)
// are the dyno's.
var errHostNetwork = errors.New(`network: the dyno's task group shares the host's network (network mode "host", or no network block); ` +
	`a dyno runs in a network namespace of its own: give the group network { mode = "none" } (plugin config allow_host_network = true lets dynos share the host's network)`)

// sandboxOptions are the bounds and places of the dyno's sandbox. It clears what an
// earlier run of the same task (a restart) left: its cgroup, libcontainer's state, and
// an earlier driver's log collector.
func (d *Driver) sandboxOptions(cfg *drivers.TaskConfig, tc TaskConfig, cpus string, lay *layout, u sandboxUser) (sandbox.Options, error) {
	pids := d.config.PidsLimit
	if tc.PidsLimit > 0 {
		pids = tc.PidsLimit
	}
	cgPath := dynoCgroupPath(d.config.CgroupParent, cfg.AllocID, cfg.Name)
	if err := destroyCgroup(cgPath, cleanupTimeout); err != nil {
		return sandbox.Options{}, err
	}
	base := filepath.Join(cfg.TaskDir().Dir, "dyno")
	if err := os.RemoveAll(filepath.Join(base, "state")); err != nil {
		return sandbox.Options{}, fmt.Errorf("failed to clear stale sandbox state: %w", err)
	}
	// A FIFO left by an earlier start may still be read by the log collector Nomad ran
	// for it under an earlier version of the driver, which would take part of the
	// dyno's output.
	if _, err := os.Stat(cfg.StdoutPath); cfg.StdoutPath != "" && err == nil {
		stopNomadLogCollector(cfg)
	}
	return sandbox.Options{
		LogFile:     filepath.Join(base, "sandbox.log"),
		LogLevel:    "info",
		StateDir:    filepath.Join(base, "state"),
		ContainerID: filepath.Base(cgPath) + "." + invocation(cfg.ID),
		CgroupPath:  cgPath,
		Cpuset:      cpus,
		PidsLimit:   pids,
		Cwd:         appDir,
		Logs:        d.logs(cfg, tc),
		Scratch: sandbox.Scratch{
			Dirs:      lay.Scratch,
			UID:       u.UID,
			GID:       u.GID,
			SizeBytes: scratchBytes(sandbox.MemoryLimitMB(cfg.Resources.NomadResources)),
		},
	}, nil
}

// logs are the dyno's log files, or nil when its task disabled them (Nomad then gives
// /dev/null for its stdout and stderr, and the dyno's output is discarded). They are
// bounded as the task asks, within the plugin's bounds.
func (d *Driver) logs(cfg *drivers.TaskConfig, tc TaskConfig) *sandbox.Logs {
	if cfg.StdoutPath == "" || cfg.StdoutPath == os.DevNull {
		return nil
	}
	return &sandbox.Logs{
		Dir:           cfg.TaskDir().LogDir,
		Task:          cfg.Name,
		MaxFiles:      atMost(tc.LogMaxFiles, d.config.LogMaxFiles),
		MaxFileSizeMB: atMost(tc.LogMaxFileSizeMB, d.config.LogMaxFileSizeMB),
	}
}

// atMost is asked when it is set (above zero) and below bound, else bound.
func atMost(asked, bound int) int {
	if asked > 0 && asked < bound {
		return asked
	}
	return bound
}

// execCommand is what the sandbox runs: the dyno's command as its user, in its layout.
func execCommand(cfg *drivers.TaskConfig, tc TaskConfig, command string, env map[string]string, lay *layout, u sandboxUser) *executor.ExecCommand {
	return &executor.ExecCommand{
		Cmd:            command,
		Args:           tc.Args,
		Env:            envList(env),
		User:           u.Name,
		TaskDir:        lay.Root,
		StdoutPath:     cfg.StdoutPath,
		StderrPath:     cfg.StderrPath,
		Mounts:         lay.Mounts,
		Resources:      cfg.Resources,
		ResourceLimits: true,
		// The group's network namespace that Nomad made, or nil: the host's network.
		NetworkIsolation: cfg.NetworkIsolation,
	}
}

// track stores the running dyno's state in its task handle for Nomad, and starts
// watching the dyno for its exit.
func (d *Driver) track(cfg *drivers.TaskConfig, logger hclog.Logger, exec executor.Executor, pluginClient *plugin.Client,
	pid int, opts sandbox.Options, networkAttached bool) (*drivers.TaskHandle, error) {
	st := taskState{
		ReattachConfig:  pstructs.ReattachConfigFromGoPlugin(pluginClient.ReattachConfig()),
		TaskConfig:      cfg,
		Pid:             pid,
		StartedAt:       time.Now().Round(time.Millisecond),
		CgroupPath:      opts.CgroupPath,
		Cpuset:          opts.Cpuset,
		NetworkAttached: networkAttached,
		OwnLogs:         true,
	}
	handle := drivers.NewTaskHandle(taskHandleVersion)
	handle.Config = cfg
	if err := handle.SetDriverState(&st); err != nil {
		return nil, fmt.Errorf("failed to store the dyno's state: %w", err)
	}
	h := newTaskHandle(logger, exec, pluginClient, st)
	d.tasks.Set(cfg.ID, h)
	go h.run()
	return handle, nil
}

// stopSandbox ends a sandbox whose dyno never started, and removes its cgroup.
func stopSandbox(exec executor.Executor, pluginClient *plugin.Client, cgPath string) {
	_ = exec.Shutdown("", 0)
	pluginClient.Kill()
	_ = destroyCgroup(cgPath, cleanupTimeout)
}

// invocation is the last part of a Nomad task ID (<alloc>/<task>/<invocation>), unique
// per start of the task.
func invocation(taskID string) string {
	if i := strings.LastIndexByte(taskID, '/'); i >= 0 {
		taskID = taskID[i+1:]
	}
	return unsafeCgroupChars.ReplaceAllString(taskID, "_")
}

// dynoEnv is the task's environment plus the defaults a dyno expects, without Nomad's
// directories, which are not in the sandbox (see buildLayout).
func dynoEnv(taskEnv map[string]string) map[string]string {
	env := make(map[string]string, len(taskEnv)+3)
	for k, v := range taskEnv {
		switch k {
		case "NOMAD_ALLOC_DIR", "NOMAD_TASK_DIR", "NOMAD_SECRETS_DIR":
			continue
		}
		env[k] = v
	}
	for k, v := range map[string]string{"PATH": defaultPath, "HOME": appDir, "TMPDIR": appDir + "/tmp"} {
		if env[k] == "" {
			env[k] = v
		}
	}
	return env
}

func envList(env map[string]string) []string {
	l := make([]string, 0, len(env))
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}

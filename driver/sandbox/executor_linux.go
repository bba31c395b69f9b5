// Copyright (c) HashiCorp, Inc.
// SPDX-License-Identifier: MPL-2.0

// Derived from github.com/hashicorp/nomad v1.6.3 drivers/shared/executor/executor_linux.go:
// the container is the dyno's sandbox (see containerConfig), signals of a shutdown reach
// every process of the dyno, and extra processes (alloc exec, checks) run as the dyno's
// user in its working directory.

//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/armon/circbuf"
	"github.com/hashicorp/consul-template/signals"
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/client/logmon"
	cstructs "github.com/hashicorp/nomad/client/structs"
	"github.com/hashicorp/nomad/drivers/shared/executor"
	"github.com/hashicorp/nomad/helper/stats"
	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/cgroups"
	lutils "github.com/opencontainers/runc/libcontainer/utils"
)

// shutdownWait bounds how long Shutdown waits for the dyno to die after SIGKILL.
const shutdownWait = 15 * time.Second

type sandboxExecutor struct {
	logger hclog.Logger
	opts   Options

	totalCPU, userCPU, systemCPU *stats.CpuStats

	command        *executor.ExecCommand
	container      libcontainer.Container
	logs           logmon.LogMon
	userProc       *libcontainer.Process
	userProcExited chan struct{}
	exitState      *executor.ProcessState
}

var _ executor.Executor = (*sandboxExecutor)(nil)

func newExecutor(logger hclog.Logger, opts Options) *sandboxExecutor {
	stats.SetCpuTotalTicks(opts.CPUTotalTicks)
	return &sandboxExecutor{
		logger:    logger,
		opts:      opts,
		totalCPU:  stats.NewCpuStats(),
		userCPU:   stats.NewCpuStats(),
		systemCPU: stats.NewCpuStats(),
	}
}

// Launch creates the dyno's container and starts its process in it.
func (l *sandboxExecutor) Launch(command *executor.ExecCommand) (*executor.ProcessState, error) {
	if l.container != nil {
		return nil, errors.New("sandbox already launched a dyno")
	}
	l.command = command
	factory, err := libcontainer.New(l.opts.StateDir,
		// os.Args[0] is this binary; Nomad's executor package turns it into the
		// container's init when called with libcontainer-shim.
		libcontainer.InitArgs(os.Args[0], "libcontainer-shim"))
	if err != nil {
		return nil, fmt.Errorf("failed to create container factory: %w", err)
	}
	cfg, err := containerConfig(command, l.opts)
	if err != nil {
		return nil, err
	}
	container, err := factory.Create(l.opts.ContainerID, cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create container %s: %w", l.opts.ContainerID, err)
	}
	l.container = container
	// From here on a failure undoes what was made; the error that made it fail is the
	// one to report.
	fail := func(err error) (*executor.ProcessState, error) {
		_ = container.Destroy()
		command.Close()
		if l.logs != nil {
			_ = l.logs.Stop()
		}
		return nil, err
	}

	if o := l.opts.Logs; o != nil {
		// The log collector makes the FIFOs that command.Stdout and Stderr open.
		l.logs = logmon.NewLogMon(l.logger.Named("logs"))
		if err := l.logs.Start(&logmon.LogConfig{
			LogDir:        o.Dir,
			StdoutLogFile: o.Task + ".stdout",
			StderrLogFile: o.Task + ".stderr",
			StdoutFifo:    command.StdoutPath,
			StderrFifo:    command.StderrPath,
			MaxFiles:      o.MaxFiles,
			MaxFileSizeMB: o.MaxFileSizeMB,
		}); err != nil {
			return fail(fmt.Errorf("failed to start the dyno's logs: %w", err))
		}
	}
	stdout, err := command.Stdout()
	if err != nil {
		return fail(err)
	}
	stderr, err := command.Stderr()
	if err != nil {
		return fail(err)
	}
	process := &libcontainer.Process{
		Args:   append([]string{command.Cmd}, command.Args...),
		Env:    command.Env,
		User:   command.User,
		Cwd:    l.opts.Cwd,
		Stdout: stdout,
		Stderr: stderr,
		Init:   true,
	}
	l.userProc = process
	l.logger.Debug("launching dyno", "command", command.Cmd, "args", strings.Join(command.Args, " "))
	if err := container.Run(process); err != nil {
		return fail(fmt.Errorf("failed to start the dyno's process: %w", err))
	}
	pid, err := process.Pid()
	if err != nil {
		return fail(fmt.Errorf("failed to read the dyno's pid: %w", err))
	}
	l.userProcExited = make(chan struct{})
	go l.wait()
	return &executor.ProcessState{Pid: pid, ExitCode: -1, Time: time.Now()}, nil
}

// Wait blocks until the dyno's process exits.
func (l *sandboxExecutor) Wait(ctx context.Context) (*executor.ProcessState, error) {
	if l.userProcExited == nil {
		return nil, errors.New("sandbox has not launched a dyno")
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.userProcExited:
		return l.exitState, nil
	}
}

func (l *sandboxExecutor) wait() {
	defer close(l.userProcExited)
	defer l.closeOutput()
	ps, err := l.userProc.Wait()
	if err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			l.logger.Error("failed to wait for the dyno's process", "error", err)
			l.exitState = &executor.ProcessState{ExitCode: 1, Time: time.Now()}
			return
		}
		ps = exitErr.ProcessState
	}
	exitCode, signal := 1, 0
	if status, ok := ps.Sys().(syscall.WaitStatus); ok {
		exitCode = status.ExitStatus()
		if status.Signaled() {
			signal = int(status.Signal())
			exitCode = 128 + signal
		}
	}
	l.exitState = &executor.ProcessState{Pid: ps.Pid(), ExitCode: exitCode, Signal: signal, Time: time.Now()}
}

// closeOutput closes the sandbox's ends of the dyno's stdout and stderr. Once every
// process of the dyno is gone the FIFOs are at their end: the log collector's Stop waits
// for what is left in them and writes it out.
func (l *sandboxExecutor) closeOutput() {
	l.command.Close()
	if l.logs != nil {
		_ = l.logs.Stop()
	}
}

// Shutdown sends signal to every process of the dyno, waits up to grace for the dyno's
// first process to exit, kills every process that is left and removes the container and
// its cgroups.
func (l *sandboxExecutor) Shutdown(signal string, grace time.Duration) error {
	if l.container == nil {
		return nil
	}
	status, err := l.container.Status()
	if err != nil {
		return fmt.Errorf("failed to read the dyno's state: %w", err)
	}
	defer func() { _ = l.container.Destroy() }()
	if status == libcontainer.Stopped {
		return nil
	}
	if grace > 0 {
		if signal == "" {
			signal = "SIGTERM"
		}
		sig, ok := signals.SignalLookup[signal]
		if !ok {
			return fmt.Errorf("unknown kill signal %q", signal)
		}
		if err := l.container.Signal(sig, true); err != nil {
			return fmt.Errorf("failed to signal the dyno: %w", err)
		}
		select {
		case <-l.userProcExited:
			return nil
		case <-time.After(grace):
		}
	}
	// SIGKILL to the dyno's first process, PID 1 of the dyno's PID namespace, makes the
	// kernel kill every other process of the namespace. (libcontainer's kill of all
	// processes would also reap the first one and lose its exit status.)
	if err := l.userProc.Signal(os.Kill); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to kill the dyno: %w", err)
	}
	select {
	case <-l.userProcExited:
		return nil
	case <-time.After(shutdownWait):
		return fmt.Errorf("dyno did not exit %s after SIGKILL", shutdownWait)
	}
}

// UpdateResources is not supported: a dyno's bounds change with a new release.
func (l *sandboxExecutor) UpdateResources(*drivers.Resources) error { return nil }

// Version is the executor protocol version.
func (l *sandboxExecutor) Version() (*executor.ExecutorVersion, error) {
	return &executor.ExecutorVersion{Version: executor.ExecutorVersionLatest}, nil
}

// Stats streams the dyno's CPU and memory use, measured by its cgroup.
func (l *sandboxExecutor) Stats(ctx context.Context, interval time.Duration) (<-chan *cstructs.TaskResourceUsage, error) {
	if l.container == nil {
		return nil, errors.New("sandbox has not launched a dyno")
	}
	ch := make(chan *cstructs.TaskResourceUsage)
	go l.handleStats(ctx, ch, interval)
	return ch, nil
}

func (l *sandboxExecutor) handleStats(ctx context.Context, ch chan<- *cstructs.TaskResourceUsage, interval time.Duration) {
	defer close(ch)
	measuredMem := executor.ExecutorCgroupV1MeasuredMemStats
	if cgroups.IsCgroup2UnifiedMode() {
		measuredMem = executor.ExecutorCgroupV2MeasuredMemStats
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			timer.Reset(interval)
		}
		ls, err := l.container.Stats()
		if err != nil {
			l.logger.Warn("failed to collect dyno stats", "error", err)
			return
		}
		cs := ls.CgroupStats
		mem := cs.MemoryStats
		total := float64(cs.CpuStats.CpuUsage.TotalUsage)
		percent := l.totalCPU.Percent(total)
		usage := &cstructs.TaskResourceUsage{
			ResourceUsage: &cstructs.ResourceUsage{
				MemoryStats: &cstructs.MemoryStats{
					RSS:            mem.Stats["rss"],
					Cache:          mem.Stats["cache"],
					Swap:           mem.SwapUsage.Usage,
					MappedFile:     mem.Stats["mapped_file"],
					Usage:          mem.Usage.Usage,
					MaxUsage:       mem.Usage.MaxUsage,
					KernelUsage:    mem.KernelUsage.Usage,
					KernelMaxUsage: mem.KernelUsage.MaxUsage,
					Measured:       measuredMem,
				},
				CpuStats: &cstructs.CpuStats{
					SystemMode:       l.systemCPU.Percent(float64(cs.CpuStats.CpuUsage.UsageInKernelmode)),
					UserMode:         l.userCPU.Percent(float64(cs.CpuStats.CpuUsage.UsageInUsermode)),
					Percent:          percent,
					ThrottledPeriods: cs.CpuStats.ThrottlingData.ThrottledPeriods,
					ThrottledTime:    cs.CpuStats.ThrottlingData.ThrottledTime,
					TotalTicks:       l.systemCPU.TicksConsumed(percent),
					Measured:         executor.ExecutorCgroupMeasuredCpuStats,
				},
			},
			Timestamp: time.Now().UTC().UnixNano(),
		}
		select {
		case <-ctx.Done():
			return
		case ch <- usage:
		}
	}
}

// Signal sends s to every process of the dyno, as Heroku does.
func (l *sandboxExecutor) Signal(s os.Signal) error {
	if l.container == nil {
		return errors.New("sandbox has not launched a dyno")
	}
	return l.container.Signal(s, true)
}

// Exec runs a command inside the dyno's sandbox, as the dyno's user, and returns its
// output (for script checks).
func (l *sandboxExecutor) Exec(deadline time.Time, cmd string, args []string) ([]byte, int, error) {
	if l.container == nil {
		return nil, 0, errors.New("sandbox has not launched a dyno")
	}
	buf, _ := circbuf.NewBuffer(int64(drivers.CheckBufSize))
	process := &libcontainer.Process{
		Args:   append([]string{cmd}, args...),
		Env:    l.command.Env,
		User:   l.command.User,
		Cwd:    l.opts.Cwd,
		Stdout: buf,
		Stderr: buf,
	}
	if err := l.container.Run(process); err != nil {
		return nil, 0, fmt.Errorf("failed to start %s in the sandbox: %w", cmd, err)
	}
	type result struct {
		ps  *os.ProcessState
		err error
	}
	done := make(chan result, 1)
	go func() {
		ps, err := process.Wait()
		done <- result{ps, err}
	}()
	select {
	case r := <-done:
		ps := r.ps
		if r.err != nil {
			var exitErr *exec.ExitError
			if !errors.As(r.err, &exitErr) {
				return nil, 0, r.err
			}
			ps = exitErr.ProcessState
		}
		code := 0
		if status, ok := ps.Sys().(syscall.WaitStatus); ok {
			code = status.ExitStatus()
		}
		return buf.Bytes(), code, nil
	case <-time.After(time.Until(deadline)):
		_ = process.Signal(os.Kill)
		return nil, 0, context.DeadlineExceeded
	}
}

// ExecStreaming runs an interactive command inside the dyno's sandbox (nomad alloc exec).
func (l *sandboxExecutor) ExecStreaming(ctx context.Context, cmd []string, tty bool, stream drivers.ExecTaskStream) error {
	if l.container == nil {
		return errors.New("sandbox has not launched a dyno")
	}
	process := &libcontainer.Process{
		Args: cmd,
		Env:  l.command.Env,
		User: l.command.User,
		Cwd:  l.opts.Cwd,
	}
	h := &execHelper{
		logger: l.logger,
		newTerminal: func() (func() (*os.File, error), *os.File, error) {
			parent, child, err := lutils.NewSockPair("socket")
			if err != nil {
				return nil, nil, fmt.Errorf("failed to create terminal: %w", err)
			}
			return func() (*os.File, error) { return lutils.RecvFd(parent) }, child, nil
		},
		setTTY: func(tty *os.File) error {
			process.ConsoleSocket = tty
			return nil
		},
		setIO: func(stdin io.Reader, stdout, stderr io.Writer) error {
			process.Stdin, process.Stdout, process.Stderr = stdin, stdout, stderr
			return nil
		},
		processStart: func() error { return l.container.Run(process) },
		processWait: func() (*os.ProcessState, error) {
			ps, err := process.Wait()
			if err != nil {
				l.logger.Warn("exec session ended", "command", cmd, "error", err)
			}
			return ps, err
		},
	}
	return h.run(ctx, tty, stream)
}

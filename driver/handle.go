package driver

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/nomad/drivers/shared/executor"
	"github.com/hashicorp/nomad/plugins/drivers"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"
)

// taskState is what RecoverTask needs to re-attach to a running dyno. It is stored by
// Nomad with the task handle (version taskHandleVersion).
type taskState struct {
	ReattachConfig *pstructs.ReattachConfig
	TaskConfig     *drivers.TaskConfig
	Pid            int
	StartedAt      time.Time
	CgroupPath     string
	Cpuset         string
	// PrivateDir held the ./tmp and ./log of a dyno started by an earlier version of the
	// driver, on the host (<dyno_dir>/<alloc id>.<task>); DestroyTask removes it. A dyno
	// started now has none: its ./tmp and ./log are tmpfs of its own mount namespace.
	PrivateDir string
	// NetworkAttached: the driver put the allocation's network namespace on the bridge
	// (dynonet), and takes it off when the dyno is destroyed.
	NetworkAttached bool
	// OwnLogs: the driver keeps the dyno's logs (its sandbox writes them). A dyno
	// started by an earlier version of the driver has a log collector of Nomad's, which
	// DestroyTask, or the next start of the task, stops (stopNomadLogCollector).
	OwnLogs bool
}

// taskHandle is one running dyno.
type taskHandle struct {
	exec         executor.Executor
	pluginClient *plugin.Client
	logger       hclog.Logger
	state        taskState

	mu         sync.RWMutex
	procState  drivers.TaskState
	completed  time.Time
	exitResult *drivers.ExitResult
	doneCh     chan struct{}
}

func newTaskHandle(logger hclog.Logger, e executor.Executor, pc *plugin.Client, st taskState) *taskHandle {
	return &taskHandle{
		exec:         e,
		pluginClient: pc,
		logger:       logger,
		state:        st,
		procState:    drivers.TaskStateRunning,
		doneCh:       make(chan struct{}),
	}
}

func (h *taskHandle) TaskStatus() *drivers.TaskStatus {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return &drivers.TaskStatus{
		ID:          h.state.TaskConfig.ID,
		Name:        h.state.TaskConfig.Name,
		State:       h.procState,
		StartedAt:   h.state.StartedAt,
		CompletedAt: h.completed,
		ExitResult:  h.exitResult.Copy(),
		DriverAttributes: map[string]string{
			"pid":    strconv.Itoa(h.state.Pid),
			"cgroup": h.state.CgroupPath,
			"cpuset": h.state.Cpuset,
		},
	}
}

func (h *taskHandle) IsRunning() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.procState == drivers.TaskStateRunning
}

// run waits for the dyno to exit and records how it ended, OOM kills included.
func (h *taskHandle) run() {
	defer close(h.doneCh)
	ps, err := h.exec.Wait(context.Background())
	res := &drivers.ExitResult{}
	if err != nil {
		res.Err = fmt.Errorf("failed to wait for the dyno: %w", err)
		res.ExitCode = -1
	} else {
		res.ExitCode, res.Signal = ps.ExitCode, ps.Signal
		// The dyno's cgroup is new with every start, so any OOM kill it counts is this run's.
		if n, err := oomKills(h.state.CgroupPath); err == nil && n > 0 {
			res.OOMKilled = true
		} else if err != nil {
			h.logger.Debug("failed to read oom kills", "error", err)
		}
	}
	h.mu.Lock()
	h.procState = drivers.TaskStateExited
	h.exitResult = res
	h.completed = time.Now()
	h.mu.Unlock()
}

func (h *taskHandle) result() *drivers.ExitResult {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.exitResult.Copy()
}

package driver

import (
	"github.com/dynogrid/dynogrid/driver/dynonet"
	"github.com/dynogrid/dynogrid/driver/netfw"
	"github.com/dynogrid/dynogrid/internal/testutil"

	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/helper/testlog"
	"github.com/hashicorp/nomad/helper/uuid"
	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/shoenig/test/must"
)

// requireRoot puts a test that builds real sandboxes in the agent tier (see
// internal/testutil): they need root.
func requireRoot(t *testing.T) {
	t.Helper()
	testutil.E2E(t, "builds real sandboxes, as root", testutil.Root)
}

// newHarness returns Nomad's driver test harness around a dyno driver whose slug cache
// and slug store live in a fresh directory.
func newHarness(t *testing.T) (*DriverHarness, *Driver) {
	t.Helper()
	return newHarnessWith(t, func(*Config) {})
}

// newHarnessWith is newHarness with the plugin config that change makes.
func newHarnessWith(t *testing.T, change func(*Config)) (*DriverHarness, *Driver) {
	t.Helper()
	requireRoot(t)
	d := New(testlog.HCLogger(t)).(*Driver)
	t.Cleanup(d.Shutdown)
	dir := t.TempDir()
	// The firewall's chains are named after a bridge of this test's own, and removed.
	// The harness's tasks have no network namespace: they share the host's network.
	bridge := "dt" + uuid.Generate()[:8]
	t.Cleanup(func() { must.NoError(t, netfw.Remove(bridge)) })
	cfg := Config{SlugDir: filepath.Join(dir, "slugs"), SlugStoreDir: filepath.Join(dir, "slug-store"), DynoDir: filepath.Join(dir, "dynos"), User: "nobody", PidsLimit: 256, CgroupParent: "dynogrid-test",
		Bridge: bridge, BridgeSubnet: dynonet.DefaultSubnet, HostPortRange: "20000-32000", AllowHostNetwork: true, InternalNetworks: netfw.DefaultInternalNetworks,
		LogMaxFiles: 5, LogMaxFileSizeMB: 10}
	change(&cfg)
	var raw []byte
	must.NoError(t, base.MsgPackEncode(&raw, &cfg))
	h := NewDriverHarness(t, d)
	must.NoError(t, h.SetConfig(&base.Config{PluginConfig: raw}))
	return h, d
}

// newTask is a dyno task running command with args, 128 MB of memory.
func newTask(t *testing.T, tc TaskConfig) *drivers.TaskConfig {
	t.Helper()
	allocID := uuid.Generate()
	task := &drivers.TaskConfig{
		AllocID: allocID,
		ID:      uuid.Generate(),
		Name:    "web",
		Env:     map[string]string{"DYNO": "web.1"},
		Resources: &drivers.Resources{
			NomadResources: &structs.AllocatedTaskResources{
				Memory: structs.AllocatedMemoryResources{MemoryMB: 128},
				Cpu:    structs.AllocatedCpuResources{CpuShares: 100},
			},
			LinuxResources: &drivers.LinuxResources{MemoryLimitBytes: 128 << 20, CPUShares: 100},
		},
	}
	must.NoError(t, task.EncodeConcreteDriverConfig(&tc))
	return task
}

// shTask runs a /bin/sh script in the dyno, the way the deployer runs Procfile lines.
func shTask(t *testing.T, script string) *drivers.TaskConfig {
	return newTask(t, TaskConfig{Command: "/bin/sh", Args: []string{"-c", script}})
}

// start makes the alloc dir (with log fifos), starts the task and registers cleanup.
func start(t *testing.T, h *DriverHarness, task *drivers.TaskConfig) *drivers.TaskHandle {
	t.Helper()
	cleanup := h.MkAllocDir(task, true)
	t.Cleanup(cleanup)
	handle, _, err := h.StartTask(task)
	must.NoError(t, err)
	t.Cleanup(func() { _ = h.DestroyTask(task.ID, true) })
	return handle
}

// wait waits for the task's exit.
func wait(t *testing.T, h *DriverHarness, taskID string, timeout time.Duration) *drivers.ExitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch, err := h.WaitTask(ctx, taskID)
	must.NoError(t, err)
	select {
	case res := <-ch:
		must.NotNil(t, res, must.Sprint("wait channel closed without a result"))
		return res
	case <-ctx.Done():
		t.Fatalf("task %s did not exit within %s", taskID, timeout)
		return nil
	}
}

// stdout reads what the task wrote to stdout so far.
func stdout(t *testing.T, task *drivers.TaskConfig) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(task.TaskDir().LogDir, task.Name+".stdout.0"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// waitForStdout polls the task's stdout until it contains want, and returns it.
func waitForStdout(t *testing.T, task *drivers.TaskConfig, want string, timeout time.Duration) string {
	t.Helper()
	var out string
	testutil.WaitFor(t, timeout, fmt.Sprintf("%q on the task's stdout", want), func() error {
		if out = stdout(t, task); !strings.Contains(out, want) {
			return fmt.Errorf("stdout so far:\n%s", out)
		}
		return nil
	})
	return out
}

package driver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/helper/testlog"
	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/hashicorp/nomad/plugins/drivers/proto"
	"github.com/shoenig/test/must"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dynogrid/dynogrid/internal/testutil"
)

// The sandbox writes the dyno's output into the files Nomad's logs API reads, and Nomad
// is told to start no log collector of its own: through the plugin's gRPC server too,
// whose answer leaves the capability out by itself (and the refusal of mounts).
func TestLogs_DriverCollectsThem(t *testing.T) {
	t.Parallel()
	must.True(t, capabilities.DisableLogCollection)
	d := New(testlog.HCLogger(t)).(*Driver)
	t.Cleanup(d.Shutdown)
	server := grpc.NewServer(grpc.ChainUnaryInterceptor(completeCapabilities))
	must.NoError(t, drivers.NewDriverPlugin(d, testlog.HCLogger(t)).GRPCServer(nil, server))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must.NoError(t, err)
	go func() { _ = server.Serve(l) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.Dial(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	must.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	resp, err := proto.NewDriverClient(conn).Capabilities(context.Background(), &proto.CapabilitiesRequest{})
	must.NoError(t, err)
	must.True(t, resp.Capabilities.DisableLogCollection)
	must.Eq(t, proto.DriverCapabilities_NO_MOUNTS, resp.Capabilities.MountConfigs)
}

// What a dyno writes just before it exits is in its files once WaitTask reports the exit:
// a crash's last words are not lost in a buffer.
func TestLogs_LastLinesWrittenBeforeTheExitIsReported(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; echo "last words" >&2; exit 3`)
	start(t, h, task)
	res := wait(t, h, task.ID, 30*time.Second)
	must.Eq(t, 3, res.ExitCode)
	out := stdout(t, task)
	must.StrContains(t, out, "line 0\n")
	must.StrHasSuffix(t, "line 1999\n", out)
	errOut, err := os.ReadFile(filepath.Join(task.TaskDir().LogDir, task.Name+".stderr.0"))
	must.NoError(t, err)
	must.EqOp(t, "last words\n", string(errOut))
}

// A dyno's files are bounded by the plugin's log_max_files and log_max_file_size_mb,
// or by the task's own when lower (a one-off's: the figures of its job's logs block).
func TestLogs_RotatedAndBounded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                  string
		pluginFiles, pluginMB int
		taskFiles, taskMB     int
	}{
		{"by the plugin", 2, 1, 0, 0},
		{"by the task", 5, 10, 2, 1},
		{"a task asking more than the plugin", 2, 1, 50, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newHarnessWith(t, func(c *Config) { c.LogMaxFiles, c.LogMaxFileSizeMB = tc.pluginFiles, tc.pluginMB })
			// 5 MiB in lines of 1 KiB, numbered.
			task := newTask(t, TaskConfig{Command: "/bin/sh", LogMaxFiles: tc.taskFiles, LogMaxFileSizeMB: tc.taskMB, Args: []string{"-c",
				`head -c 1023 /dev/zero | tr '\0' x > /app/tmp/kb; i=0; while [ $i -lt 5120 ]; do printf '%05d' $i; cat /app/tmp/kb; echo; i=$((i+1)); done`}})
			start(t, h, task)
			res := wait(t, h, task.ID, 60*time.Second)
			must.Zero(t, res.ExitCode)
			assertLogFiles(t, task, 2, 1<<20, "05119")
		})
	}
}

// assertLogFiles waits until task's stdout files are at most files (the rotator removes
// old ones in the background), asserts that there are that many, none over size bytes,
// and that the newest holds last.
func assertLogFiles(t *testing.T, task *drivers.TaskConfig, files int, size int64, last string) {
	t.Helper()
	dir := task.TaskDir().LogDir
	var kept []string
	stdoutFiles := func() error {
		kept = kept[:0]
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), task.Name+".stdout.") && !strings.HasSuffix(e.Name(), ".fifo") {
				kept = append(kept, e.Name())
			}
		}
		if len(kept) > files {
			return fmt.Errorf("%d stdout files kept: %v", len(kept), kept)
		}
		return nil
	}
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("at most %d stdout files", files), stdoutFiles)
	must.Len(t, files, kept)
	var holder string
	for _, name := range kept {
		fi, err := os.Stat(filepath.Join(dir, name))
		must.NoError(t, err)
		must.LessEq(t, size, fi.Size(), must.Sprintf("%s is %d bytes", name, fi.Size()))
		b, err := os.ReadFile(filepath.Join(dir, name))
		must.NoError(t, err)
		if strings.Contains(string(b), last) {
			holder = name
		}
	}
	must.NotEq(t, "", holder, must.Sprintf("the last line (%s) is in none of the files kept", last))
	must.True(t, regexp.MustCompile(`^web\.stdout\.\d+$`).MatchString(holder))
}

// A task whose logs are disabled (Nomad gives /dev/null as its output) runs, and no log
// file is written.
func TestLogs_DisabledByTheTask(t *testing.T) {
	t.Parallel()
	h, _ := newHarness(t)
	task := shTask(t, `echo hello; echo oops >&2`)
	t.Cleanup(h.MkAllocDir(task, false))
	task.StdoutPath, task.StderrPath = os.DevNull, os.DevNull
	_, _, err := h.StartTask(task)
	must.NoError(t, err)
	t.Cleanup(func() { _ = h.DestroyTask(task.ID, true) })
	res := wait(t, h, task.ID, 30*time.Second)
	must.Zero(t, res.ExitCode)
	entries, err := os.ReadDir(task.TaskDir().LogDir)
	must.NoError(t, err)
	for _, e := range entries {
		must.False(t, strings.HasPrefix(e.Name(), task.Name+"."), must.Sprintf("log file %s written", e.Name()))
	}
}

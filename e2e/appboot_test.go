package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
)

// appBoot is how long the example app takes to boot on its own, outside any dyno: the
// wall time from starting `thin` to its first answer, and the CPU time it spent so far.
type appBoot struct{ Wall, CPU time.Duration }

// measureAppBoot boots the Procfile's web command of the example app in dir directly on
// the host, rounds times, and returns the median wall and CPU times.
func measureAppBoot(tb testing.TB, dir string, rounds int) appBoot {
	tb.Helper()
	var walls, cpus []time.Duration
	for range rounds {
		b := bootOnce(tb, dir)
		walls, cpus = append(walls, b.Wall), append(cpus, b.CPU)
	}
	return appBoot{Wall: median(walls), CPU: median(cpus)}
}

func bootOnce(tb testing.TB, dir string) appBoot {
	tb.Helper()
	port := harness.FreePorts(tb, 1)
	cmd := exec.Command("thin", "start", "--rackup", "config.ru", "--address", "127.0.0.1",
		"--port", strconv.Itoa(port), "--environment", "production")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("thin: %v", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at, ok := firstAnswer(ctx, fmt.Sprintf("http://127.0.0.1:%d/health", port))
	if !ok {
		tb.Fatalf("the example app did not answer on port %d within 30s", port)
	}
	cpu, err := processCPU(cmd.Process.Pid)
	if err != nil {
		tb.Fatal(err)
	}
	return appBoot{Wall: at.Sub(start), CPU: cpu}
}

// processCPU is the user and system CPU time process pid has spent, from
// /proc/<pid>/stat (in clock ticks of 10 ms).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	return bootAtOnce(tb, dir, 1)
}

// bootAtOnce boots n copies of the app at once on the host, each asked every 10 ms
// until it answers, as the scale's trace asks its dynos: the wall time until the last
// answered, and the CPU time they spent so far, in all.
func bootAtOnce(tb testing.TB, dir string, n int) appBoot {
	tb.Helper()
	first := harness.FreePorts(tb, n) // n ports in a row, free
	ports := make([]int, n)
	for i := range ports {
		ports[i] = first + i
	}
	start := time.Now()
	cmds := make([]*exec.Cmd, n)
	for i, port := range ports {
		cmd := exec.Command("thin", "start", "--rackup", "config.ru", "--address", "127.0.0.1",
			"--port", strconv.Itoa(port), "--environment", "production")
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir}
		if err := cmd.Start(); err != nil {
			tb.Fatalf("thin: %v", err)
		}
		cmds[i] = cmd
		defer func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answered := make([]time.Time, n)
	var wg sync.WaitGroup
	for i, port := range ports {
		wg.Go(func() {
			if at, ok := firstAnswer(ctx, fmt.Sprintf("http://127.0.0.1:%d/health", port)); ok {
				answered[i] = at
			}
		})
	}
	wg.Wait()
	var last time.Time
	var cpu time.Duration
	for i, at := range answered {
		if at.IsZero() {
			tb.Fatalf("the example app did not answer on port %d within 60s", ports[i])
		}
		if at.After(last) {
			last = at
		}
		c, err := processCPU(cmds[i].Process.Pid)
		if err != nil {
			tb.Fatal(err)
		}
		cpu += c
	}
	return appBoot{Wall: last.Sub(start), CPU: cpu}
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

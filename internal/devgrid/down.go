package devgrid

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StopTimeout bounds how long Down waits for an agent to stop after SIGINT before it
// sends SIGKILL. Nomad uses this time to stop the grid's dynos.
const StopTimeout = 45 * time.Second

// Down stops the grid's agents (Nomad first, so that it stops its dynos), unmounts what
// is left mounted below the data directory and removes the directory.
func (g *Grid) Down(ctx context.Context) error {
	var errs []error
	g.Stopping = true
	_ = g.save() // best effort: Gone tells a stopped grid by its removed state too
	allocs := g.allocIDs()
	ours := map[int]bool{}
	for _, a := range g.Agents {
		ours[a.PID] = true
	}
	for i := len(g.Agents) - 1; i >= 0; i-- {
		if err := stopProcess(ctx, g.Agents[i].PID); err != nil {
			errs = append(errs, fmt.Errorf("failed to stop %s (pid %d): %w", g.Agents[i].Name, g.Agents[i].PID, err))
		}
	}
	killLeftovers(g.Options.DataDir)
	if err := unmountBelow(g.Options.DataDir); err != nil {
		errs = append(errs, err)
	}
	removeCgroups(allocs, otherNomadRunning(ours), g.Options.CgroupParent)
	if n := g.Options.Network; n != nil {
		if err := n.remove(allocs); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(g.Options.DataDir); err != nil {
			errs = append(errs, fmt.Errorf("failed to remove data dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// A zombie still answers signal 0; look at its state instead.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func stopProcess(ctx context.Context, pid int) error {
	if !processAlive(pid) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(StopTimeout)
	for processAlive(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for end := time.Now().Add(5 * time.Second); processAlive(pid); {
		if time.Now().After(end) {
			return errors.New("still running after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// unmountBelow detaches every mount point below dir, deepest first.
func unmountBelow(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == abs || strings.HasPrefix(mp, abs+"/") {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("failed to unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

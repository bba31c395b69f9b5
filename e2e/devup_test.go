package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestDevUpNoticesItsGridGone runs the dyno binary's `dev up` in the foreground, as a
// user would, and ends its grid from elsewhere: `dyno dev down` makes it exit 0, and an
// agent that dies makes it exit 1, each time with one line that says why.
func TestDevUpNoticesItsGridGone(t *testing.T) {
	testutil.E2E(t, "runs `dyno dev up` with its agents, as root", testutil.Root)
	bin := harness.BinDir(t)

	t.Run("dev down from elsewhere", func(t *testing.T) {
		up := startDevUp(t, bin)
		out, err := exec.Command(filepath.Join(bin, "dyno"), "dev", "down", "--data-dir", up.dir).CombinedOutput()
		if err != nil {
			t.Fatalf("dyno dev down: %v\n%s", err, out)
		}
		code, log := up.wait(t, 30*time.Second)
		if code != 0 || !strings.Contains(log, "==> The grid was stopped from elsewhere: ") {
			t.Fatalf("dev up exited %d after dev down; want 0 and a line saying the grid was stopped; it said:\n%s", code, log)
		}
	})

	t.Run("an agent dies", func(t *testing.T) {
		up := startDevUp(t, bin)
		g, err := devgrid.Load(up.dir)
		if err != nil {
			t.Fatal(err)
		}
		var nomad devgrid.Agent
		for _, a := range g.Agents {
			if a.Name == "nomad" {
				nomad = a
			}
		}
		if nomad.PID == 0 {
			t.Fatalf("no nomad agent in the grid's state: %+v", g.Agents)
		}
		if err := syscall.Kill(nomad.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		code, log := up.wait(t, 30*time.Second)
		want := fmt.Sprintf("dyno dev up: the grid is gone: nomad (pid %d, log %s) exited on its own; stop what is left with `dyno dev down --data-dir %s`", nomad.PID, nomad.Log, up.dir)
		if code != 1 || !strings.Contains(log, want) {
			t.Fatalf("dev up exited %d after its Nomad agent was killed; want 1 and the line\n%s\nit said:\n%s", code, want, log)
		}
	})
}

// devUp is a foreground `dyno dev up` run by a test.
type devUp struct {
	dir  string
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{} // closed when it has exited
	err  error         // its exit, once done is closed
}

// startDevUp runs `dyno dev up` in the foreground on free ports, with no router and no
// PostgreSQL, and returns once it says the grid is up. t.Cleanup stops it and its grid.
func startDevUp(t *testing.T, bin string) *devUp {
	t.Helper()
	dir, err := os.MkdirTemp("", "dynogrid-devup-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil { // dev up makes it, and dev down removes it
		t.Fatal(err)
	}
	port := harness.FreePorts(t, 7)
	up := &devUp{dir: dir, out: &syncBuf{}, done: make(chan struct{})}
	up.cmd = exec.Command(filepath.Join(bin, "dyno"), "dev", "up", "--data-dir", dir, "--bin-dir", bin,
		"--consul-port", strconv.Itoa(port), "--nomad-port", strconv.Itoa(port+4), "--router-port", "0", "--postgres-port", "0")
	up.cmd.Stdout, up.cmd.Stderr = up.out, up.out
	if err := up.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { up.err = up.cmd.Wait(); close(up.done) }()
	t.Cleanup(func() {
		select {
		case <-up.done:
		default:
			_ = up.cmd.Process.Signal(syscall.SIGTERM) // dev up stops its grid
			<-up.done
		}
		if out, err := exec.Command(filepath.Join(bin, "dyno"), "dev", "down", "--data-dir", dir).CombinedOutput(); err != nil {
			t.Errorf("dyno dev down after the test: %v\n%s", err, out)
		}
	})
	testutil.WaitFor(t, harness.StartTimeout, "dyno dev up to say the grid is up", func() error {
		select {
		case <-up.done:
			return fmt.Errorf("dev up exited (%v):\n%s", up.err, up.out)
		default:
		}
		if !strings.Contains(up.out.String(), "==> The grid is up") {
			return errors.New("output so far:\n" + up.out.String())
		}
		return nil
	})
	return up
}

// wait waits until dev up exits by itself and returns its exit status and output.
func (u *devUp) wait(t *testing.T, within time.Duration) (int, string) {
	t.Helper()
	select {
	case <-u.done:
	case <-time.After(within):
		t.Fatalf("dyno dev up still runs %s after its grid was ended; it said:\n%s", within, u.out)
	}
	var exit *exec.ExitError
	switch {
	case u.err == nil:
		return 0, u.out.String()
	case errors.As(u.err, &exit):
		return exit.ExitCode(), u.out.String()
	}
	t.Fatalf("dyno dev up: %v", u.err)
	return 0, ""
}

// syncBuf is a buffer that a process writes to while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/devgrid"
)

// profileSeconds is how long the Nomad agent's CPU profile of a scale lasts:
// BENCH_PROFILE_SECONDS, or 5.
func profileSeconds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_PROFILE_SECONDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// startScaleProfile records CPU profiles of one scale into dir, under name: the Nomad
// agent's (Go's pprof, for profileSeconds; the agent must run with enable_debug), this
// process's (Go's pprof), and, when perf is installed, the whole machine's (perf
// record -a -g), with the PIDs of the grid's agents and this process in name.roots so
// that their process trees can be picked out of it. The returned routed ends the
// profiles of this process and the machine (traceScale calls it when the router routes
// the last new dyno, the end of the window its CPU figures cover); stop calls routed if
// it was not called and waits for the agent's profile.
func startScaleProfile(tb testing.TB, g *devgrid.Grid, dir, name string) (routed, stop func()) {
	tb.Helper()
	base := filepath.Join(dir, name)
	var roots []string
	for _, a := range g.Agents {
		roots = append(roots, fmt.Sprintf("%s %d", a.Name, a.PID))
	}
	roots = append(roots, fmt.Sprintf("e2e.test %d", os.Getpid()))
	if err := os.WriteFile(base+".roots", []byte(strings.Join(roots, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}

	var perf *exec.Cmd
	if path, err := exec.LookPath("perf"); err == nil {
		perf = exec.Command(path, "record", "-a", "-g", "-F", "499", "-o", base+".perf.data")
		perf.Stdout, perf.Stderr = os.Stderr, os.Stderr
		if err := perf.Start(); err != nil {
			tb.Logf("perf record: %v", err)
			perf = nil
		}
	}

	nomad, err := g.NomadClient()
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		b, err := nomad.Agent().CPUProfile(nomadapi.PprofOptions{Seconds: profileSeconds()}, nil)
		if err == nil {
			err = os.WriteFile(base+".nomad.pprof", b, 0o600)
		}
		if err != nil {
			tb.Errorf("the Nomad agent's CPU profile: %v", err)
		}
	})

	self, err := os.Create(base + ".e2e.pprof")
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(self); err != nil {
		tb.Logf("this process's CPU profile: %v", err)
	}
	started := time.Now()
	var once sync.Once
	routed = func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			self.Close()
			if perf != nil {
				_ = perf.Process.Signal(syscall.SIGINT)
				_ = perf.Wait()
			}
			tb.Logf("profiles of %s in %s.*, over %s", name, base, time.Since(started).Round(time.Millisecond))
		})
	}
	stop = func() {
		routed()
		wg.Wait()
	}
	// A scale that fails still ends the profiles: perf records the whole machine.
	tb.Cleanup(stop)
	return routed, stop
}

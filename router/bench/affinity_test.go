package bench

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// keepOffCore keeps this process (the load generator and the backends) off core, so
// that a proxy pinned there has it to itself, as a router on an edge host has its
// cores: the benchmark's threads neither take the proxy's turns nor fill its caches.
// Every thread's affinity is set (threads started later inherit their creator's); the
// mask found is put back at cleanup. A machine of one core is left as it is.
func keepOffCore(tb testing.TB, core int) {
	tb.Helper()
	var was unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		tb.Fatalf("reading this process's CPU affinity: %v", err)
	}
	away := was
	away.Clear(core)
	if away.Count() == 0 {
		return
	}
	setAffinity(tb, &away)
	tb.Cleanup(func() { setAffinity(tb, &was) })
}

// setAffinity sets the CPU affinity of every thread of this process.
func setAffinity(tb testing.TB, set *unix.CPUSet) {
	tb.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		tb.Fatalf("listing this process's threads: %v", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread that has exited meanwhile (ESRCH) needs nothing.
		if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
			tb.Fatalf("setting the CPU affinity of thread %d: %v", tid, err)
		}
	}
}

// TestKeepOffCore checks that keepOffCore takes every thread of this process off the
// core, and that cleanup puts the mask found back.
func TestKeepOffCore(t *testing.T) {
	var was unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatal(err)
	}
	core := cpuCore()
	if was.Count() < 2 || !was.IsSet(core) {
		t.Skipf("needs two cores, core %d among them", core)
	}
	t.Run("while it holds", func(t *testing.T) {
		keepOffCore(t, core)
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			var set unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &set); err != nil {
				continue // the thread has exited
			}
			if set.IsSet(core) || set.Count() != was.Count()-1 {
				t.Errorf("thread %d may run on %d cores, core %d among them: %v; want the %d others only",
					tid, set.Count(), core, set.IsSet(core), was.Count()-1)
			}
		}
	})
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != was {
		t.Errorf("after cleanup this thread may run on %d cores, want the %d it had", after.Count(), was.Count())
	}
}

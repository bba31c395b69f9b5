package testutil

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records a Fatal or a Skip instead of ending the test,
// so that the helpers' own failures can be checked.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatal(args ...any)            { r.fatal = fmt.Sprint(args...); panic(r) }
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...); panic(r) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...); panic(r) }
func (r *recorder) run(f func(testing.TB)) *recorder {
	func() {
		defer func() {
			if v := recover(); v != nil && v != r {
				panic(v)
			}
		}()
		f(r)
	}()
	return r
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	WaitFor(t, 5*time.Second, "three polls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
	m := 0
	WaitFor(t, 5*time.Second, "no error", func() error {
		if m++; m < 2 {
			return errors.New("first poll")
		}
		return nil
	})
	if m != 2 {
		t.Fatalf("polled %d times, want 2", m)
	}
}

func TestWaitForFailsAtTheDeadlineWithTheLastError(t *testing.T) {
	r := (&recorder{TB: t}).run(func(tb testing.TB) {
		WaitFor(tb, 20*time.Millisecond, "the moon", func() error { return errors.New("still the sun") })
	})
	if want := "timed out after 20ms waiting for the moon: still the sun"; r.fatal != want {
		t.Fatalf("got %q, want %q", r.fatal, want)
	}
	r = (&recorder{TB: t}).run(func(tb testing.TB) {
		WaitFor(tb, 20*time.Millisecond, "the moon", func() bool { return false })
	})
	if want := "timed out after 20ms waiting for the moon"; r.fatal != want {
		t.Fatalf("got %q, want %q", r.fatal, want)
	}
}

func TestE2ESkipsUnlessAskedAndFailsOnAMissingNeed(t *testing.T) {
	missing := Program("/nonexistent/dyno-test-program")
	t.Setenv(EnvE2E, "")
	r := (&recorder{TB: t}).run(func(tb testing.TB) { E2E(tb, "starts agents", missing) })
	if want := "agent tier: starts agents; set DYNO_E2E=1 to run it (make test does)"; r.skip != want || r.fatal != "" {
		t.Fatalf("unset: skip %q fatal %q; want skip %q", r.skip, r.fatal, want)
	}
	t.Setenv(EnvE2E, "1")
	r = (&recorder{TB: t}).run(func(tb testing.TB) { E2E(tb, "starts agents", missing) })
	if r.skip != "" || !strings.Contains(r.fatal, "needs /nonexistent/dyno-test-program") {
		t.Fatalf("DYNO_E2E=1 with a need missing: skip %q fatal %q; want a failure naming it", r.skip, r.fatal)
	}
	r = (&recorder{TB: t}).run(func(tb testing.TB) { E2E(tb, "runs sh", Program("sh")) })
	if r.skip != "" || r.fatal != "" {
		t.Fatalf("DYNO_E2E=1 with every need met: skip %q fatal %q; want the test to run", r.skip, r.fatal)
	}
	if os.Geteuid() != 0 {
		r = (&recorder{TB: t}).run(func(tb testing.TB) { E2E(tb, "needs root", Root) })
		if !strings.Contains(r.fatal, "needs root") {
			t.Fatalf("DYNO_E2E=1 as uid %d: fatal %q; want a failure for root", os.Geteuid(), r.fatal)
		}
	}
	t.Setenv(EnvE2E, "yes")
	r = (&recorder{TB: t}).run(func(tb testing.TB) { E2E(tb, "starts agents") })
	if !strings.Contains(r.fatal, `DYNO_E2E="yes"`) {
		t.Fatalf("DYNO_E2E=yes: fatal %q; want it refused", r.fatal)
	}
}

// A process is the same one while its pid and start are: a kernel worker that names its
// work anew counts only what it added, and a new process under an old pid all of its.
func TestCPUByNameFollowsAProcessNotItsName(t *testing.T) {
	before := Processes{
		10: {Name: "kworker/u8:2-events_unbound", Start: 5, CPU: 900 * time.Millisecond},
		11: {Name: "thin", Start: 7, CPU: 300 * time.Millisecond},
	}
	after := Processes{
		10: {Name: "kworker/u8:2-kvfree_rcu_reclaim", Start: 5, CPU: 950 * time.Millisecond},
		11: {Name: "thin", Start: 90, CPU: 200 * time.Millisecond},
		12: {Name: "nomad", PPid: 1, Start: 91, CPU: 40 * time.Millisecond},
	}
	got := CPUByName(before, after)
	want := map[string]time.Duration{"kworker": 50 * time.Millisecond, "thin": 200 * time.Millisecond, "nomad": 40 * time.Millisecond}
	if !maps.Equal(got, want) {
		t.Fatalf("CPUByName = %v, want %v", got, want)
	}
	if kids := after.Children(1); !slices.Equal(kids, []int{12}) {
		t.Fatalf("Children(1) = %v, want [12]", kids)
	}
}

package meter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/meter"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/policies"
	consulapi "github.com/hashicorp/consul/api"
	hclog "github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
)

// agentsOnly is a bin dir holding only nomad and consul, so the grid does not load the
// project's plugins: the meter must work with any driver.
func agentsOnly(t *testing.T) func(*devgrid.Options) {
	bin := harness.BinDir(t)
	dir := t.TempDir()
	for _, b := range []string{"nomad", "consul"} {
		if err := os.Symlink(filepath.Join(bin, b), filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	return func(o *devgrid.Options) {
		o.BinDir = dir
		o.ExtraNomadConfig = `plugin "raw_exec" {
  config {
    enabled = true
  }
}
`
	}
}

// waitFor polls cond with testutil.WaitFor until it reports true; its last error, if
// any, goes into the failure.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, func() error {
		ok, err := cond()
		switch {
		case ok:
			return nil
		case err != nil:
			return err
		}
		return errors.New("the condition did not hold, with no error")
	})
}

func runKey(alloc, task string, start int64) string {
	return fmt.Sprintf("%s/%s/%d", alloc, task, start)
}

func ptr[T any](v T) *T { return &v }

// testDriver runs the test's dynos. raw_exec (enabled by agentsOnly) starts a task at
// once; exec builds a chroot per allocation, which costs tens of seconds here
// and tells the meter nothing more.
const testDriver = "raw_exec"

// sleepJob is a job of the dyno contract whose tasks run /bin/sh -c script.
func sleepJob(driver, id, app, typ string, groups map[string]int, script string) *nomadapi.Job {
	job := &nomadapi.Job{ID: ptr(id), Name: ptr(id), Type: ptr(typ), Datacenters: []string{"*"},
		Meta: map[string]string{meter.MetaApp: app}}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		tg := nomadapi.NewTaskGroup(name, groups[name])
		tg.Meta = map[string]string{meter.MetaProcess: name}
		tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(1), Interval: ptr(10 * time.Minute),
			Delay: ptr(time.Second), Mode: ptr("fail")}
		tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
		task := nomadapi.NewTask(name, driver)
		task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", script}}
		task.KillTimeout = ptr(2 * time.Second)
		task.Resources = &nomadapi.Resources{CPU: ptr(20), MemoryMB: ptr(32)}
		tg.AddTask(task)
		job.AddTaskGroup(tg)
	}
	if typ == "service" {
		job.Update = &nomadapi.UpdateStrategy{HealthCheck: ptr("task_states"), MinHealthyTime: ptr(time.Second),
			HealthyDeadline: ptr(time.Minute)}
	}
	return job
}

// placementTrouble says why Nomad did not place a job's allocations, if it says so.
func placementTrouble(nc *nomadapi.Client, jobID string) error {
	evals, _, err := nc.Jobs().Evaluations(jobID, nil)
	if err != nil {
		return err
	}
	for _, e := range evals {
		for tg, m := range e.FailedTGAllocs {
			return fmt.Errorf("group %s not placed: %+v", tg, *m)
		}
	}
	return nil
}

type meterProc struct {
	m      *meter.Meter
	cancel context.CancelFunc
	done   chan struct{}
}

func startMeter(t *testing.T, g *devgrid.Grid, name string) *meterProc {
	t.Helper()
	// The meter runs with its own least-privilege tokens, as on a grid.
	nc, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	tokens := harness.Tokens(t, g)
	nc.SetSecretID(tokens.Nomad[policies.NomadMeter])
	cc, err := consulapi.NewClient(&consulapi.Config{Address: g.Options.ConsulAddr(), Token: tokens.Consul[policies.ConsulMeter]})
	if err != nil {
		t.Fatal(err)
	}
	store := meter.NewConsulStore(cc, "")
	m, err := meter.New(meter.Config{
		Nomad: meter.NomadAPI{Client: nc}, Store: store,
		Locker: &meter.ConsulLock{Client: cc, Store: store, Holder: name, TTL: 10 * time.Second},
		Holder: name, CheckpointInterval: 300 * time.Millisecond, RetryInterval: 200 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Info, Output: testWriter{t}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &meterProc{m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *meterProc) stop() {
	p.cancel()
	<-p.done
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

// TestMeterOnRealGrid runs the meter against a real Consul and Nomad: dynos scale up and
// down, one crashes and is restarted, the writing meter stops and the standby takes
// over, no meter runs while a one-off dyno runs, the app is deleted and recreated; every
// recorded run is checked against the task events Nomad reports.
func TestMeterOnRealGrid(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t, agentsOnly(t))
	nc, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := meter.NewConsulStore(cc, "")

	// The example job file of the meter is a valid job.
	src, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "examples", "jobs", "dyno-meter.nomad.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	mj, err := nc.Jobs().ParseHCLOpts(&nomadapi.JobsParseRequest{JobHCL: string(src), Canonicalize: true})
	if err != nil {
		t.Fatalf("example job does not parse: %v", err)
	}
	if _, _, err := nc.Jobs().Validate(mj, nil); err != nil {
		t.Fatalf("example job is not valid: %v", err)
	}
	if mj.Meta[meter.MetaApp] != "" {
		t.Errorf("the meter's job must not be metered, but has meta %s", meter.MetaApp)
	}

	m1 := startMeter(t, g, "meter-1")
	m2 := startMeter(t, g, "meter-2") // stands by
	waitFor(t, "a meter to hold the lock", 30*time.Second, func() (bool, error) {
		_, l1 := m1.m.Synced()
		_, l2 := m2.m.Synced()
		return l1 != l2, nil
	})

	job := sleepJob(testDriver, "metered", "metered", "service", map[string]int{"web": 2, "worker": 1},
		`if [ "$NOMAD_GROUP_NAME" = worker ]; then sleep 2; exit 3; fi; exec sleep 3600`)
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	allocsOf := func(jobID string) []*nomadapi.AllocationListStub {
		stubs, _, err := nc.Jobs().Allocations(jobID, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		return stubs
	}
	waitFor(t, "two web dynos running and the worker failed after a restart", 90*time.Second, func() (bool, error) {
		running, failed := 0, 0
		for _, a := range allocsOf("metered") {
			switch {
			case a.TaskGroup == "web" && a.ClientStatus == "running":
				running++
			case a.TaskGroup == "worker" && a.ClientStatus == "failed":
				failed++
			}
		}
		if running == 2 && failed == 1 {
			return true, nil
		}
		return false, placementTrouble(nc, "metered")
	})

	// Scale web down to one.
	if _, _, err := nc.Jobs().Scale("metered", "web", ptr(1), "test scale down", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one web dyno stopped", 60*time.Second, func() (bool, error) {
		n := 0
		for _, a := range allocsOf("metered") {
			if a.TaskGroup == "web" && a.ClientStatus == "complete" {
				n++
			}
		}
		return n == 1, nil
	})

	// The standby takes over when the writer stops.
	leader, standby := m1, m2
	if _, l := m2.m.Synced(); l {
		leader, standby = m2, m1
	}
	leader.stop()
	waitFor(t, "the standby meter to take the lock", 30*time.Second, func() (bool, error) {
		_, l := standby.m.Synced()
		return l, nil
	})

	// Stop the meters; a one-off dyno runs and finishes while none watches.
	standby.stop()
	run := sleepJob(testDriver, "metered-run-1", "metered", "batch", map[string]int{"run": 1}, "sleep 1")
	if _, _, err := nc.Jobs().Register(run, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the one-off dyno to finish", 60*time.Second, func() (bool, error) {
		for _, a := range allocsOf("metered-run-1") {
			if a.ClientStatus == "complete" {
				return true, nil
			}
		}
		return false, nil
	})
	m3 := startMeter(t, g, "meter-3")

	// The app is deleted (its job purged) and created again with one web dyno.
	if _, _, err := nc.Jobs().Deregister("metered", true, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted app's dynos to stop", 60*time.Second, func() (bool, error) {
		for _, a := range allocsOf("metered") {
			if a.ClientStatus == "running" || a.ClientStatus == "pending" {
				return false, nil
			}
		}
		return true, nil
	})
	again := sleepJob(testDriver, "metered", "metered", "service", map[string]int{"web": 1}, "exec sleep 3600")
	if _, _, err := nc.Jobs().Register(again, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the recreated app's dyno to run", 60*time.Second, func() (bool, error) {
		for _, a := range allocsOf("metered") {
			if a.ClientStatus == "running" {
				return true, nil
			}
		}
		return false, placementTrouble(nc, "metered")
	})

	// Every task run Nomad reports must be in the ledger, exactly, and nothing else.
	type taskRun struct {
		alloc, task string
		start, end  int64 // Unix nanos; end 0 while running
	}
	expected := func() (map[string]taskRun, error) {
		out := map[string]taskRun{}
		for _, jobID := range []string{"metered", "metered-run-1"} {
			for _, s := range allocsOf(jobID) {
				a, _, err := nc.Allocations().Info(s.ID, nil)
				if err != nil {
					return nil, err
				}
				for task, ts := range a.TaskStates {
					if os.Getenv("DYNO_METER_TEST_DEBUG") != "" {
						for _, ev := range ts.Events {
							t.Logf("event %s %s %s %s", a.ID[:8], task, ev.Type, time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano))
						}
					}
					var open *taskRun
					for _, ev := range ts.Events {
						switch ev.Type {
						case "Started":
							open = &taskRun{alloc: a.ID, task: task, start: ev.Time}
						case "Terminated", "Killed", "Not Restarting", "Restarting":
							if open != nil {
								open.end = ev.Time
								out[runKey(a.ID, task, open.start)] = *open
								open = nil
							}
						}
					}
					if open != nil {
						out[runKey(a.ID, task, open.start)] = *open
					}
				}
			}
		}
		return out, nil
	}
	var want map[string]taskRun
	var got []meter.Record
	waitFor(t, "the ledger to match Nomad's task events", 30*time.Second, func() (bool, error) {
		var err error
		if want, err = expected(); err != nil {
			return false, err
		}
		if got, err = store.Runs(ctx, "metered"); err != nil {
			return false, err
		}
		if len(got) != len(want) {
			return false, errors.New("record count differs")
		}
		for _, r := range got {
			w, ok := want[runKey(r.Alloc, r.Task, r.Start.UnixNano())]
			if !ok {
				return false, errors.New("unexpected record " + r.Key())
			}
			if (w.end == 0) != r.Open() || (w.end != 0 && r.End.UnixNano() != w.end) {
				return false, errors.New("record end differs for " + r.Key())
			}
		}
		return true, nil
	})
	procs := map[string]int{}
	for _, r := range got {
		procs[r.Process]++
	}
	// web: 2 runs of the first app and 1 of the recreated one (still open); worker:
	// started twice (crash, restart, crash); run: one.
	if procs["web"] != 3 || procs["worker"] != 2 || procs["run"] != 1 || len(got) != 6 {
		t.Errorf("runs per process = %v, want web 3, worker 2, run 1", procs)
	}
	open := 0
	for _, r := range got {
		if r.Open() {
			open++
		}
	}
	if open != 1 {
		t.Errorf("%d runs still open, want 1 (the recreated app's web dyno)", open)
	}
	for _, r := range got {
		t.Logf("ledger: %s %s %s %s..%v %s", r.Process, r.Alloc[:8], r.Task, r.Start.Format(time.RFC3339Nano), r.End, r.EndReason)
	}

	// The report agrees with the records: dyno-seconds are the truncated run lengths.
	until := time.Now()
	rep, err := meter.Usage(ctx, store, "metered", time.Time{}, until)
	if err != nil {
		t.Fatal(err)
	}
	var dynoSeconds int64
	dynos := map[string]bool{} // dynos with at least one whole second
	for _, r := range got {
		end := until
		if r.End != nil {
			end = *r.End
		}
		if n := end.Unix() - r.Start.Unix(); n > 0 {
			dynoSeconds += n
			dynos[r.Alloc] = true
		}
	}
	au, ok := rep.App("metered")
	if !ok || au.DynoSeconds != dynoSeconds || au.Dynos != len(dynos) || au.BilledSeconds+au.FreeSeconds != dynoSeconds {
		t.Errorf("report %+v, want %d dyno-seconds over %d dynos", au, dynoSeconds, len(dynos))
	}
	if c, leading := m3.m.Synced(); !leading || c.IsZero() {
		t.Errorf("meter-3 holds the lock %v with checkpoint %s, want it holding with a checkpoint", leading, c)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
	"github.com/dynogrid/dynogrid/router"
)

// dynoSteps are the moments one new dyno of a scale went through, from the start of
// `dyno ps:scale` to the router routing to it.
type dynoSteps struct {
	Alloc string
	// Start is when `dyno ps:scale` started; Eval when Nomad made the evaluation of the
	// scale; Placed when its scheduler placed the dyno (the allocation's creation).
	Start, Eval, Placed time.Time
	// Received, Setup and Started are the task's events on the Nomad client: the
	// allocation reached the client; its alloc runner (network namespace and the other
	// allocation hooks) was done and the task directory built; the driver's StartTask
	// returned.
	Received, Setup, Started time.Time
	// Rendered is when the environment template wrote secrets/dyno.env (the file's
	// modification time), after the task's earlier hooks.
	Rendered time.Time
	// Answers is when the dyno first answered its health check path, asked directly
	// every 10 ms; Routed when the router's /status listed it up (polled every 10 ms);
	// Passing when Consul's check of it first passed (a blocking query). The router
	// routes a dyno that answers its own probe before Consul has checked it, so Routed
	// may come before Passing.
	Answers, Routed, Passing time.Time
}

// scaleStep is one step of a dyno's way into routing, between two of its moments.
type scaleStep struct {
	name     string
	from, to func(*dynoSteps) time.Time
}

var scaleSteps = []scaleStep{
	{"ps:scale to evaluation (the CLI reads the app, Nomad's scale API)", func(d *dynoSteps) time.Time { return d.Start }, func(d *dynoSteps) time.Time { return d.Eval }},
	{"scheduling (evaluation to dyno placed)", func(d *dynoSteps) time.Time { return d.Eval }, func(d *dynoSteps) time.Time { return d.Placed }},
	{"placed to the client's task runner (Received)", func(d *dynoSteps) time.Time { return d.Placed }, func(d *dynoSteps) time.Time { return d.Received }},
	{"alloc runner: network namespace, task directory (Task Setup)", func(d *dynoSteps) time.Time { return d.Received }, func(d *dynoSteps) time.Time { return d.Setup }},
	{"task hooks: environment template rendered", func(d *dynoSteps) time.Time { return d.Setup }, func(d *dynoSteps) time.Time { return d.Rendered }},
	{"driver's StartTask: slug, sandbox (Started)", func(d *dynoSteps) time.Time { return d.Rendered }, func(d *dynoSteps) time.Time { return d.Started }},
	{"the app's boot, to answering its health check", func(d *dynoSteps) time.Time { return d.Started }, func(d *dynoSteps) time.Time { return d.Answers }},
	{"answering to routed by the router (its probe, or Consul's check)", func(d *dynoSteps) time.Time { return d.Answers }, func(d *dynoSteps) time.Time { return d.Routed }},
	{"total: ps:scale to routed", func(d *dynoSteps) time.Time { return d.Start }, func(d *dynoSteps) time.Time { return d.Routed }},
	{"(beside) answering to Consul's check passing", func(d *dynoSteps) time.Time { return d.Answers }, func(d *dynoSteps) time.Time { return d.Passing }},
	{"(beside) Consul's check passing to routed (negative: routed before)", func(d *dynoSteps) time.Time { return d.Passing }, func(d *dynoSteps) time.Time { return d.Routed }},
}

// scaleTrace is one traced `dyno ps:scale web=<to>` from web=<from>.
type scaleTrace struct {
	From, To int
	// Returned is how long `dyno ps:scale` took.
	Returned time.Duration
	// MachineCPU is the CPU time the whole machine spent from ps:scale to the router
	// routing the last new dyno, and ByProcess the part of it of each process name.
	MachineCPU time.Duration
	ByProcess  map[string]time.Duration
	// Dynos are the new dynos, in the order they were routed.
	Dynos []*dynoSteps
}

// traceScale runs `dyno ps:scale web=<to>` on app, which runs from web dynos, all
// routed, and follows each new dyno until the router routes every one, within a
// deadline; it then calls allRouted, unless nil. It reads the steps from Nomad's
// allocations, evaluations and task events, the rendered template's file, the dynos
// themselves, Consul and the router's /status.
func traceScale(tb testing.TB, g *devgrid.Grid, c *dynoCLI, app string, from, to int, allRouted func()) *scaleTrace {
	tb.Helper()
	nomad := appNomad(tb, g, app)
	consul, err := g.ConsulClient()
	if err != nil {
		tb.Fatal(err)
	}
	before := runningAllocs(tb, nomad, app)
	if len(before) != from {
		tb.Fatalf("%s runs %d dynos before the scale, want %d", app, len(before), from)
	}
	status := fmt.Sprintf("http://%s:%d/status", g.Options.Bind, g.Options.RouterPort+1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var (
		mu      sync.Mutex
		routed  = map[string]time.Time{}
		cpuEnd  time.Duration
		procEnd testutil.Processes
		passing = map[string]time.Time{}
		answers = map[string]time.Time{}
		wg      sync.WaitGroup
		errs    []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	wg.Add(3)
	go func() { // the router, polled every 10 ms
		defer wg.Done()
		isNew := func(sid string) bool { id := allocOfService(sid); return id != "" && !before[id] }
		err := awaitRouted(ctx, status, app, to-from, isNew, func(sid string, at time.Time) {
			mu.Lock()
			routed[allocOfService(sid)] = at
			mu.Unlock()
		})
		if err != nil {
			fail(err)
			return
		}
		cpuEnd, procEnd = machineCPU(tb), testutil.ReadProcesses()
		if allRouted != nil {
			allRouted()
		}
	}()
	go func() { // Consul, with blocking queries
		defer wg.Done()
		var index uint64
		for {
			q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
			entries, meta, err := consul.Health().Service(app+"-web", "dyno", true, q)
			if ctx.Err() != nil {
				fail(fmt.Errorf("Consul passed %d new dynos of %d", len(passing), to-from))
				return
			}
			if err != nil {
				continue
			}
			index = meta.LastIndex
			now := time.Now()
			mu.Lock()
			for _, e := range entries {
				if id := allocOfService(e.Service.ID); id != "" && !before[id] {
					if _, seen := passing[id]; !seen {
						passing[id] = now
					}
				}
			}
			done := len(passing) >= to-from
			mu.Unlock()
			if done {
				return
			}
		}
	}()
	go func() { // Nomad's allocations, with blocking queries; each new dyno is asked directly
		defer wg.Done()
		var index uint64
		probing := map[string]bool{}
		for len(probing) < to-from {
			q := (&nomadapi.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
			allocs, meta, err := nomad.Jobs().Allocations(app, false, q)
			if ctx.Err() != nil {
				fail(fmt.Errorf("Nomad placed %d new dynos of %d", len(probing), to-from))
				return
			}
			if err != nil {
				continue
			}
			index = meta.LastIndex
			for _, a := range allocs {
				if before[a.ID] || probing[a.ID] || a.DesiredStatus != nomadapi.AllocDesiredStatusRun {
					continue
				}
				alloc, _, err := nomad.Allocations().Info(a.ID, (&nomadapi.QueryOptions{}).WithContext(ctx))
				if err != nil || alloc.AllocatedResources == nil || len(alloc.AllocatedResources.Shared.Ports) == 0 {
					continue
				}
				probing[a.ID] = true
				p := alloc.AllocatedResources.Shared.Ports[0]
				url := fmt.Sprintf("http://%s:%d/health", p.HostIP, p.Value)
				wg.Add(1)
				go func(id string) {
					defer wg.Done()
					if at, ok := firstAnswer(ctx, url); ok {
						mu.Lock()
						answers[id] = at
						mu.Unlock()
					} else {
						fail(fmt.Errorf("dyno %s never answered at %s", id, url))
					}
				}(a.ID)
			}
		}
	}()

	cpuStart, procStart := machineCPU(tb), testutil.ReadProcesses()
	start := time.Now()
	if code, out, errOut := c.run("ps:scale", append([]string{fmt.Sprintf("web=%d", to)}, consulFlags(tb, g)...)...); code != 0 {
		tb.Fatalf("dyno ps:scale web=%d: exit %d\n%s%s", to, code, out, errOut)
	}
	tr := &scaleTrace{From: from, To: to, Returned: time.Since(start)}
	wg.Wait()
	if len(errs) > 0 {
		tb.Fatalf("ps:scale web=%d from web=%d, not every step seen within the deadline: %v", to, from, errs)
	}
	tr.MachineCPU = cpuEnd - cpuStart
	tr.ByProcess = testutil.CPUByName(procStart, procEnd)

	for id, at := range routed {
		p, ok := passing[id]
		if !ok {
			tb.Fatalf("the router routed dyno %s, which Consul never passed", id)
		}
		d := &dynoSteps{Alloc: id, Start: start, Routed: at, Passing: p, Answers: answers[id]}
		allocSteps(tb, g, nomad, d)
		tr.Dynos = append(tr.Dynos, d)
	}
	slices.SortFunc(tr.Dynos, func(a, b *dynoSteps) int { return a.Routed.Compare(b.Routed) })
	return tr
}

// machineCPU is testutil.MachineCPU, or 0 (the figure is then left out).
func machineCPU(tb testing.TB) time.Duration {
	d, err := testutil.MachineCPU()
	if err != nil {
		tb.Logf("machine CPU: %v", err)
	}
	return d
}

// consulFlags are the options that let `dyno ps:scale` read the grid's Consul.
func consulFlags(tb testing.TB, g *devgrid.Grid) []string {
	return []string{"--consul-addr", g.Options.ConsulAddr(), "--consul-token", harness.Tokens(tb, g).ConsulManagement}
}

// allocSteps fills in the steps Nomad recorded for d's allocation.
func allocSteps(tb testing.TB, g *devgrid.Grid, nomad *nomadapi.Client, d *dynoSteps) {
	tb.Helper()
	// The client reports task events to the servers in batches, which may come after
	// the router routed the dyno.
	var alloc *nomadapi.Allocation
	testutil.WaitFor(tb, 30*time.Second, "allocation "+d.Alloc+" to report task web started", func() error {
		var err error
		if alloc, _, err = nomad.Allocations().Info(d.Alloc, nil); err != nil {
			return err
		}
		if st := alloc.TaskStates["web"]; st == nil || st.StartedAt.IsZero() {
			return fmt.Errorf("no start of task web reported yet")
		}
		return nil
	})
	d.Placed = time.Unix(0, alloc.CreateTime)
	eval, _, err := nomad.Evaluations().Info(alloc.EvalID, nil)
	if err != nil {
		tb.Fatal(err)
	}
	d.Eval = time.Unix(0, eval.CreateTime)
	events := alloc.TaskStates["web"].Events
	defer func() {
		// A dyno far slower than the others says what happened to it.
		if d.Answers.Sub(d.Started) > 10*time.Second {
			for _, e := range events {
				tb.Logf("slow dyno %s: %s %s %s %s", d.Alloc, time.Unix(0, e.Time).Format("15:04:05.000"), e.Type, e.DisplayMessage, e.DriverError)
			}
		}
	}()
	for _, e := range events {
		at := time.Unix(0, e.Time)
		switch e.Type {
		case nomadapi.TaskReceived:
			d.Received = at
		case nomadapi.TaskSetup:
			d.Setup = at
		case nomadapi.TaskStarted:
			if d.Started.IsZero() {
				d.Started = at
			}
		}
	}
	env := filepath.Join(g.Options.DataDir, "nomad", "alloc", d.Alloc, "web", "secrets", "dyno.env")
	fi, err := os.Stat(env)
	if err != nil {
		tb.Fatalf("the rendered environment of %s: %v", d.Alloc, err)
	}
	d.Rendered = fi.ModTime()
}

// allocOfService is the allocation ID in the ID of a service Nomad registered
// (_nomad-task-<alloc id>-<task>-<service>-<port>), or "".
func allocOfService(id string) string {
	rest, ok := strings.CutPrefix(id, "_nomad-task-")
	if !ok || len(rest) < 36 {
		return ""
	}
	return rest[:36]
}

// awaitRouted polls the router's /status every 10 ms until it has want dynos of app up
// whose service IDs isNew accepts, and calls first with each of them the first time it
// sees it up. It gives up when ctx ends.
func awaitRouted(ctx context.Context, status, app string, want int, isNew func(serviceID string) bool, first func(serviceID string, at time.Time)) error {
	seen := map[string]bool{}
	for {
		if ids, err := routerUpDynos(ctx, status, app); err == nil {
			now := time.Now()
			for _, sid := range ids {
				if !seen[sid] && isNew(sid) {
					seen[sid] = true
					first(sid, now)
				}
			}
			if len(seen) >= want {
				return nil
			}
		}
		if !pause(ctx, 10*time.Millisecond) {
			return fmt.Errorf("the router listed %d of %d new dynos of %s up", len(seen), want, app)
		}
	}
}

// routerUp is how many dynos of app the router counts up.
func routerUp(ctx context.Context, url, app string) (int, error) {
	s, err := routerStatus(ctx, url)
	if err != nil {
		return 0, err
	}
	return s.Apps[app].Up, nil
}

// routerUpDynos are the service IDs of the dynos of app the router has up.
func routerUpDynos(ctx context.Context, url, app string) ([]string, error) {
	s, err := routerStatus(ctx, url)
	if err != nil {
		return nil, err
	}
	return s.Apps[app].UpDynos, nil
}

func routerStatus(ctx context.Context, url string) (router.Status, error) {
	var s router.Status
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// firstAnswer asks url every 10 ms until it answers 200, and says when it first did.
func firstAnswer(ctx context.Context, url string) (time.Time, bool) {
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), true
			}
		}
		if !pause(ctx, 10*time.Millisecond) {
			return time.Time{}, false
		}
	}
}

// pause waits d, and says false instead when ctx ends first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

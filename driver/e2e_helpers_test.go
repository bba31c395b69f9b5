package driver_test

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// grid starts a real Consul and Nomad agent with the dyno plugin from build/bin (run
// `make build` first) and returns a Nomad client.
func grid(t testing.TB, opts ...func(*devgrid.Options)) (*devgrid.Grid, *nomadapi.Client) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(harness.BinDir(t), "nomad-driver-dyno")); err != nil {
		t.Fatalf("build the plugin first (make build, or go build -tags seccomp -o build/bin/ ./cmd/nomad-driver-dyno): %v", err)
	}
	// With a cgroup_parent other than the default (the harness gives each grid its own),
	// Nomad v1.6.3 on cgroups v1 detects no reservable cores, so `cores = 1` could not be
	// placed; the cores are declared instead. The dyno driver pins dynos itself.
	// The sandbox's tests run dynos in the host's network too (groups without a network
	// block), which the driver refuses unless allowed.
	cores := func(o *devgrid.Options) {
		o.ExtraNomadConfig += fmt.Sprintf("client {\n  reservable_cores = %q\n}\n", onlineCPUs(t))
		o.HostNetworkDynos = true
	}
	g := harness.Grid(t, append([]func(*devgrid.Options){cores}, opts...)...)
	c, err := g.NomadClient()
	must.NoError(t, err)
	return g, c
}

// packSlug writes dir (plus extra files, name to host path, made executable) as a
// .tar.gz slug into g's slug store, as the driver takes it (<sha256>.tar.gz), and
// returns its path and sha256.
func packSlug(t testing.TB, g *devgrid.Grid, dir string, extra map[string]string) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "slug.tar.gz")
	f, err := os.Create(out)
	must.NoError(t, err)
	h := sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(f, h))
	tw := tar.NewWriter(gz)
	add := func(name, src string, mode int64) {
		b, err := os.ReadFile(src)
		must.NoError(t, err)
		must.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err = tw.Write(b)
		must.NoError(t, err)
	}
	if dir != "" {
		must.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel == "." {
				return nil
			}
			if d.IsDir() {
				return tw.WriteHeader(&tar.Header{Name: rel + "/", Mode: 0o755, Typeflag: tar.TypeDir})
			}
			if d.Type().IsRegular() {
				add(rel, p, 0o644)
			}
			return nil
		}))
	}
	for name, src := range extra {
		add(name, src, 0o755)
	}
	must.NoError(t, tw.Close())
	must.NoError(t, gz.Close())
	must.NoError(t, f.Close())
	sum := hex.EncodeToString(h.Sum(nil))
	store := g.Options.SlugStore()
	must.NoError(t, os.MkdirAll(store, 0o755))
	final := filepath.Join(store, sum+".tar.gz")
	must.NoError(t, os.Rename(out, final))
	return final, sum
}

// buildStatic compiles a Go main package of this module into a static binary.
func buildStatic(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = harness.RepoRoot(t)
	b, err := cmd.CombinedOutput()
	must.NoError(t, err, must.Sprintf("go build %s: %s", pkg, b))
	return out
}

// dynoTask is a task of the dyno driver.
func dynoTask(name string, config map[string]interface{}, env map[string]string, memMB, cores int) *nomadapi.Task {
	t := nomadapi.NewTask(name, "dyno")
	t.Config = config
	t.Env = env
	t.Resources = &nomadapi.Resources{MemoryMB: &memMB}
	if cores > 0 {
		t.Resources.Cores = &cores
	} else {
		cpu := 100
		t.Resources.CPU = &cpu
	}
	t.KillTimeout = durationPtr(5 * time.Second)
	return t
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// job wraps groups into a job of the given type and registers it.
func register(t testing.TB, c *nomadapi.Client, id, typ string, groups ...*nomadapi.TaskGroup) {
	t.Helper()
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Type = &typ
	job.Datacenters = []string{"*"}
	for _, g := range groups {
		zero := 0
		g.RestartPolicy = &nomadapi.RestartPolicy{Attempts: &zero, Mode: stringPtr("fail")}
		if typ == "service" {
			g.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: &zero, Unlimited: boolPtr(false)}
		}
		job.AddTaskGroup(g)
	}
	_, _, err := c.Jobs().Register(job, nil)
	must.NoError(t, err)
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister(id, true, nil) })
}

func stringPtr(s string) *string { return &s }
func boolPtr(b bool) *bool       { return &b }

// waitAlloc polls the job's allocation of group until ok says it is done, and returns it.
func waitAlloc(t testing.TB, c *nomadapi.Client, jobID, group string, timeout time.Duration, ok func(*nomadapi.Allocation) bool) *nomadapi.Allocation {
	t.Helper()
	var found *nomadapi.Allocation
	testutil.WaitFor(t, timeout, fmt.Sprintf("the allocation of %s/%s to be ready", jobID, group), func() error {
		last := "none"
		stubs, _, err := c.Jobs().Allocations(jobID, false, nil)
		must.NoError(t, err)
		for _, s := range stubs {
			if s.TaskGroup != group {
				continue
			}
			a, _, err := c.Allocations().Info(s.ID, nil)
			must.NoError(t, err)
			if ok(a) {
				found = a
				return nil
			}
			last = describeAlloc(a)
		}
		return fmt.Errorf("last: %s; evaluations: %s", last, describeEvals(c, jobID))
	})
	return found
}

func describeAlloc(a *nomadapi.Allocation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "alloc %s client=%s", a.ID[:8], a.ClientStatus)
	for name, ts := range a.TaskStates {
		fmt.Fprintf(&b, " task %s=%s", name, ts.State)
		for _, e := range ts.Events {
			fmt.Fprintf(&b, " [%s: %s %s]", e.Type, e.DisplayMessage, e.Details["driver_error"])
		}
	}
	return b.String()
}

func taskRunning(task string) func(*nomadapi.Allocation) bool {
	return func(a *nomadapi.Allocation) bool {
		ts, ok := a.TaskStates[task]
		return ok && ts.State == "running"
	}
}

func taskDead(task string) func(*nomadapi.Allocation) bool {
	return func(a *nomadapi.Allocation) bool {
		ts, ok := a.TaskStates[task]
		return ok && ts.State == "dead"
	}
}

// taskLog reads a task's stdout or stderr through Nomad's file API.
func taskLog(t testing.TB, c *nomadapi.Client, a *nomadapi.Allocation, task, stream string) string {
	t.Helper()
	r, err := c.AllocFS().Cat(a, fmt.Sprintf("alloc/logs/%s.%s.0", task, stream), nil)
	if err != nil {
		return ""
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// allocPort is the host port Nomad gave the allocation's port label.
func allocPort(t testing.TB, a *nomadapi.Allocation, label string) int {
	t.Helper()
	for _, n := range a.AllocatedResources.Shared.Networks {
		for _, p := range n.DynamicPorts {
			if p.Label == label {
				return p.Value
			}
		}
	}
	for _, p := range a.AllocatedResources.Shared.Ports {
		if p.Label == label {
			return p.Value
		}
	}
	t.Fatalf("allocation %s has no port %q", a.ID, label)
	return 0
}

// describeEvals says why the scheduler did not place a job's allocations.
func describeEvals(c *nomadapi.Client, jobID string) string {
	evals, _, err := c.Jobs().Evaluations(jobID, nil)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range evals {
		fmt.Fprintf(&b, "[eval %s %s %s", e.ID[:8], e.Status, e.StatusDescription)
		for tg, m := range e.FailedTGAllocs {
			fmt.Fprintf(&b, " %s: exhausted=%v filtered=%v constraint=%v", tg, m.DimensionExhausted, m.ClassFiltered, m.ConstraintFiltered)
		}
		b.WriteString("] ")
	}
	return b.String()
}

func onlineCPUs(t testing.TB) string {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	must.NoError(t, err)
	return strings.TrimSpace(string(b))
}

package driver_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// BenchmarkBootThin boots the example Thin dyno under the dyno driver and under Nomad's
// exec driver on the same agent, one after the other, and reports for each: the time
// from the task runner's setup (before the exec driver builds its chroot) to the process
// running, and to the first HTTP 200; and the ratios exec/dyno.
//
//	go build -tags seccomp -o build/bin/ ./cmd/nomad-driver-dyno
//	go test -tags seccomp -run '^$' -bench BenchmarkBootThin ./driver/
func BenchmarkBootThin(b *testing.B) {
	g, c := grid(b)
	dir := filepath.Join(harness.RepoRoot(b), "examples", "thin")
	slug, sum := packSlug(b, g, dir, nil)

	var dynoRun, dynoHTTP, execRun, execHTTP time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, h := bootThin(b, c, fmt.Sprintf("bench-dyno-%d", i), dynoThinGroup(b, dir, slug, sum))
		dynoRun += r
		dynoHTTP += h
		r, h = bootThin(b, c, fmt.Sprintf("bench-exec-%d", i), execThinGroup(b, dir))
		execRun += r
		execHTTP += h
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(dynoRun), "dyno-running-ms")
	b.ReportMetric(ms(execRun), "exec-running-ms")
	b.ReportMetric(ms(dynoHTTP), "dyno-http200-ms")
	b.ReportMetric(ms(execHTTP), "exec-http200-ms")
	b.ReportMetric(float64(execRun)/float64(dynoRun), "running-exec/dyno")
	b.ReportMetric(float64(execHTTP)/float64(dynoHTTP), "http200-exec/dyno")
}

func dynoThinGroup(tb testing.TB, dir, slug, sum string) *nomadapi.TaskGroup {
	g := nomadapi.NewTaskGroup("web", 1)
	g.Networks = []*nomadapi.NetworkResource{{DynamicPorts: []nomadapi.Port{{Label: "web"}}}}
	g.AddTask(dynoTask("web", map[string]interface{}{
		"command":     "/bin/sh",
		"args":        []string{"-c", procfileLine(tb, dir, "web")},
		"slug":        slug,
		"slug_sha256": sum,
	}, map[string]string{"PORT": "${NOMAD_PORT_web}", "DYNO": "web.1", "RACK_ENV": "production"}, 256, 1))
	return g
}

// execThinGroup is the same dyno under the exec driver, the app's files written into the
// task's local dir by templates.
func execThinGroup(tb testing.TB, dir string) *nomadapi.TaskGroup {
	g := nomadapi.NewTaskGroup("web", 1)
	g.Networks = []*nomadapi.NetworkResource{{DynamicPorts: []nomadapi.Port{{Label: "web"}}}}
	task := dynoTask("web", map[string]interface{}{
		"command": "/bin/sh",
		"args":    []string{"-c", "cd /local && " + procfileLine(tb, dir, "web")},
	}, map[string]string{"PORT": "${NOMAD_PORT_web}", "DYNO": "web.1", "RACK_ENV": "production", "HOME": "/app"}, 256, 1)
	task.Driver = "exec"
	left, right := "[[[", "]]]"
	must.NoError(tb, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(body) == 0 {
			return nil // templates cannot be empty
		}
		rel, _ := filepath.Rel(dir, p)
		content, dest := string(body), filepath.Join("local", rel)
		task.Templates = append(task.Templates, &nomadapi.Template{EmbeddedTmpl: &content, DestPath: &dest, LeftDelim: &left, RightDelim: &right})
		return nil
	}))
	g.AddTask(task)
	return g
}

// bootThin registers the job, waits for its first HTTP 200 and returns the durations
// from the task runner's setup to the task's Started event and to that first 200; it
// deregisters the job and waits for it to be gone.
func bootThin(b testing.TB, c *nomadapi.Client, id string, g *nomadapi.TaskGroup) (time.Duration, time.Duration) {
	b.Helper()
	register(b, c, id, "service", g)
	var a *nomadapi.Allocation
	var port int
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(5 * time.Minute)
	var ok200 time.Time
	polls := 0
	for ok200.IsZero() {
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer 200 in 5 minutes: %s", id, describeAlloc(findAlloc(b, c, id)))
		}
		if port == 0 {
			a = findAlloc(b, c, id)
			if a != nil && a.ClientStatus == "failed" {
				b.Fatalf("%s failed: %s\n%s", id, describeAlloc(a), taskLog(b, c, a, "web", "stderr"))
			}
			if a != nil && a.AllocatedResources != nil && a.AllocatedResources.Shared.Networks != nil {
				port = a.AllocatedResources.Shared.Networks[0].DynamicPorts[0].Value
			}
			if port == 0 {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		if polls++; polls%200 == 0 {
			if cur := findAlloc(b, c, id); cur != nil && cur.TaskStates["web"] != nil && cur.TaskStates["web"].State == "dead" {
				b.Fatalf("%s died: %s\n%s", id, describeAlloc(cur), taskLog(b, c, cur, "web", "stderr"))
			}
		}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok200 = time.Now()
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	a, _, err := c.Allocations().Info(a.ID, nil)
	must.NoError(b, err)
	var setup, started time.Time
	for _, e := range a.TaskStates["web"].Events {
		switch e.Type {
		case nomadapi.TaskSetup:
			if setup.IsZero() {
				setup = time.Unix(0, e.Time)
			}
		case nomadapi.TaskStarted:
			started = time.Unix(0, e.Time)
		}
	}
	if setup.IsZero() || started.IsZero() {
		b.Fatalf("%s: no setup or started event: %s", id, describeAlloc(a))
	}
	_, _, err = c.Jobs().Deregister(id, true, nil)
	must.NoError(b, err)
	waitGone(b, c, a.ID)
	return started.Sub(setup), ok200.Sub(setup)
}

// findAlloc is the job's only allocation, or nil before there is one.
func findAlloc(tb testing.TB, c *nomadapi.Client, jobID string) *nomadapi.Allocation {
	stubs, _, err := c.Jobs().Allocations(jobID, false, nil)
	must.NoError(tb, err)
	if len(stubs) == 0 {
		return nil
	}
	a, _, err := c.Allocations().Info(stubs[0].ID, nil)
	must.NoError(tb, err)
	return a
}

// waitGone waits until the allocation is no longer running, so the next boot has the
// agent to itself.
func waitGone(tb testing.TB, c *nomadapi.Client, allocID string) {
	tb.Helper()
	testutil.WaitFor(tb, 2*time.Minute, "allocation "+allocID+" to stop after deregistration", func() error {
		a, _, err := c.Allocations().Info(allocID, nil)
		must.NoError(tb, err)
		if a.ClientStatus == "running" || a.ClientStatus == "pending" {
			return fmt.Errorf("client status %s", a.ClientStatus)
		}
		return nil
	})
}

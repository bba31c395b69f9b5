package driver_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// procfileLine is the command of a process type in the example app's Procfile.
func procfileLine(t testing.TB, dir, process string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Procfile"))
	must.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if name, cmd, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(name) == process {
			return strings.TrimSpace(cmd)
		}
	}
	t.Fatalf("Procfile of %s has no %q process", dir, process)
	return ""
}

// TestE2E_ThinDyno runs examples/jobs/thin-dyno.nomad.hcl: two Thin dynos of
// examples/thin under the dyno driver, each answering on its $PORT.
func TestE2E_ThinDyno(t *testing.T) {
	t.Parallel()
	g, c := grid(t)
	root := harness.RepoRoot(t)
	slug, sum := packSlug(t, g, filepath.Join(root, "examples", "thin"), nil)
	hcl, err := os.ReadFile(filepath.Join(root, "examples", "jobs", "thin-dyno.nomad.hcl"))
	must.NoError(t, err)
	job, err := c.Jobs().ParseHCLOpts(&nomadapi.JobsParseRequest{
		JobHCL:       string(hcl),
		Variables:    fmt.Sprintf("slug = %q\nsha256 = %q\n", slug, sum),
		Canonicalize: true,
	})
	must.NoError(t, err)
	must.Eq(t, "dyno", job.TaskGroups[0].Tasks[0].Driver)
	_, _, err = c.Jobs().Register(job, nil)
	must.NoError(t, err)
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister(*job.ID, true, nil) })

	var running []*nomadapi.Allocation
	testutil.WaitFor(t, 2*time.Minute, "2 dynos running", func() error {
		running = running[:0]
		stubs, _, err := c.Jobs().Allocations(*job.ID, false, nil)
		must.NoError(t, err)
		for _, s := range stubs {
			if ts := s.TaskStates["web"]; ts != nil && ts.State == "running" {
				a, _, err := c.Allocations().Info(s.ID, nil)
				must.NoError(t, err)
				running = append(running, a)
			}
		}
		if len(running) < 2 {
			return fmt.Errorf("%d running; evaluations: %s", len(running), describeEvals(c, *job.ID))
		}
		return nil
	})
	for _, a := range running {
		port := allocPort(t, a, "web")
		body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 60*time.Second)
		must.StrContains(t, body, "Hello from web.")
		// ./tmp is writable.
		body = waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/tmp", port), 10*time.Second)
		must.StrContains(t, body, "wrote tmp/visit-")
	}
}

// waitHTTP polls url until it answers 200 and returns the body.
func waitHTTP(t testing.TB, url string, timeout time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var body string
	testutil.WaitFor(t, timeout, url+" to answer 200", func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		body = string(b)
		return nil
	})
	return body
}

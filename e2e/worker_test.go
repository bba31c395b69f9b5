package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// queueSpec is the queue test app (e2e/testdata/queueapp): one web dyno that enqueues
// jobs in the postgres add-on's database, and a worker process type, from 0 to 2 dynos,
// that does them.
const queueSpec = `app "queue" {
  procfile = "Procfile"

  process "web" {
    count        = 1
    memory       = 128
    health_check = "/health"
    size         = "shared"
  }

  process "worker" {
    count  = 0
    min    = 0
    max    = 2
    memory = 128
    size   = "shared"
  }

  addon "postgres" {}
}
`

// TestWorkersConsumeTheQueue deploys an app whose web dyno feeds a job queue kept in
// real PostgreSQL (the postgres add-on) and whose worker dynos consume it with SELECT
// ... FOR UPDATE SKIP LOCKED. With no worker the jobs wait; `dyno ps:scale worker=2`,
// with the app's deploy token, starts two workers that do every job exactly once,
// both taking part; worker=3 is over the spec's max and refused.
func TestWorkersConsumeTheQueue(t *testing.T) {
	t.Parallel()
	pgPort := harness.FreePorts(t, 1)
	g := harness.Grid(t, func(o *devgrid.Options) { o.PostgresPort = pgPort })
	consul, err := g.ConsulClient()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyQueueApp(t)
	mgmt := newCLI(t, g, "queue")
	addonFlags := []string{"--addon-dir", g.Options.BinDir, "--addon-config", g.Options.AddonConfig()}
	mgmt.must("deploy", append(addonFlags, dir)...)
	token := strings.TrimSpace(mgmt.must("apps:token"))
	c := &dynoCLI{t: t, g: g, base: tokenArgs(mgmt.base, token)}
	web := passingDynos(t, consul, "queue", 1, 2*time.Minute)["web.1"]

	// With no worker, the web dyno's jobs wait in the queue.
	if out := get(t, web, "/enqueue?n=10"); out != "enqueued 10\n" {
		t.Fatalf("GET /enqueue?n=10 = %q", out)
	}
	if out := get(t, web, "/stats"); out != "total=10 done=0 max_attempts=0 workers=\n" {
		t.Errorf("with no worker the queue is %q, want 10 jobs waiting", out)
	}

	// Two workers, out of the spec's max of 2, take part.
	if code, _, errOut := c.run("ps:scale", "worker=3"); code != 1 || !strings.Contains(errOut, "worker=3: process type worker of queue runs from 0 to 2 dynos") {
		t.Errorf("ps:scale worker=3: exit %d, %q; want the range 0 to 2", code, errOut)
	}
	c.must("ps:scale", "worker=2")
	testutil.WaitFor(t, 2*time.Minute, "both workers ready", func() error {
		_, logs, _ := c.run("logs", "--process", "worker")
		for _, w := range []string{"worker.1", "worker.2"} {
			if !strings.Contains(logs, w+": "+w+" ready for jobs") {
				return fmt.Errorf("%s is not ready:\n%s", w, logs)
			}
		}
		return nil
	})
	if out := get(t, web, "/enqueue?n=30"); out != "enqueued 30\n" {
		t.Fatalf("GET /enqueue?n=30 = %q", out)
	}
	var stats string
	testutil.WaitFor(t, 2*time.Minute, "the workers to do the 40 jobs", func() error {
		stats = get(t, web, "/stats")
		if !strings.HasPrefix(stats, "total=40 done=40 ") {
			return fmt.Errorf("queue: %s", stats)
		}
		return nil
	})
	if stats != "total=40 done=40 max_attempts=1 workers=worker.1,worker.2\n" {
		t.Errorf("queue: %q; want 40 jobs done once each, by worker.1 and worker.2", stats)
	}
	_, logs, _ := c.run("logs", "--process", "worker", "--num", "100")
	did := regexp.MustCompile(`(?m)^worker\.[12]: worker\.[12] did web\.1-\d+$`).FindAllString(logs, -1)
	if len(did) < 30 {
		t.Errorf("dyno logs shows %d jobs done by the workers, want at least the 30 of the second batch:\n%s", len(did), logs)
	}
}

// copyQueueApp copies e2e/testdata/queueapp with its spec into a fresh directory.
func copyQueueApp(t *testing.T) string {
	t.Helper()
	src := filepath.Join(harness.RepoRoot(t), "e2e", "testdata", "queueapp")
	dst := filepath.Join(t.TempDir(), "queue")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSpec(t, dst, queueSpec)
	return dst
}

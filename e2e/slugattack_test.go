package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/slug"
	"github.com/dynogrid/dynogrid/internal/tenancy"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestSlugSourceAttacks registers, with an app's own deploy token, jobs whose dyno names
// a slug outside the grid's slug store: a valid slug of the right sha256 in a host
// directory, and the same slug served by a listener on the host's loopback (where the
// agents' APIs are). The driver, which runs as root on the host's network, refuses both
// before it opens the file or sends a request: each allocation fails with an error
// naming slug and the store, the listener sees no request, and nothing is unpacked.
func TestSlugSourceAttacks(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "tenant"
	token := strings.TrimSpace(newCLI(t, g, app).must("apps:token"))
	n, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	n.SetSecretID(token)
	n.SetNamespace(tenancy.Namespace(app))

	s, err := slug.Pack(copyApp(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeFile(w, r, s.Path)
	}))
	t.Cleanup(agent.Close)

	store := g.Options.SlugStore()
	for name, src := range map[string]string{
		"host-path": s.Path,
		"loopback":  agent.URL + "/" + s.SHA256 + ".tar.gz",
	} {
		id := app + "-steal-" + name
		job := nomadapi.NewBatchJob(id, id, "global", 50)
		job.Datacenters = []string{"*"}
		tg := nomadapi.NewTaskGroup("steal", 1)
		tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
		tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
		task := nomadapi.NewTask("steal", deploy.DriverName)
		task.Config = map[string]interface{}{"command": "/bin/sh", "args": []string{"-c", "true"}, "slug": src, "slug_sha256": s.SHA256}
		task.Resources = &nomadapi.Resources{CPU: ptr(100), MemoryMB: ptr(64)}
		tg.AddTask(task)
		job.AddTaskGroup(tg)
		if _, _, err := n.Jobs().Register(job, nil); err != nil {
			t.Fatalf("the app's deploy token could not register %s: %v", id, err)
		}

		var failure string
		testutil.WaitFor(t, 2*time.Minute, id+"'s dyno to fail", func() error {
			allocs, _, err := n.Jobs().Allocations(id, true, nil)
			if err != nil {
				return err
			}
			for _, a := range allocs {
				for _, ts := range a.TaskStates {
					for _, e := range ts.Events {
						if e.Type == nomadapi.TaskDriverFailure {
							failure = e.DriverError
						}
					}
				}
				if a.ClientStatus == nomadapi.AllocClientStatusRunning || a.ClientStatus == nomadapi.AllocClientStatusComplete {
					t.Fatalf("%s's dyno started from %s", id, src)
				}
				if a.ClientStatus == nomadapi.AllocClientStatusFailed && failure != "" {
					return nil
				}
			}
			return fmt.Errorf("allocations %d, driver failure %q", len(allocs), failure)
		})
		want := fmt.Sprintf("slug: %q is not a slug of the grid's slug store: a slug must be %s (plugin config slug_store_dir)",
			src, filepath.Join(store, "<slug_sha256>.tar.gz"))
		if !strings.Contains(failure, want) {
			t.Errorf("%s failed with %q, want it to say %q", id, failure, want)
		}
	}
	if got := hits.Load(); got != 0 {
		t.Errorf("the loopback listener got %d requests from the driver", got)
	}
	if _, err := os.Stat(filepath.Join(g.Options.DataDir, "slugs", s.SHA256)); !os.IsNotExist(err) {
		t.Errorf("the refused slug was unpacked on the host: %v", err)
	}
}

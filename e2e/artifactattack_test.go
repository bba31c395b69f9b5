package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestArtifactAttack registers, with an app's own deploy token, jobs whose dyno task
// has an artifact: Nomad would fetch it itself, from the host's network (here a server
// standing for the cloud's metadata service, which a dyno cannot reach) or with the
// host's cloud credentials (s3::, gcs::), and the job could read it into its dyno as a
// template's source, in KEY=VALUE form. The clients make every artifact fetch fail:
// the dyno never starts, and the server answers nothing whole. (Besides, Nomad's
// directories are not in the sandbox, and the app's deploy token may not use Nomad's
// file API; see docs/security.md.)
func TestArtifactAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "fetcher"
	n := tenantNomad(t, g, app)

	var answered atomic.Int32
	metadata := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.WriteString(w, "LEAKED=AKIA-HOST-CREDENTIALS\n"); err == nil {
			answered.Add(1)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp4", g.Options.Bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = metadata.Serve(ln) }()
	t.Cleanup(func() { metadata.Close() })

	// The fetches of git::, hg::, s3:: and gcs:: sources time out alike (their client
	// settings, internal/devgrid ArtifactsOff); a server here could not answer them.
	sources := map[string]string{"http": fmt.Sprintf("http://%s/latest/user-data", ln.Addr())}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id := app + "-" + name
			job := nomadapi.NewBatchJob(id, id, "global", 50)
			job.Datacenters = []string{"*"}
			tg := nomadapi.NewTaskGroup("fetch", 1)
			tg.Networks = []*nomadapi.NetworkResource{{Mode: "none"}}
			tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
			tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
			task := nomadapi.NewTask("dyno", deploy.DriverName)
			// Exit 3 when the artifact reached the dyno's environment.
			task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", `[ -n "$LEAKED" ] && exit 3; exit 0`}}
			task.Resources = &nomadapi.Resources{CPU: ptr(100), MemoryMB: ptr(64)}
			task.Artifacts = []*nomadapi.TaskArtifact{{GetterSource: ptr(src), RelativeDest: ptr("local/leak.tpl"), GetterMode: ptr("file")}}
			task.Templates = []*nomadapi.Template{{SourcePath: ptr("local/leak.tpl"), DestPath: ptr("secrets/leak.env"), Envvars: ptr(true)}}
			tg.AddTask(task)
			job.AddTaskGroup(tg)
			if _, _, err := n.Jobs().Register(job, nil); err != nil {
				t.Fatalf("the app's deploy token could not register %s: %v", id, err)
			}
			t.Cleanup(func() { _, _, _ = n.Jobs().Deregister(id, true, nil) })

			var failure string
			testutil.WaitFor(t, 2*time.Minute, id+"'s artifact to fail", func() error {
				allocs, _, err := n.Jobs().Allocations(id, true, nil)
				if err != nil {
					return err
				}
				for _, a := range allocs {
					for _, ts := range a.TaskStates {
						for _, e := range ts.Events {
							switch e.Type {
							case nomadapi.TaskStarted:
								t.Fatalf("the dyno started after Nomad fetched its artifact %s", src)
							case nomadapi.TaskArtifactDownloadFailed:
								failure = e.DisplayMessage
							}
						}
					}
				}
				if failure == "" {
					return fmt.Errorf("%d allocations, no failed download yet", len(allocs))
				}
				return nil
			})
			t.Logf("Nomad: %s", failure)
		})
	}
	t.Cleanup(func() {
		if n := answered.Load(); n > 0 {
			t.Errorf("the server answered %d artifact fetches whole", n)
		}
	})
}

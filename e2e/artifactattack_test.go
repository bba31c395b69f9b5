package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestArtifactAttack registers, with an app's own deploy token, a job whose dyno task
// has artifacts: Nomad fetches them itself, from the host's network, from a server that
// stands for the cloud's metadata service (which a dyno cannot reach), into the task's
// local/ and secrets/. The dyno looks for them everywhere Nomad could have put them
// (/local, /secrets, /alloc, /app) and finds nothing: Nomad's directories are not in the
// sandbox. The server saw the fetches, so the artifacts were there to find.
func TestArtifactAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app, secret = "fetcher", "AKIA-HOST-CREDENTIALS"
	n := tenantNomad(t, g, app)

	var fetched atomic.Int32
	metadata := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		_, _ = io.WriteString(w, secret+"\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp4", g.Options.Bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = metadata.Serve(ln) }()
	t.Cleanup(func() { metadata.Close() })

	id := app + "-artifacts"
	job := nomadapi.NewBatchJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	tg := nomadapi.NewTaskGroup("fetch", 1)
	tg.Networks = []*nomadapi.NetworkResource{{Mode: "none"}}
	tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	task := nomadapi.NewTask("dyno", deploy.DriverName)
	// Exit 3 when the secret is found anywhere Nomad could have put it.
	task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c",
		fmt.Sprintf(`for d in /local /secrets /alloc /app; do grep -rqs %q "$d" && exit 3; done; exit 0`, secret)}}
	task.Resources = &nomadapi.Resources{CPU: ptr(100), MemoryMB: ptr(64)}
	src := fmt.Sprintf("http://%s/latest/meta-data/iam/security-credentials/host", ln.Addr())
	for _, dest := range []string{"local/creds", "secrets/creds"} {
		task.Artifacts = append(task.Artifacts, &nomadapi.TaskArtifact{GetterSource: ptr(src), RelativeDest: ptr(dest), GetterMode: ptr("file")})
	}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	if _, _, err := n.Jobs().Register(job, nil); err != nil {
		t.Fatalf("the app's deploy token could not register %s: %v", id, err)
	}
	t.Cleanup(func() { _, _, _ = n.Jobs().Deregister(id, true, nil) })

	exit := -1
	testutil.WaitFor(t, 2*time.Minute, id+"'s dyno to end", func() error {
		allocs, _, err := n.Jobs().Allocations(id, true, nil)
		if err != nil {
			return err
		}
		for _, a := range allocs {
			for _, ts := range a.TaskStates {
				for _, e := range ts.Events {
					if e.Type == nomadapi.TaskTerminated {
						exit = e.ExitCode
					}
					if e.Type == nomadapi.TaskDriverFailure {
						t.Fatalf("the dyno failed to start: %s", e.DriverError)
					}
				}
			}
		}
		if exit < 0 {
			return fmt.Errorf("%d allocations, no exit yet", len(allocs))
		}
		return nil
	})
	if n := fetched.Load(); n < 2 {
		t.Fatalf("the server saw %d fetches, want one per artifact (2): the test saw no artifact", n)
	}
	if exit != 0 {
		t.Errorf("the dyno exited %d: it read an artifact Nomad fetched from the host's network (3 means found)", exit)
	}
	// Nor does the app's deploy token read it through Nomad's file API.
	allocs, _, err := n.Jobs().Allocations(id, true, nil)
	if err != nil || len(allocs) == 0 {
		t.Fatalf("allocations of %s: %d, %v", id, len(allocs), err)
	}
	alloc, _, err := n.Allocations().Info(allocs[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"dyno/local/creds", "dyno/secrets/creds"} {
		// Nomad answers a refusal as the file's content.
		var got string
		rc, err := n.AllocFS().Cat(alloc, p, nil)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			got = string(b)
		} else {
			got = err.Error()
		}
		if strings.Contains(got, secret) || !strings.Contains(got, "Permission denied") && !strings.Contains(got, "403") {
			t.Errorf("reading %s through Nomad's file API with the app's deploy token: %q, want it refused", p, got)
		}
	}
}

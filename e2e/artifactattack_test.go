package e2e

import (
	"fmt"
	"io"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
)

// TestArtifactAttack registers, with an app's own deploy token, a job whose dyno task
// has an artifact: Nomad would fetch it itself, from the host's network (here a server
// standing for the cloud's metadata service, which a dyno cannot reach), and the job
// could read it into its dyno's environment as a template's source, in KEY=VALUE form.
// The clients make every artifact fetch fail: the dyno never starts, and the server
// answers nothing whole. The fetches of git::, hg::, s3:: and gcs:: sources (with the
// host's cloud credentials) time out alike (internal/devgrid artifactsOff); a server
// here could not answer them. (Besides, Nomad's directories are not in the sandbox,
// and the app's deploy token may not use Nomad's file API; see docs/security.md.)
func TestArtifactAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "fetcher"
	n := tenantNomad(t, g, app)
	addr, answered := metadataServer(t, g, "LEAKED=AKIA-HOST-CREDENTIALS\n")
	src := fmt.Sprintf("http://%s/latest/user-data", addr)

	id := app + "-artifact"
	tg := nomadapi.NewTaskGroup("fetch", 1)
	tg.Networks = []*nomadapi.NetworkResource{{Mode: "none"}}
	// Exit 3 when the artifact reached the dyno's environment.
	job := dynoJob("batch", id, tg, map[string]any{"command": "/bin/sh", "args": []string{"-c", `[ -n "$LEAKED" ] && exit 3; exit 0`}})
	task := tg.Tasks[0]
	task.Artifacts = []*nomadapi.TaskArtifact{{GetterSource: &src, RelativeDest: ptr("local/leak.tpl"), GetterMode: ptr("file")}}
	task.Templates = []*nomadapi.Template{{SourcePath: ptr("local/leak.tpl"), DestPath: ptr("secrets/leak.env"), Envvars: ptr(true)}}
	registerOwnJob(t, n, job)

	waitTaskEvent(t, n, id, id+"'s artifact to fail", func(e *nomadapi.TaskEvent) (bool, error) {
		switch e.Type {
		case nomadapi.TaskStarted:
			return false, fmt.Errorf("the dyno started after Nomad fetched its artifact %s", src)
		case nomadapi.TaskArtifactDownloadFailed:
			t.Logf("Nomad: %s", e.DisplayMessage)
			return true, nil
		}
		return false, nil
	})
	if n := answered.Load(); n > 0 {
		t.Errorf("the server answered %d artifact fetches whole", n)
	}
	// Nor may the app's deploy token read its allocations' files through Nomad's file
	// API, where an artifact would be.
	allocs, _, err := n.Jobs().Allocations(id, true, nil)
	if err != nil || len(allocs) == 0 {
		t.Fatalf("allocations of %s: %d, %v", id, len(allocs), err)
	}
	alloc, _, err := n.Allocations().Info(allocs[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Nomad answers a refusal as the file's content, or as an error.
	var got string
	if rc, err := n.AllocFS().Cat(alloc, "dyno/local/leak.tpl", nil); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		got = string(b)
	} else {
		got = err.Error()
	}
	if !strings.Contains(got, "Permission denied") && !strings.Contains(got, "403") {
		t.Errorf("the app's deploy token reading its allocation's files through Nomad's file API: %q, want it refused", got)
	}
}

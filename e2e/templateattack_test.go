package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestTemplateAttacks registers, with an app's own deploy token, jobs whose template
// puts into their dyno's environment what the dyno may not reach: Consul's catalog
// (every service of the grid, read with the Nomad agent's Consul token), and an
// artifact Nomad fetched from the host's network (a server standing for the cloud's
// metadata service), read with the template function file. The clients turn those
// functions off: each template fails, and its dyno never runs.
func TestTemplateAttacks(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "lister"
	n := tenantNomad(t, g, app)

	metadata := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "AKIA-HOST-CREDENTIALS\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp4", g.Options.Bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = metadata.Serve(ln) }()
	t.Cleanup(func() { metadata.Close() })
	creds := &nomadapi.TaskArtifact{GetterSource: ptr(fmt.Sprintf("http://%s/latest/meta-data/iam/security-credentials/host", ln.Addr())),
		RelativeDest: ptr("local/creds"), GetterMode: ptr("file")}

	cases := []struct {
		name, tmpl string
		artifacts  []*nomadapi.TaskArtifact
	}{
		{"catalog", `{{ range services }}{{ .Name }},{{ end }}`, nil},
		{"artifact", `{{ file "local/creds" | trimSpace }}`, []*nomadapi.TaskArtifact{creds}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			id := app + "-" + c.name
			job := nomadapi.NewBatchJob(id, id, "global", 50)
			job.Datacenters = []string{"*"}
			tg := nomadapi.NewTaskGroup("list", 1)
			tg.Networks = []*nomadapi.NetworkResource{{Mode: "none"}}
			tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
			tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
			task := nomadapi.NewTask("dyno", deploy.DriverName)
			// Exit 3 when the template's output reached the dyno.
			task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", `[ -n "$LEAKED" ] && exit 3; exit 0`}}
			task.Resources = &nomadapi.Resources{CPU: ptr(100), MemoryMB: ptr(64)}
			task.Artifacts = c.artifacts
			task.Templates = []*nomadapi.Template{{
				EmbeddedTmpl: ptr(`LEAKED="` + c.tmpl + `"` + "\n"),
				DestPath:     ptr("secrets/leak.env"), Envvars: ptr(true),
			}}
			tg.AddTask(task)
			job.AddTaskGroup(tg)
			if _, _, err := n.Jobs().Register(job, nil); err != nil {
				t.Fatalf("the app's deploy token could not register %s: %v", id, err)
			}
			t.Cleanup(func() { _, _, _ = n.Jobs().Deregister(id, true, nil) })

			var refused string
			testutil.WaitFor(t, 2*time.Minute, id+"'s template to fail", func() error {
				allocs, _, err := n.Jobs().Allocations(id, true, nil)
				if err != nil {
					return err
				}
				for _, a := range allocs {
					for _, ts := range a.TaskStates {
						for _, e := range ts.Events {
							if e.Type == nomadapi.TaskTerminated && e.ExitCode == 3 {
								t.Fatalf("the dyno ran with its template's %s in its environment", c.name)
							}
							for _, m := range []string{e.DisplayMessage, e.Message, e.KillReason, e.SetupError, e.DriverError} {
								if strings.Contains(m, "function is disabled") {
									refused = m
								}
							}
						}
					}
				}
				if refused == "" {
					return fmt.Errorf("%d allocations, no refusal yet", len(allocs))
				}
				return nil
			})
			t.Logf("Nomad: %s", refused)
		})
	}
}

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestTemplateCatalogAttack registers, with an app's own deploy token, a job whose
// template lists Consul's catalog (every service of the grid, with the Nomad agent's
// Consul token) into its dyno's environment. The clients turn the template functions
// that read Consul off: the template fails, and the dyno never runs with the catalog.
func TestTemplateCatalogAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "lister"
	n := tenantNomad(t, g, app)

	id := app + "-catalog"
	job := nomadapi.NewBatchJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	tg := nomadapi.NewTaskGroup("list", 1)
	tg.Networks = []*nomadapi.NetworkResource{{Mode: "none"}}
	tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	task := nomadapi.NewTask("dyno", deploy.DriverName)
	// Exit 3 when the catalog reached the dyno: Consul's own service is always in it.
	task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", `case "$CATALOG" in *consul*) exit 3 ;; esac; exit 0`}}
	task.Resources = &nomadapi.Resources{CPU: ptr(100), MemoryMB: ptr(64)}
	task.Templates = []*nomadapi.Template{{
		EmbeddedTmpl: ptr(`CATALOG={{ range services }}{{ .Name }},{{ end }}` + "\n"),
		DestPath:     ptr("secrets/catalog.env"), Envvars: ptr(true),
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
						t.Fatal("the dyno ran with the grid's Consul catalog in its environment")
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
}

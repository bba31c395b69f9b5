package e2e

import (
	"fmt"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
)

// TestTemplateAttacks registers, with an app's own deploy token, jobs whose template
// puts into their dyno's environment what the dyno may not reach: Consul's catalog
// (every service of the grid, read with the Nomad agent's Consul token), and a file of
// the task's directory, where Nomad puts a job's artifacts (here one its other template
// writes), read with the template function file. The clients turn those functions off:
// each template fails at once, and its dyno never runs. (With file on, that template
// waits for its file, and the test fails on its deadline.)
func TestTemplateAttacks(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "lister"
	n := tenantNomad(t, g, app)

	cases := map[string]string{
		"catalog": `{{ range services }}{{ .Name }},{{ end }}`,
		"file":    `{{ file "local/creds" | trimSpace }}`,
	}
	for name, tmpl := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id := app + "-" + name
			tg := nomadapi.NewTaskGroup("list", 1)
			tg.Networks = []*nomadapi.NetworkResource{{Mode: "none"}}
			// Exit 3 when the template's output reached the dyno.
			job := dynoJob("batch", id, tg, map[string]any{"command": "/bin/sh", "args": []string{"-c", `[ -n "$LEAKED" ] && exit 3; exit 0`}})
			tg.Tasks[0].Templates = []*nomadapi.Template{{
				EmbeddedTmpl: ptr(`LEAKED="` + tmpl + `"` + "\n"),
				DestPath:     ptr("secrets/leak.env"), Envvars: ptr(true),
			}, {
				EmbeddedTmpl: ptr("AKIA-HOST-CREDENTIALS\n"), DestPath: ptr("local/creds"),
			}}
			registerOwnJob(t, n, job)
			waitTaskEvent(t, n, id, id+"'s template to fail", func(e *nomadapi.TaskEvent) (bool, error) {
				switch {
				case e.Type == nomadapi.TaskTerminated && e.ExitCode == 3:
					return false, fmt.Errorf("the dyno ran with its template's %s in its environment", name)
				case e.Type == nomadapi.TaskStarted:
					return false, fmt.Errorf("the dyno started although its template reads %s", name)
				}
				for _, m := range []string{e.DisplayMessage, e.Message, e.KillReason, e.SetupError, e.DriverError} {
					if strings.Contains(m, "function is disabled") {
						t.Logf("Nomad: %s", m)
						return true, nil
					}
				}
				return false, nil
			})
		})
	}
}

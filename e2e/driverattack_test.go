package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/tenancy"
)

// TestOtherDriverAttack registers, with an app's own deploy token, jobs whose tasks use
// another driver than the dyno driver: Nomad's exec driver, enabled on the clients for
// the meter, would run the app's code outside the dyno sandbox, in the host's network
// and past the dyno firewall. The app's namespace allows the dyno driver only, so
// Nomad refuses each job; so does the namespace of an app made before it did, once an
// operator has run `dyno apps:refresh`.
func TestOtherDriverAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app, legacy = "escaper", "oldapp"
	// An app whose namespace was made with no restriction, as before.
	admin, err := g.NomadClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Namespaces().Register(&nomadapi.Namespace{Name: tenancy.Namespace(legacy)}, nil); err != nil {
		t.Fatal(err)
	}
	if out := newCLI(t, g, legacy).must("apps:refresh"); !strings.HasPrefix(out, "Refreshed ") {
		t.Errorf("apps:refresh said %q", out)
	}
	ns, _, err := admin.Namespaces().Info(tenancy.Namespace(legacy), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ns.Capabilities == nil || strings.Join(ns.Capabilities.EnabledTaskDrivers, ",") != tenancy.DynoDriver {
		t.Errorf("after apps:refresh, the earlier app's namespace allows %+v, want the dyno driver only", ns.Capabilities)
	}
	for _, a := range []string{app, legacy} {
		n := tenantNomad(t, g, a)
		for _, driver := range []string{"exec", "raw_exec", "docker", "java", "qemu"} {
			job := nomadapi.NewServiceJob(a+"-"+driver, a+"-"+driver, "global", 50)
			job.Datacenters = []string{"*"}
			tg := nomadapi.NewTaskGroup("escape", 1)
			task := nomadapi.NewTask("escape", driver)
			task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", "sleep 600"}}
			tg.AddTask(task)
			job.AddTaskGroup(tg)
			_, _, err := n.Jobs().RegisterOpts(job, nil, (&nomadapi.WriteOptions{}).WithContext(context.Background()))
			want := fmt.Sprintf("used task driver %q is not allowed in namespace %q", driver, tenancy.Namespace(a))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("app %s: a job of the %s driver registered with the app's deploy token: %v; want %q", a, driver, err, want)
				_, _, _ = n.Jobs().Deregister(*job.ID, true, nil)
			}
		}
	}
}

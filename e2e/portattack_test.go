package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/e2e/harness"
	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// TestStaticHostPortAttack registers, with an app's own deploy token, jobs whose dyno
// asks for a static host port on which a listener stands for an agent's API: in the
// driver's network mode (none) the driver's DNAT rule, and in Nomad's bridge mode the
// CNI portmap plugin (before the driver could refuse the task), would take the host's
// connections to that port into the job's network. The clients reserve every host port
// but the dynamic ones, so Nomad places neither job, and the host's connections still
// reach the listener. A client without that reservation still has the driver refuse a
// dyno of mode none (driver TestDynoPortsAreDynamicPortsOnly).
func TestStaticHostPortAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "grabber"
	n := tenantNomad(t, g, app)

	agent, err := net.Listen("tcp4", g.Options.Bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	go func() {
		for {
			c, err := agent.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "agent\n")
			c.Close()
		}
	}()
	port := agent.Addr().(*net.TCPAddr).Port

	for _, mode := range []string{"none", "bridge"} {
		grab := nomadapi.NewTaskGroup("grab", 1)
		grab.Networks = []*nomadapi.NetworkResource{{Mode: mode, ReservedPorts: []nomadapi.Port{{Label: "http", Value: port, To: -1}}}}
		why := unplacedDyno(t, n, app+"-grab-"+mode, grab)
		if want := fmt.Sprintf("reserved port collision http=%d", port); !strings.Contains(why, want) {
			t.Errorf("mode %s: the job was not placed because %q, want %q", mode, why, want)
		}
	}
	c, err := net.DialTimeout("tcp", agent.Addr().String(), 3*time.Second)
	if err != nil {
		t.Fatalf("the host cannot reach its listener on port %d any more: %v", port, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "agent\n" {
		t.Errorf("the host's connection to port %d got %q, %v; want the listener's greeting", port, b, err)
	}
}

// unplacedDyno registers a job of one task group, whose one dyno runs `sleep 600`, and
// returns why Nomad placed it nowhere (its evaluation's exhausted dimensions); a dyno
// that was placed fails the test. The job is removed at the end.
func unplacedDyno(t *testing.T, n *nomadapi.Client, id string, tg *nomadapi.TaskGroup) string {
	t.Helper()
	job := dynoJob(id, tg, nil)
	if _, _, err := n.Jobs().Register(job, nil); err != nil {
		t.Fatalf("the app's deploy token could not register %s: %v", id, err)
	}
	t.Cleanup(func() { _, _, _ = n.Jobs().Deregister(id, true, nil) })
	var why string
	testutil.WaitFor(t, time.Minute, id+" to be refused a placement", func() error {
		allocs, _, err := n.Jobs().Allocations(id, true, nil)
		if err != nil {
			return err
		}
		if len(allocs) > 0 {
			t.Fatalf("%s was placed (allocation %s, %s)", id, allocs[0].ID, allocs[0].ClientStatus)
		}
		evals, _, err := n.Jobs().Evaluations(id, nil)
		if err != nil {
			return err
		}
		var dims []string
		for _, e := range evals {
			for _, m := range e.FailedTGAllocs {
				for d := range m.DimensionExhausted {
					dims = append(dims, d)
				}
			}
		}
		if len(dims) == 0 {
			return fmt.Errorf("%d evaluations, no failed placement yet", len(evals))
		}
		why = strings.Join(dims, "; ")
		return nil
	})
	return why
}

// TestHostNetworkAttack registers, with an app's own deploy token, a job whose task group
// has no network block: its dyno would share the host's network, where the firewall does
// not apply and the host's loopback services are its own. The driver refuses it.
func TestHostNetworkAttack(t *testing.T) {
	t.Parallel()
	g := harness.Grid(t)
	const app = "sharer"
	n := tenantNomad(t, g, app)
	failure := refusedDyno(t, n, app+"-host", nomadapi.NewTaskGroup("host", 1), nil)
	if want := `network: the dyno's task group shares the host's network`; !strings.Contains(failure, want) {
		t.Errorf("the dyno failed with %q, want it to say %q", failure, want)
	}
}

// tenantNomad is a Nomad client of app's namespace with app's own deploy token (made
// with `dyno apps:token`): what the app's owner, or an attacker holding it, has.
func tenantNomad(t *testing.T, g *devgrid.Grid, app string) *nomadapi.Client {
	t.Helper()
	c := appNomad(t, g, app)
	c.SetSecretID(strings.TrimSpace(newCLI(t, g, app).must("apps:token")))
	return c
}

// refusedDyno registers a job of one task group, whose one dyno has config (by default
// it runs `sleep 600`), and returns the driver's error once its allocation failed; a
// dyno that ran fails the test.
func refusedDyno(t *testing.T, n *nomadapi.Client, id string, tg *nomadapi.TaskGroup, config map[string]any) string {
	t.Helper()
	job := dynoJob(id, tg, config)
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
				t.Fatalf("%s's dyno ran", id)
			}
			if a.ClientStatus == nomadapi.AllocClientStatusFailed && failure != "" {
				return nil
			}
		}
		return fmt.Errorf("allocations %d, driver failure %q", len(allocs), failure)
	})
	return failure
}

// dynoJob is a service job of one task group, tg, whose one dyno has config (by default
// it runs `sleep 600`), restarted and rescheduled never.
func dynoJob(id string, tg *nomadapi.TaskGroup, config map[string]any) *nomadapi.Job {
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	task := nomadapi.NewTask("dyno", deploy.DriverName)
	task.Config = config
	if config == nil {
		task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", "sleep 600"}}
	}
	task.Resources = &nomadapi.Resources{CPU: ptr(100), MemoryMB: ptr(64)}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

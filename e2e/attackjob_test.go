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

	"github.com/dynogrid/dynogrid/internal/deploy"
	"github.com/dynogrid/dynogrid/internal/devgrid"
	"github.com/dynogrid/dynogrid/internal/testutil"
)

// The jobs that attack tests register with an app's own deploy token, and what they
// wait for.

// unplacedDyno registers a job of one task group, whose one dyno runs `sleep 600`, and
// returns why Nomad placed it nowhere (its evaluation's exhausted dimensions); a dyno
// that was placed fails the test. The job is removed at the end.
func unplacedDyno(t *testing.T, n *nomadapi.Client, id string, tg *nomadapi.TaskGroup) string {
	t.Helper()
	registerOwnJob(t, n, dynoJob("service", id, tg, nil))
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

// tenantNomad is a Nomad client of app's namespace with app's own deploy token (made
// with `dyno apps:token`): what the app's owner, or an attacker holding it, has.
func tenantNomad(t *testing.T, g *devgrid.Grid, app string) *nomadapi.Client {
	t.Helper()
	c := appNomad(t, g, app)
	c.SetSecretID(strings.TrimSpace(newCLI(t, g, app).must("apps:token")))
	return c
}

// refusedDyno registers a job of one task group, whose one dyno has config (by default
// it runs `sleep 600`), and returns the driver's error once the driver refused the
// dyno; a dyno that started fails the test.
func refusedDyno(t *testing.T, n *nomadapi.Client, id string, tg *nomadapi.TaskGroup, config map[string]any) string {
	t.Helper()
	registerOwnJob(t, n, dynoJob("service", id, tg, config))
	var failure string
	waitTaskEvent(t, n, id, id+"'s dyno to fail", func(e *nomadapi.TaskEvent) (bool, error) {
		switch e.Type {
		case nomadapi.TaskStarted:
			return false, fmt.Errorf("%s's dyno ran", id)
		case nomadapi.TaskDriverFailure:
			failure = e.DriverError
			return true, nil
		}
		return false, nil
	})
	return failure
}

// dynoJob is a job of type typ ("service" or "batch") of one task group, tg, whose one
// dyno has config (by default it runs `sleep 600`), restarted and rescheduled never.
func dynoJob(typ, id string, tg *nomadapi.TaskGroup, config map[string]any) *nomadapi.Job {
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Type = &typ
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

// metadataServer stands for the cloud's metadata service, which a dyno cannot reach and
// the client host can: it answers every request with body, and counts the answers sent
// whole.
func metadataServer(t *testing.T, g *devgrid.Grid, body string) (addr string, answered *atomic.Int32) {
	t.Helper()
	answered = new(atomic.Int32)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.WriteString(w, body); err == nil {
			answered.Add(1)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp4", g.Options.Bind+":0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), answered
}

// registerOwnJob registers job with n, an app's deploy token, and removes it at the end.
func registerOwnJob(t *testing.T, n *nomadapi.Client, job *nomadapi.Job) {
	t.Helper()
	if _, _, err := n.Jobs().Register(job, nil); err != nil {
		t.Fatalf("the app's deploy token could not register %s: %v", *job.ID, err)
	}
	t.Cleanup(func() { _, _, _ = n.Jobs().Deregister(*job.ID, true, nil) })
}

// waitTaskEvent waits until decide, given each event of the tasks of job id's
// allocations, says it is done; it fails the test when decide returns an error.
func waitTaskEvent(t *testing.T, n *nomadapi.Client, id, what string, decide func(e *nomadapi.TaskEvent) (bool, error)) {
	t.Helper()
	testutil.WaitFor(t, 2*time.Minute, what, func() error {
		allocs, _, err := n.Jobs().Allocations(id, true, nil)
		if err != nil {
			return err
		}
		for _, a := range allocs {
			for _, ts := range a.TaskStates {
				for _, e := range ts.Events {
					done, err := decide(e)
					if err != nil {
						t.Fatal(err)
					}
					if done {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("%d allocations, not yet", len(allocs))
	})
}

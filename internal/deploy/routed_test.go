package deploy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dynogrid/dynogrid/internal/agentapi"
)

// TestPassesFindsTheDynoOfAnAllocation checks that a new dyno is found among Consul's
// passing instances by the service ID Nomad gives it, and never by a prefix of
// another allocation's ID.
func TestPassesFindsTheDynoOfAnAllocation(t *testing.T) {
	t.Parallel()
	entries := []*consulapi.ServiceEntry{
		{Service: &consulapi.AgentService{ID: "_nomad-task-0c2f1a3e-5b6d-7e8f-9a0b-1c2d3e4f5a6b-web-shop-web-http"}},
	}
	if !passes(entries, "0c2f1a3e-5b6d-7e8f-9a0b-1c2d3e4f5a6b") {
		t.Error("the dyno of allocation 0c2f1a3e-... is passing, passes says it is not")
	}
	for _, other := range []string{"0c2f1a3e-5b6d-7e8f-9a0b-1c2d3e4f5a6c", "0c2f1a3e", ""} {
		if passes(entries, other) {
			t.Errorf("passes(%q) = true, want false: no dyno of that allocation is passing", other)
		}
	}
}

// TestAnyFailedReadsTheJobsAllocationsOnce checks anyFailed's verdicts on the new
// dynos among the job's allocations, each from one read of them: a dyno failed, done,
// lost, restarted or with a failed task has failed; the job's other dynos do not count;
// a new dyno Nomad no longer has is an error.
func TestAnyFailedReadsTheJobsAllocationsOnce(t *testing.T) {
	t.Parallel()
	running := func(id string) *nomadapi.AllocationListStub {
		return &nomadapi.AllocationListStub{ID: id, ClientStatus: nomadapi.AllocClientStatusRunning,
			TaskStates: map[string]*nomadapi.TaskState{"web": {State: "running"}}}
	}
	var reads atomic.Int32
	var stubs atomic.Pointer[[]*nomadapi.AllocationListStub]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/job/shop/allocations" {
			http.NotFound(w, r)
			return
		}
		reads.Add(1)
		_ = json.NewEncoder(w).Encode(*stubs.Load())
	}))
	defer srv.Close()
	nomad, err := agentapi.Nomad(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	d := &Deployer{Nomad: nomad}
	for _, tc := range []struct {
		name   string
		change func(a *nomadapi.AllocationListStub)
		failed bool
	}{
		{"running", func(*nomadapi.AllocationListStub) {}, false},
		{"failed", func(a *nomadapi.AllocationListStub) { a.ClientStatus = nomadapi.AllocClientStatusFailed }, true},
		{"complete", func(a *nomadapi.AllocationListStub) { a.ClientStatus = nomadapi.AllocClientStatusComplete }, true},
		{"lost", func(a *nomadapi.AllocationListStub) { a.ClientStatus = nomadapi.AllocClientStatusLost }, true},
		{"restarted", func(a *nomadapi.AllocationListStub) { a.TaskStates["web"].Restarts = 1 }, true},
		{"task failed", func(a *nomadapi.AllocationListStub) { a.TaskStates["web"].Failed = true }, true},
	} {
		old, failedOld, b, c := running("old"), running("failed-old"), running("b"), running("c")
		failedOld.ClientStatus = nomadapi.AllocClientStatusFailed
		tc.change(c)
		stubs.Store(&[]*nomadapi.AllocationListStub{old, failedOld, b, c})
		before := reads.Load()
		failed, err := d.anyFailed(context.Background(), "shop", []string{"b", "c"})
		if err != nil || failed != tc.failed {
			t.Errorf("%s: anyFailed = %v, %v; want %v, nil", tc.name, failed, err, tc.failed)
		}
		if n := reads.Load() - before; n != 1 {
			t.Errorf("%s: anyFailed read the job's allocations %d times, want once", tc.name, n)
		}
	}
	stubs.Store(&[]*nomadapi.AllocationListStub{running("b")})
	if _, err := d.anyFailed(context.Background(), "shop", []string{"b", "gone"}); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("anyFailed of a dyno Nomad no longer has: %v, want an error naming it", err)
	}
}

package memcached

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/nomad/api"
	"github.com/shoenig/test/must"

	"github.com/dynogrid/dynogrid/plugins/addon"
)

// fakeNomad answers a memcached add-on's calls about job "mc": job answers the job's
// reads, alloc the reads of its one allocation, a404. It records the writes.
func fakeNomad(t *testing.T, job func(http.ResponseWriter), alloc func(http.ResponseWriter)) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var writes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			mu.Lock()
			writes = append(writes, r.Method+" "+r.URL.Path)
			mu.Unlock()
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/job/mc":
			job(w)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/job/mc/allocations":
			_ = json.NewEncoder(w).Encode([]*api.AllocationListStub{{ID: "a404"}})
		case r.Method == http.MethodDelete && r.URL.Path == "/v1/job/mc":
			_ = json.NewEncoder(w).Encode(api.JobDeregisterResponse{})
		case r.Method == http.MethodGet && r.URL.Path == "/v1/allocation/a404":
			alloc(w)
		default:
			// The variable and anything else: Nomad knows nothing of them.
			http.Error(w, "not found", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(writes) }
}

func configured(t *testing.T, addr string) *Addon {
	t.Helper()
	a := New(nil)
	must.NoError(t, a.Configure(context.Background(), addon.Config{Settings: map[string]string{"nomad_addr": addr}}))
	return a
}

var deprovisionMC = addon.DeprovisionRequest{RequestID: "r1", ResourceID: "mc", App: "shop"}

// TestDeprovision_GoneIsOnlyA404 checks that Deprovision takes a job or an allocation
// for gone only when Nomad answers 404, not when an error's text says "not found".
func TestDeprovision_GoneIsOnlyA404(t *testing.T) {
	t.Parallel()
	notFound := func(w http.ResponseWriter) { http.Error(w, "job not found", http.StatusNotFound) }
	ours := func(w http.ResponseWriter) {
		_ = json.NewEncoder(w).Encode(&api.Job{ID: new("mc"), Meta: map[string]string{metaAddon: Name, metaApp: "shop"}})
	}

	t.Run("a job already gone is success", func(t *testing.T) {
		t.Parallel()
		addr, writes := fakeNomad(t, notFound, notFound)
		must.NoError(t, configured(t, addr).Deprovision(context.Background(), deprovisionMC))
		must.SliceEmpty(t, writes(), must.Sprint("nothing to stop"))
	})

	t.Run("a refusal that says not found is an error", func(t *testing.T) {
		t.Parallel()
		refused := func(w http.ResponseWriter) { http.Error(w, "ACL token not found", http.StatusForbidden) }
		addr, writes := fakeNomad(t, refused, notFound)
		err := configured(t, addr).Deprovision(context.Background(), deprovisionMC)
		must.ErrorContains(t, err, "failed to look up job mc: Unexpected response code: 403 (ACL token not found)")
		must.SliceEmpty(t, writes())
	})

	t.Run("an allocation Nomad no longer knows has stopped", func(t *testing.T) {
		t.Parallel()
		addr, writes := fakeNomad(t, ours, notFound)
		must.NoError(t, configured(t, addr).Deprovision(context.Background(), deprovisionMC))
		must.Eq(t, []string{"DELETE /v1/job/mc"}, writes())
	})

	t.Run("an allocation read that fails is no stop", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		reads := 0
		// Each read of the allocation breaks the connection: the error names the
		// URL, /v1/allocation/a404, and carries no status.
		broken := func(w http.ResponseWriter) {
			mu.Lock()
			reads++
			if reads == 3 {
				cancel() // the caller gives up while the add-on still waits
			}
			mu.Unlock()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("failed to break the connection: %v", err)
				return
			}
			conn.Close()
		}
		addr, writes := fakeNomad(t, ours, broken)
		a := configured(t, addr)
		a.pollInterval = 0
		err := a.Deprovision(ctx, deprovisionMC)
		must.ErrorContains(t, err, "allocation a404 did not stop in time: context canceled")
		mu.Lock()
		must.Eq(t, 3, reads, must.Sprint("the allocation is read again after each failure"))
		mu.Unlock()
		must.Eq(t, []string{"DELETE /v1/job/mc"}, writes(), must.Sprint("the variable is kept while the job may run"))
	})
}
